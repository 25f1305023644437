#include "core/model.h"

#include <gtest/gtest.h>

#include "core/text.h"

namespace butterfly {
namespace {

Rule TcpRule(uint32_t first, uint32_t last, const char* cidr) {
  Rule rule;
  rule.protocol = kProtoTcp;
  rule.port_start = first;
  rule.port_end = last;
  rule.cidr = *Cidr::Parse(cidr);
  return rule;
}

TEST(RuleTest, ValidatesPortsProtocolsAndRemote) {
  EXPECT_TRUE(TcpRule(80, 80, "0.0.0.0/0").Validate().ok());
  EXPECT_FALSE(TcpRule(81, 80, "0.0.0.0/0").Validate().ok());
  EXPECT_FALSE(TcpRule(80, 70000, "0.0.0.0/0").Validate().ok());

  Rule no_ports = TcpRule(0, 0, "0.0.0.0/0");
  no_ports.port_start.reset();
  auto missing = no_ports.Validate();
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("need port_start and port_end"), std::string::npos);

  Rule icmp;
  icmp.protocol = kProtoIcmp;
  icmp.cidr = *Cidr::Parse("198.18.0.0/15");
  EXPECT_TRUE(icmp.Validate().ok());
  icmp.port_start = 0;
  icmp.port_end = 65535;
  EXPECT_TRUE(icmp.Validate().ok()) << "every port on a portless protocol is harmless";
  icmp.port_start = 8;
  icmp.port_end = 8;
  EXPECT_FALSE(icmp.Validate().ok()) << "a narrower range would be silently ignored";

  Rule bad_protocol = icmp;
  bad_protocol.port_start.reset();
  bad_protocol.port_end.reset();
  bad_protocol.protocol = 256;
  EXPECT_FALSE(bad_protocol.Validate().ok());
  bad_protocol.protocol = -2;
  EXPECT_FALSE(bad_protocol.Validate().ok());

  Rule both = TcpRule(22, 22, "10.0.0.0/8");
  both.remote_sg = "sg-admin";
  EXPECT_FALSE(both.Validate().ok());
  Rule neither = TcpRule(22, 22, "10.0.0.0/8");
  neither.cidr.reset();
  EXPECT_FALSE(neither.Validate().ok());
  neither.remote_sg = "sg admin";
  EXPECT_FALSE(neither.Validate().ok()) << "ids have no spaces";
}

TEST(RuleTest, EqualityIncludesRemoteGroupAndDirection) {
  Rule a = TcpRule(22, 22, "10.0.0.0/8");
  a.cidr.reset();
  a.remote_sg = "sg-a";
  Rule b = a;
  b.remote_sg = "sg-b";
  EXPECT_NE(a, b);
  Rule out = a;
  out.direction = Direction::kOutbound;
  EXPECT_NE(a, out);
  EXPECT_EQ(a, Rule(a));
}

TEST(SecurityGroupTest, KeepsRulesOnceInOrderAndTracksReferences) {
  SecurityGroup sg("sg-web");
  Rule web = TcpRule(80, 80, "0.0.0.0/0");
  Rule ssh = TcpRule(22, 22, "10.0.0.0/8");
  ssh.cidr.reset();
  ssh.remote_sg = "sg-admin";
  EXPECT_TRUE(sg.AddRule(web));
  EXPECT_TRUE(sg.AddRule(ssh));
  EXPECT_FALSE(sg.AddRule(web));
  ASSERT_EQ(sg.rules().size(), 2u);
  EXPECT_EQ(sg.rules()[0], web);
  EXPECT_EQ(sg.remote_sg_refs().at("sg-admin"), 1);
  EXPECT_FALSE(sg.HasOutboundRule());
  EXPECT_TRUE(sg.RemoveRule(ssh));
  EXPECT_FALSE(sg.RemoveRule(ssh));
  EXPECT_TRUE(sg.remote_sg_refs().empty());

  Rule out = web;
  out.direction = Direction::kOutbound;
  sg.AddRule(out);
  EXPECT_TRUE(sg.HasOutboundRule());
  sg.RemoveRule(out);
  EXPECT_FALSE(sg.HasOutboundRule());
}

TEST(SecurityGroupTest, SameContentIgnoresOrder) {
  SecurityGroup a("x"), b("x");
  Rule r1 = TcpRule(80, 80, "0.0.0.0/0"), r2 = TcpRule(443, 443, "::/0");
  a.AddRule(r1);
  a.AddRule(r2);
  b.AddRule(r2);
  b.AddRule(r1);
  EXPECT_TRUE(a.SameContent(b));
  a.AddMember(*IpAddress::Parse("198.18.0.1"));
  EXPECT_FALSE(a.SameContent(b));
}

TEST(ValidateIdTest, AcceptsOnlyWhatIsSafeAsAFileNameAndOnACommandLine) {
  for (const char* good :
       {"vnic_1", "8c0e7c2a-5b1f-4c53-9d0c-3f5b8f1d9e11", "sg-web", "_x", "tenant.7:web", "A"}) {
    EXPECT_TRUE(ValidateId("nic", good).ok()) << good;
  }
  for (const char* bad : {"",
                          "a/b",
                          "a b",
                          ".",
                          "..",
                          "tab\there",
                          "quote\"d",
                          "-rf",
                          "*",
                          "a;b",
                          "~root",
                          ".hidden",
                          "-",
                          "a$b",
                          "a`b",
                          "a'b",
                          "a|b",
                          "a&b",
                          "\xff\xfe"
                          "FPZ",
                          "caf\xc3\xa9",
                          "a\nb",
                          "a=b",
                          "a,b",
                          "a+b"}) {
    EXPECT_FALSE(ValidateId("nic", bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateId("nic", std::string(255, 'a')).ok());
  EXPECT_FALSE(ValidateId("nic", std::string(256, 'a')).ok());
  EXPECT_EQ(ValidateId("nic", "\xff-rf").error(),
            "nic id '\\xff-rf' does not start with a letter, a digit or '_' (1-255 characters "
            "from A-Z a-z 0-9 _ - . :, starting with a letter, a digit or '_')");
}

TEST(TextTest, Utf8IsCheckedAsRfc3629SaysAndQuotedSafely) {
  size_t bad = 99;
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : std::vector<Case>{{"\x80", 0},
                                         {"ab\xc0\x80", 2},        // overlong NUL
                                         {"\xc1\xbf", 0},          // overlong
                                         {"\xe0\x80\x80", 0},      // overlong 3 bytes
                                         {"\xed\xa0\x80", 0},      // surrogate
                                         {"\xf4\x90\x80\x80", 0},  // past U+10FFFF
                                         {"\xf5\x80\x80\x80", 0},
                                         {"abc\xe2\x82", 3},  // cut short
                                         {"\xc3\x28", 0},     // bad continuation
                                         {"\xff", 0}}) {
    EXPECT_FALSE(IsValidUtf8(c.text, &bad)) << QuoteForMessage(c.text);
    EXPECT_EQ(bad, c.offset) << QuoteForMessage(c.text);
  }
  EXPECT_EQ(QuoteForMessage(std::string("a'\\\x00\xff z", 7)), "'a\\x27\\x5c\\x00\\xff z'");
}

}  // namespace
}  // namespace butterfly
