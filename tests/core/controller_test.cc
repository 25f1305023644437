// What each call does when what it names is missing, exists with the same content or exists with
// other content (the idempotence the API promises), and the all-or-nothing rule, against a
// recording dataplane.
#include "core/controller.h"

#include "core/api_limits.h"

#include <gtest/gtest.h>

#include <map>

namespace butterfly {
namespace {

class RecordingDataplane final : public Dataplane {
 public:
  std::string Describe() const override { return "recording"; }
  bool Forwarding() const override { return true; }
  Status AddVnic(const Vnic& vnic, const std::string& path) override {
    calls.push_back("add " + vnic.id + " " + path);
    if (fail_next_add) {
      fail_next_add = false;
      return Fail("no more ports");
    }
    return Ok();
  }
  Status UpdateVnic(const Vnic&, const Vnic& after, const std::string&) override {
    calls.push_back("update " + after.id);
    return Ok();
  }
  void RemoveVnic(const Vnic& vnic) override { calls.push_back("remove " + vnic.id); }
  void SetPolicy(std::shared_ptr<const VnicPolicy> policy) override {
    calls.push_back("policy " + policy->vnic_id);
    policies[policy->vnic_id] = policy;
  }
  VnicLink Link(const Vnic&) const override { return {"connected", ""}; }
  VnicCounters Counters(const Vnic&) const override { return {}; }

  std::vector<std::string> TakeCalls() { return std::exchange(calls, {}); }

  std::vector<std::string> calls;
  std::map<std::string, std::shared_ptr<const VnicPolicy>> policies;
  bool fail_next_add = false;
};

Vnic MakeVnic(const std::string& id, uint32_t vni = 42) {
  Vnic vnic;
  vnic.id = id;
  vnic.mac = *MacAddress::Parse("52:54:00:12:34:01");
  vnic.vni = vni;
  vnic.ips = {*IpAddress::Parse("198.18.0.1")};
  return vnic;
}

Rule InboundTcp(uint32_t port, const std::string& remote_sg = "") {
  Rule rule;
  rule.protocol = kProtoTcp;
  rule.port_start = port;
  rule.port_end = port;
  if (remote_sg.empty()) {
    rule.cidr = *Cidr::Parse("0.0.0.0/0");
  } else {
    rule.remote_sg = remote_sg;
  }
  return rule;
}

class ControllerTest : public ::testing::Test {
 protected:
  RecordingDataplane dataplane;
  Controller controller{"/run/butterfly/", dataplane};

  // vnic_1 in sg-web, its policy published: when the publication window starts.
  Controller::Clock::time_point AddPublishedVnicUsingSgWeb() {
    Vnic vnic = MakeVnic("vnic_1");
    vnic.security_groups = {"sg-web"};
    EXPECT_TRUE(controller.AddVnic(vnic).ok());
    auto start = Controller::Clock::now();
    controller.PublishPolicies(start);
    return start;
  }
};

TEST_F(ControllerTest, NicAddReturnsTheOriginalsSocketPath) {
  auto path = controller.AddVnic(MakeVnic("vnic_1"));
  ASSERT_TRUE(path.ok()) << path.error();
  EXPECT_EQ(*path, "/run/butterfly/qemu-vhost-vnic_1");
  Vnic tap = MakeVnic("tap1");
  tap.type = VnicType::kTap;
  EXPECT_EQ(*controller.AddVnic(tap), "tap1");
}

TEST_F(ControllerTest, NicAddSameContentIsANoOp) {
  ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_1")).ok());
  controller.FlushPolicies();
  dataplane.TakeCalls();
  auto path = controller.AddVnic(MakeVnic("vnic_1"));
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, "/run/butterfly/qemu-vhost-vnic_1");
  controller.FlushPolicies();
  EXPECT_TRUE(dataplane.TakeCalls().empty()) << "the VM must keep its link";
}

TEST_F(ControllerTest, NicAddDifferentContentUpdatesInPlace) {
  ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_1")).ok());
  dataplane.TakeCalls();
  Vnic changed = MakeVnic("vnic_1", 51);
  changed.security_groups = {"sg-web"};
  ASSERT_TRUE(controller.AddVnic(changed).ok());
  controller.FlushPolicies();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"update vnic_1", "policy vnic_1"}));
  EXPECT_EQ(controller.model().FindVnic("vnic_1")->vni, 51u);
}

TEST_F(ControllerTest, NicAddAnotherTypeRebuildsThePort) {
  ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_1")).ok());
  dataplane.TakeCalls();
  Vnic tap = MakeVnic("vnic_1");
  tap.type = VnicType::kTap;
  ASSERT_TRUE(controller.AddVnic(tap).ok());
  EXPECT_EQ(dataplane.TakeCalls(),
            (std::vector<std::string>{"remove vnic_1", "add vnic_1 vnic_1"}));
}

TEST_F(ControllerTest, DeletesOfMissingThingsSucceed) {
  EXPECT_TRUE(controller.RemoveVnic("nope").ok());
  EXPECT_TRUE(controller.RemoveSecurityGroup("nope").ok());
  EXPECT_TRUE(controller.RemoveRule("nope", InboundTcp(80)).ok());
  EXPECT_TRUE(controller.RemoveMember("nope", *IpAddress::Parse("198.18.0.9")).ok());
  EXPECT_TRUE(dataplane.TakeCalls().empty());
  EXPECT_TRUE(controller.model().security_groups().empty()) << "a delete never creates";
}

TEST_F(ControllerTest, SgAddSameContentIsANoOpDifferentReplaces) {
  SecurityGroup sg("sg-web");
  sg.AddRule(InboundTcp(80));
  sg.AddMember(*IpAddress::Parse("198.18.0.7"));
  ASSERT_TRUE(controller.PutSecurityGroup(sg).ok());
  Vnic vnic = MakeVnic("vnic_1");
  vnic.security_groups = {"sg-web"};
  ASSERT_TRUE(controller.AddVnic(vnic).ok());
  controller.FlushPolicies();
  dataplane.TakeCalls();

  ASSERT_TRUE(controller.PutSecurityGroup(sg).ok());
  controller.FlushPolicies();
  EXPECT_TRUE(dataplane.TakeCalls().empty());

  SecurityGroup replacement("sg-web");
  replacement.AddRule(InboundTcp(443));
  ASSERT_TRUE(controller.PutSecurityGroup(replacement).ok());
  controller.FlushPolicies();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"policy vnic_1"}));
  const SecurityGroup* stored = controller.model().FindSg("sg-web");
  ASSERT_EQ(stored->rules().size(), 1u);
  EXPECT_EQ(stored->rules()[0].port_start, 443u);
  EXPECT_TRUE(stored->members().empty()) << "full replace: members too";
}

TEST_F(ControllerTest, RuleAndMemberAddCreateTheGroupAndIgnoreDuplicates) {
  ASSERT_TRUE(controller.AddRule("sg-new", InboundTcp(22)).ok());
  ASSERT_NE(controller.model().FindSg("sg-new"), nullptr);
  ASSERT_TRUE(controller.AddRule("sg-new", InboundTcp(22)).ok());
  EXPECT_EQ(controller.model().FindSg("sg-new")->rules().size(), 1u);

  ASSERT_TRUE(controller.AddMember("sg-members", *IpAddress::Parse("2001:db8::5")).ok());
  ASSERT_TRUE(controller.AddMember("sg-members", *IpAddress::Parse("2001:db8::5")).ok());
  EXPECT_EQ(controller.model().FindSg("sg-members")->members().size(), 1u);
}

TEST_F(ControllerTest, NicUpdateOfAMissingNicNamesIt) {
  VnicUpdate update;
  update.id = "ghost";
  update.ip_anti_spoof = true;
  auto status = controller.UpdateVnic(update);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), "nic ghost: no such nic");
}

TEST_F(ControllerTest, UnknownGroupIsAcceptedAndCountsAsEmptyUntilCreated) {
  Vnic vnic = MakeVnic("vnic_1");
  vnic.security_groups = {"sg-later"};
  ASSERT_TRUE(controller.AddVnic(vnic).ok());
  controller.FlushPolicies();
  EXPECT_TRUE(dataplane.policies.at("vnic_1")->rules.empty());
  ASSERT_TRUE(controller.AddRule("sg-later", InboundTcp(80)).ok());
  controller.FlushPolicies();
  EXPECT_EQ(dataplane.policies.at("vnic_1")->rules.size(), 1u);
  ASSERT_TRUE(controller.RemoveSecurityGroup("sg-later").ok());
  controller.FlushPolicies();
  EXPECT_TRUE(dataplane.policies.at("vnic_1")->rules.empty());
  EXPECT_EQ(controller.model().FindVnic("vnic_1")->security_groups,
            std::vector<std::string>{"sg-later"})
      << "deleting a group keeps the reference";
}

TEST_F(ControllerTest, MemberChangesRepublishVnicsWhoseRulesNameTheGroup) {
  ASSERT_TRUE(controller.AddRule("sg-web", InboundTcp(22, "sg-admin")).ok());
  Vnic vnic = MakeVnic("vnic_1");
  vnic.security_groups = {"sg-web"};
  ASSERT_TRUE(controller.AddVnic(vnic).ok());
  ASSERT_TRUE(controller.AddVnic(MakeVnic("bystander")).ok());
  controller.FlushPolicies();
  dataplane.TakeCalls();

  ASSERT_TRUE(controller.AddMember("sg-admin", *IpAddress::Parse("198.18.0.50")).ok());
  controller.FlushPolicies();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"policy vnic_1"}));
  const auto& rules = dataplane.policies.at("vnic_1")->rules;
  ASSERT_EQ(rules.size(), 1u);
  ASSERT_EQ(rules[0].remotes.size(), 1u);
  EXPECT_EQ(rules[0].remotes[0].ToString(), "198.18.0.50/32");
}

TEST_F(ControllerTest, OutboundBecomesRestrictedOnceAGroupHasAnOutboundRule) {
  Vnic vnic = MakeVnic("vnic_1");
  vnic.security_groups = {"sg-a", "sg-b"};
  ASSERT_TRUE(controller.AddVnic(vnic).ok());
  ASSERT_TRUE(controller.AddRule("sg-a", InboundTcp(80)).ok());
  controller.FlushPolicies();
  EXPECT_FALSE(dataplane.policies.at("vnic_1")->restrict_outbound);
  Rule out = InboundTcp(53);
  out.direction = Direction::kOutbound;
  ASSERT_TRUE(controller.AddRule("sg-b", out).ok());
  controller.FlushPolicies();
  EXPECT_TRUE(dataplane.policies.at("vnic_1")->restrict_outbound);
}

TEST_F(ControllerTest, AFailedCallChangesNothing) {
  dataplane.fail_next_add = true;
  auto failed = controller.AddVnic(MakeVnic("vnic_1"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error(), "nic vnic_1: no more ports");
  EXPECT_EQ(controller.model().FindVnic("vnic_1"), nullptr);

  Vnic multicast = MakeVnic("vnic_2");
  multicast.mac = *MacAddress::Parse("01:00:5e:00:00:01");
  auto rejected = controller.AddVnic(multicast);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.error().find("nic vnic_2: mac '01:00:5e:00:00:01'"), std::string::npos);

  Vnic long_tap = MakeVnic("a-very-long-tap-name");
  long_tap.type = VnicType::kTap;
  EXPECT_FALSE(controller.AddVnic(long_tap).ok());

  Rule bad = InboundTcp(80);
  bad.port_end = 10;
  EXPECT_FALSE(controller.AddRule("sg-x", bad).ok());
  EXPECT_EQ(controller.model().FindSg("sg-x"), nullptr) << "no group created by a failed call";
  EXPECT_TRUE(controller.model().vnics().empty());
}

TEST_F(ControllerTest, TypeChangeThatFailsPutsTheOldPortBack) {
  ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_1")).ok());
  dataplane.TakeCalls();
  Vnic tap = MakeVnic("vnic_1");
  tap.type = VnicType::kTap;
  dataplane.fail_next_add = true;
  EXPECT_FALSE(controller.AddVnic(tap).ok());
  EXPECT_EQ(dataplane.TakeCalls(),
            (std::vector<std::string>{"remove vnic_1", "add vnic_1 vnic_1",
                                      "add vnic_1 /run/butterfly/qemu-vhost-vnic_1"}));
  EXPECT_EQ(controller.model().FindVnic("vnic_1")->type, VnicType::kVhostUserServer);
}

TEST_F(ControllerTest, BurstsOfChangesArePublishedOncePerWindow) {
  auto start = AddPublishedVnicUsingSgWeb();
  EXPECT_EQ(
      dataplane.TakeCalls(),
      (std::vector<std::string>{"add vnic_1 /run/butterfly/qemu-vhost-vnic_1", "policy vnic_1"}));
  EXPECT_FALSE(controller.PublishDue().has_value());

  for (uint32_t port = 1; port <= 100; ++port) {
    ASSERT_TRUE(controller.AddRule("sg-web", InboundTcp(port)).ok());
    controller.PublishPolicies(start + std::chrono::microseconds(port));
  }
  EXPECT_TRUE(dataplane.TakeCalls().empty()) << "within the window: deferred";
  ASSERT_TRUE(controller.PublishDue().has_value());
  EXPECT_EQ(*controller.PublishDue(), start + Controller::kPublishWindow);
  controller.PublishPolicies(*controller.PublishDue());
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"policy vnic_1"}));
  EXPECT_EQ(dataplane.policies.at("vnic_1")->rules.size(), 100u);
  EXPECT_FALSE(controller.PublishDue().has_value());
}

// A burst of additions keeps its deferral past the answers; a removal (or anything that may
// forbid) is published before them, so its answer means its flows are cut.
TEST_F(ControllerTest, ChangesThatForbidAreNotLeftDeferredPastTheirAnswer) {
  auto start = AddPublishedVnicUsingSgWeb();
  dataplane.TakeCalls();
  ASSERT_TRUE(controller.AddRule("sg-web", InboundTcp(80)).ok());
  controller.PublishPolicies(start + std::chrono::microseconds(1));
  controller.FlushRestrictions();
  EXPECT_TRUE(dataplane.TakeCalls().empty()) << "an added inbound rule stays deferred";

  ASSERT_TRUE(controller.RemoveRule("sg-web", InboundTcp(80)).ok());
  controller.PublishPolicies(start + std::chrono::microseconds(2));
  EXPECT_TRUE(dataplane.TakeCalls().empty()) << "within the window";
  controller.FlushRestrictions();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"policy vnic_1"}));
  EXPECT_TRUE(dataplane.policies.at("vnic_1")->rules.empty());
  EXPECT_FALSE(controller.PublishDue().has_value());

  Rule outbound = InboundTcp(443);
  outbound.direction = Direction::kOutbound;
  ASSERT_TRUE(controller.AddRule("sg-web", outbound).ok());
  controller.FlushRestrictions();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"policy vnic_1"}))
      << "a first outbound rule closes the rest of the outbound traffic";

  // nic_add of an existing vnic is an update: here it leaves its only group.
  Vnic without_groups = MakeVnic("vnic_1");
  ASSERT_TRUE(controller.AddVnic(without_groups).ok());
  controller.FlushRestrictions();
  EXPECT_EQ(dataplane.TakeCalls(), (std::vector<std::string>{"update vnic_1", "policy vnic_1"}));
  EXPECT_TRUE(dataplane.policies.at("vnic_1")->rules.empty());
}

// The original's fixed limits (50 VNIs, 30 vnics per VNI) are gone; what stays are bounds far above
// what a host serves, each refused with an error naming it, the state unchanged.
TEST_F(ControllerTest, EachApiLimitIsRefusedByNameAndChangesNothing) {
  Vnic vnic = MakeVnic("vnic_1");
  vnic.ips.clear();
  for (size_t i = 0; i <= kMaxIpsPerVnic; ++i) {
    vnic.ips.push_back(*IpAddress::Parse("2001:db8::" + std::to_string(i + 1)));
  }
  EXPECT_EQ(controller.AddVnic(vnic).error(), "nic vnic_1: 1025 IPs: a vnic has at most 1024");
  vnic.ips.pop_back();
  ASSERT_TRUE(controller.AddVnic(vnic).ok());

  Vnic grouped = MakeVnic("vnic_2");
  for (size_t i = 0; i <= kMaxSgsPerVnic; ++i)
    grouped.security_groups.push_back("sg" + std::to_string(i));
  EXPECT_EQ(controller.AddVnic(grouped).error(),
            "nic vnic_2: 257 security groups: a vnic has at most 256");
  VnicUpdate update;
  update.id = "vnic_1";
  update.security_groups = grouped.security_groups;
  EXPECT_EQ(controller.UpdateVnic(update).error(),
            "nic vnic_1: 257 security groups: a vnic has at most 256");
  EXPECT_TRUE(controller.model().FindVnic("vnic_1")->security_groups.empty());

  SecurityGroup big("big");
  for (uint32_t i = 0; i <= kMaxRulesPerSg; ++i) {
    Rule rule = InboundTcp(i % 65535 + 1);
    rule.cidr = *Cidr::Parse("198.18." + std::to_string(i / 65535) + ".0/24");
    big.AddRule(rule);
  }
  EXPECT_EQ(controller.PutSecurityGroup(big).error(),
            "sg big: 100001 rules: a security group has at most 100000");
  EXPECT_EQ(controller.model().FindSg("big"), nullptr);
  SecurityGroup full("big");
  for (const Rule& rule : big.rules()) {
    if (full.rules().size() < kMaxRulesPerSg) full.AddRule(rule);
  }
  ASSERT_TRUE(controller.PutSecurityGroup(full).ok());
  EXPECT_EQ(controller.AddRule("big", big.rules().back()).error(),
            "sg big: has 100000 rules already, the most a security group has");
  EXPECT_TRUE(controller.AddRule("big", big.rules().front()).ok()) << "a duplicate adds nothing";
  EXPECT_EQ(controller.model().FindSg("big")->rules().size(), kMaxRulesPerSg);
}

TEST_F(ControllerTest, NumbersOfVnicsGroupsAndMembersAreBounded) {
  for (size_t i = 0; i < kMaxSecurityGroups; ++i) {
    ASSERT_TRUE(
        controller.AddMember("sg" + std::to_string(i), *IpAddress::Parse("198.18.0.1")).ok());
  }
  EXPECT_EQ(controller.AddRule("one-more", InboundTcp(80)).error(),
            "sg one-more: there are 65536 security groups already, the most one butterflyd keeps");
  EXPECT_EQ(controller.AddMember("one-more", *IpAddress::Parse("198.18.0.1")).error(),
            "sg one-more: there are 65536 security groups already, the most one butterflyd keeps");
  EXPECT_FALSE(controller.PutSecurityGroup(SecurityGroup("one-more")).ok());
  EXPECT_TRUE(controller.AddRule("sg7", InboundTcp(80)).ok()) << "existing groups still change";
  EXPECT_EQ(controller.model().security_groups().size(), kMaxSecurityGroups);

  IpAddress member = *IpAddress::Parse("2001:db8::");
  for (uint32_t n = 1; n < kMaxMembersPerSg; ++n) {  // 198.18.0.1 is one already
    for (int byte = 0; byte < 4; ++byte)
      member.bytes[15 - byte] = static_cast<uint8_t>(n >> (8 * byte));
    ASSERT_TRUE(controller.AddMember("sg0", member).ok());
  }
  EXPECT_EQ(controller.AddMember("sg0", *IpAddress::Parse("2001:db8:1::1")).error(),
            "sg sg0: has 1000000 members already, the most a security group has");
  EXPECT_TRUE(controller.AddMember("sg0", member).ok()) << "a duplicate adds nothing";

  for (size_t i = 0; i < kMaxVnics; ++i) {
    ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_" + std::to_string(i))).ok());
  }
  dataplane.TakeCalls();
  EXPECT_EQ(controller.AddVnic(MakeVnic("one_more")).error(),
            "nic one_more: there are 65536 vnics already, the most one butterflyd serves");
  EXPECT_TRUE(dataplane.TakeCalls().empty()) << "refused before the dataplane is asked";
  EXPECT_TRUE(controller.AddVnic(MakeVnic("vnic_7", 43)).ok()) << "existing vnics still change";
}

TEST_F(ControllerTest, NoFixedLimitsOnCounts) {
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(controller.AddVnic(MakeVnic("vnic_" + std::to_string(i), 100 + i % 200)).ok());
  }
  EXPECT_EQ(controller.model().vnics().size(), 2000u);
}

}  // namespace
}  // namespace butterfly
