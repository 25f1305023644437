#include "core/net_types.h"

#include <gtest/gtest.h>

namespace butterfly {
namespace {

TEST(MacAddressTest, ParsesAndFormatsCanonically) {
  auto mac = MacAddress::Parse("52:54:00:AB:cd:01");
  ASSERT_TRUE(mac.ok()) << mac.error();
  EXPECT_EQ(mac->ToString(), "52:54:00:ab:cd:01");
  EXPECT_FALSE(mac->IsMulticast());
}

TEST(MacAddressTest, RejectsMalformedText) {
  for (const char* text : {"", "52:54:00:zz:34:02", "52:54:00:00:34", "52-54-00-00-34-02",
                           "52:54:00:00:34:020", "5:54:00:00:34:02:"}) {
    auto mac = MacAddress::Parse(text);
    ASSERT_FALSE(mac.ok()) << text;
    EXPECT_NE(mac.error().find("is not a MAC address"), std::string::npos);
  }
  EXPECT_TRUE(MacAddress::Parse("01:00:5e:00:00:01")->IsMulticast());
}

TEST(IpAddressTest, ParsesBothFamilies) {
  auto v4 = IpAddress::Parse("198.18.0.1");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->v4_host_order(), 0xc6120001u);
  auto v6 = IpAddress::Parse("2001:DB8::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->ToString(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::Parse("198.18.0.256").ok());
  EXPECT_FALSE(IpAddress::Parse("198.18.0").ok());
  EXPECT_FALSE(IpAddress::Parse(std::string_view("1.2.3.4\0x", 9)).ok());
  EXPECT_TRUE(IpAddress::Parse("0.0.0.0")->IsUnspecified());
  EXPECT_TRUE(IpAddress::Parse("ff02::1")->IsMulticast());
}

TEST(CidrTest, ClearsHostBitsAndMatchesOnlyItsFamily) {
  auto cidr = Cidr::Parse("198.18.7.9/16");
  ASSERT_TRUE(cidr.ok()) << cidr.error();
  EXPECT_EQ(cidr->ToString(), "198.18.0.0/16");
  EXPECT_TRUE(cidr->Contains(*IpAddress::Parse("198.18.200.1")));
  EXPECT_FALSE(cidr->Contains(*IpAddress::Parse("198.19.0.1")));
  auto any_v4 = Cidr::Parse("0.0.0.0/0");
  EXPECT_TRUE(any_v4->Contains(*IpAddress::Parse("8.8.8.8")));
  EXPECT_FALSE(any_v4->Contains(*IpAddress::Parse("2001:db8::1")));
  auto any_v6 = Cidr::Parse("::/0");
  EXPECT_TRUE(any_v6->Contains(*IpAddress::Parse("2001:db8::1")));
  EXPECT_FALSE(any_v6->Contains(*IpAddress::Parse("8.8.8.8")));
  EXPECT_EQ(Cidr::Parse("2001:db8:ffff::/33")->ToString(), "2001:db8:8000::/33");
}

TEST(CidrTest, RejectsBadMasks) {
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("10.0.0.0").ok());
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/-1").ok());
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/8x").ok());
  EXPECT_TRUE(Cidr::Parse("2001:db8::/128").ok());
  EXPECT_FALSE(Cidr::Parse("2001:db8::/129").ok());
  auto error = Cidr::Make("10.0.0.0", 40);
  ASSERT_FALSE(error.ok());
  EXPECT_NE(error.error().find("mask size must be 0-32"), std::string::npos);
}

TEST(ParseIntegerTest, WholeNumbersInRangeOnly) {
  EXPECT_EQ(*ParseInteger("42", 0, 100), 42);
  EXPECT_FALSE(ParseInteger("", 0, 100).ok());
  EXPECT_FALSE(ParseInteger("4 2", 0, 100).ok());
  EXPECT_FALSE(ParseInteger("101", 0, 100).ok());
  EXPECT_FALSE(ParseInteger("-1", 0, 100).ok());
  EXPECT_EQ(*ParseInteger("-1", -1, 255), -1);
}

}  // namespace
}  // namespace butterfly
