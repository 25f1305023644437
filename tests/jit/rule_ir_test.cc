#include "jit/rule_ir.h"

#include <gtest/gtest.h>

#include "core/model.h"
#include "support/policy_builder.h"

namespace butterfly {
namespace {

using testing::MakeCidr;
using testing::PolicyBuilder;

TEST(RuleIrTest, SplitsByDirectionAndFamilyAndMergesSameProtocolAndPorts) {
  PolicyBuilder builder;
  builder.Inbound(kProtoTcp, 22, 22, {"10.0.0.0/8", "2001:db8::/32"})
      .Inbound(kProtoTcp, 22, 22, {"192.168.1.0/24"})
      .Inbound(kProtoUdp, 53, 53, {"10.0.0.0/8"})
      .Outbound(kAnyProtocol, 0, 65535, {"0.0.0.0/0"});
  auto ir = BuildFilterIr(*builder.Build());
  ASSERT_TRUE(ir.ok()) << ir.error();
  const auto& in_v4 = (*ir)->RulesFor(Direction::kInbound, 4);
  ASSERT_EQ(in_v4.size(), 2u);
  EXPECT_EQ(in_v4[0].protocol, kProtoTcp);
  EXPECT_EQ(in_v4[0].remotes.size(), 2u);  // 10/8 and 192.168.1/24 merged into one rule
  EXPECT_EQ(in_v4[1].protocol, kProtoUdp);
  EXPECT_EQ((*ir)->RulesFor(Direction::kInbound, 6).size(), 1u);
  EXPECT_EQ((*ir)->RulesFor(Direction::kOutbound, 4).size(), 1u);
  EXPECT_TRUE((*ir)->RulesFor(Direction::kOutbound, 6).empty());  // 0.0.0.0/0 is IPv4 only
  EXPECT_FALSE((*ir)->outbound_open);
}

TEST(RuleIrTest, DropsPrefixesCoveredByAnotherOfTheSameRule) {
  PolicyBuilder builder;
  builder.Inbound(kProtoIcmp, 0, 65535, {"10.1.2.3/32", "10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8"})
      .Inbound(kProtoIcmp, 0, 65535, {"10.0.0.0/8"});
  auto ir = BuildFilterIr(*builder.Build());
  ASSERT_TRUE(ir.ok());
  const auto& rules = (*ir)->RulesFor(Direction::kInbound, 4);
  ASSERT_EQ(rules.size(), 1u);
  ASSERT_EQ(rules[0].remotes.size(), 2u);
  EXPECT_EQ(rules[0].remotes[0].length, 8);
  EXPECT_EQ(rules[0].remotes[1].address[0], 11);
}

TEST(RuleIrTest, PortsOfProtocolsWithoutPortsAreNormalizedAway) {
  PolicyBuilder builder;
  builder.Inbound(kProtoIcmp, 0, 65535, {"10.0.0.0/8"});
  auto ir = BuildFilterIr(*builder.Build());
  ASSERT_TRUE(ir.ok());
  EXPECT_FALSE((*ir)->RulesFor(Direction::kInbound, 4)[0].HasPorts());
}

TEST(RuleIrTest, EmptyMemberSetMatchesNothing) {
  PolicyBuilder builder;
  builder.Inbound(kProtoTcp, 80, 80, {});  // members of a missing or empty group
  auto ir = BuildFilterIr(*builder.Build());
  ASSERT_TRUE(ir.ok());
  EXPECT_EQ((*ir)->RuleCount(), 0u);
}

TEST(RuleIrTest, RefusesWhatItCannotExpressWithAClearError) {
  struct Case {
    const char* what;
    PolicyRule rule;
    const char* message;
  };
  PolicyRule base;
  base.remotes.push_back(MakeCidr("10.0.0.0/8"));
  std::vector<Case> cases;
  PolicyRule r = base;
  r.protocol = 300;
  cases.push_back({"protocol", r, "protocol is not -1 (all) or 0-255"});
  r = base;
  r.protocol = kProtoTcp;
  r.port_first = 90, r.port_last = 80;
  cases.push_back({"reversed ports", r, "port range is empty"});
  r = base;
  r.protocol = kProtoIcmp;
  r.port_first = 1, r.port_last = 2;
  cases.push_back({"ports on icmp", r, "a port range only applies to tcp and udp"});
  r = base;
  r.remotes[0].prefix_length = 33;
  cases.push_back({"prefix length", r, "prefix length 33 is out of range"});
  r = base;
  r.remotes[0].address = *IpAddress::Parse("10.1.0.0");
  cases.push_back({"host bits", r, "has bits set past its length"});
  for (const Case& c : cases) {
    PolicyBuilder builder;
    builder.policy().rules.push_back(c.rule);
    auto ir = BuildFilterIr(*builder.Build());
    ASSERT_FALSE(ir.ok()) << c.what;
    EXPECT_NE(ir.error().find(c.message), std::string::npos) << c.what << ": " << ir.error();
    EXPECT_NE(ir.error().find("cannot be compiled"), std::string::npos);
  }
}

TEST(RuleIrTest, TheModelRefusesBadRulesBeforeTheyReachTheIr) {
  Rule rule;
  rule.protocol = kProtoTcp;
  rule.cidr = MakeCidr("10.0.0.0/8");
  EXPECT_FALSE(rule.Validate().ok());  // tcp without ports
  rule.port_start = 100;
  rule.port_end = 99;
  EXPECT_NE(rule.Validate().error().find("port_start is greater than port_end"), std::string::npos);
  rule.protocol = kProtoIcmp;
  rule.port_start = 1;
  rule.port_end = 2;
  EXPECT_NE(rule.Validate().error().find("ports only apply to tcp"), std::string::npos);
  rule.protocol = 256;
  EXPECT_FALSE(rule.Validate().ok());
}

TEST(RuleIrTest, BuiltFromTheModelFollowsMembersAndMissingGroups) {
  Model model;
  SecurityGroup& web = model.GetOrCreateSg("web");
  Rule from_members;
  from_members.protocol = kProtoTcp;
  from_members.port_start = 443;
  from_members.port_end = 443;
  from_members.remote_sg = "clients";
  web.AddRule(from_members);
  Vnic vnic;
  vnic.id = "vm1";
  vnic.security_groups = {"web", "not-created-yet"};
  vnic.ips = {*IpAddress::Parse("10.0.0.5")};
  model.PutVnic(vnic);

  auto ir = BuildFilterIr(*BuildVnicPolicy(model, *model.FindVnic("vm1")));
  ASSERT_TRUE(ir.ok());
  EXPECT_EQ((*ir)->RuleCount(), 0u);  // "clients" does not exist: allows nothing
  EXPECT_TRUE((*ir)->outbound_open);

  SecurityGroup& clients = model.GetOrCreateSg("clients");
  clients.AddMember(*IpAddress::Parse("192.0.2.7"));
  clients.AddMember(*IpAddress::Parse("2001:db8::7"));
  ir = BuildFilterIr(*BuildVnicPolicy(model, *model.FindVnic("vm1")));
  ASSERT_TRUE(ir.ok());
  ASSERT_EQ((*ir)->RulesFor(Direction::kInbound, 4).size(), 1u);
  EXPECT_EQ((*ir)->RulesFor(Direction::kInbound, 4)[0].remotes[0].length, 32);
  ASSERT_EQ((*ir)->RulesFor(Direction::kInbound, 6).size(), 1u);
  EXPECT_EQ((*ir)->RulesFor(Direction::kInbound, 6)[0].remotes[0].length, 128);
}

}  // namespace
}  // namespace butterfly
