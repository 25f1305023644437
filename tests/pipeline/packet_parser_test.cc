#include "pipeline/packet_parser.h"

#include <gtest/gtest.h>

#include <random>

#include "support/packet_builder.h"

namespace butterfly {
namespace {

using testing::Ip;
using testing::RawPacket;

PacketKey Parse(const std::vector<uint8_t>& bytes, uint16_t ethertype, ParseStatus expected) {
  PacketKey key;
  EXPECT_EQ(ParsePacketKey(bytes.data(), bytes.size(), ethertype, &key), expected);
  return key;
}

TEST(PacketKeyTest, ParsesIpv4Tcp) {
  auto bytes = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 6, RawPacket::Tcp(40000, 22, kTcpSyn));
  PacketKey key = Parse(bytes, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.family, 4);
  EXPECT_EQ(key.src, Ip("10.0.0.1"));
  EXPECT_EQ(key.dst, Ip("10.0.0.2"));
  EXPECT_EQ(key.proto, 6);
  EXPECT_EQ(key.src_port, 40000);
  EXPECT_EQ(key.dst_port, 22);
  EXPECT_EQ(key.tcp_flags, kTcpSyn);
  EXPECT_EQ(key.fragment, 0);
}

TEST(PacketKeyTest, Ipv4AddressLeavesTheOtherTwelveBytesZero) {
  auto bytes = RawPacket::Ipv4("255.255.255.255", "1.2.3.4", 17, RawPacket::Udp(1, 2));
  PacketKey key = Parse(bytes, kEthTypeIpv4, ParseStatus::kOk);
  for (int i = 4; i < 16; ++i) EXPECT_EQ(key.src[i], 0) << i;
}

TEST(PacketKeyTest, IgnoresEthernetPaddingPastTotalLength) {
  auto bytes = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 17, RawPacket::Udp(68, 67));
  bytes.resize(bytes.size() + 18, 0xee);
  PacketKey key = Parse(bytes, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.dst_port, 67);
}

TEST(PacketKeyTest, RefusesMalformedIpv4) {
  auto good = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 6, RawPacket::Tcp(1, 2, 0));
  PacketKey key;
  EXPECT_EQ(ParsePacketKey(good.data(), 19, kEthTypeIpv4, &key), ParseStatus::kTruncated);
  // Total length says more than the buffer holds.
  EXPECT_EQ(ParsePacketKey(good.data(), good.size() - 1, kEthTypeIpv4, &key),
            ParseStatus::kTruncated);
  auto bad_version = good;
  bad_version[0] = 0x65;
  EXPECT_EQ(ParsePacketKey(bad_version.data(), bad_version.size(), kEthTypeIpv4, &key),
            ParseStatus::kBadHeader);
  auto short_ihl = good;
  short_ihl[0] = 0x44;
  EXPECT_EQ(ParsePacketKey(short_ihl.data(), short_ihl.size(), kEthTypeIpv4, &key),
            ParseStatus::kBadHeader);
  auto long_ihl = good;
  long_ihl[0] = 0x4f;  // 60-byte header in a 40-byte packet
  EXPECT_EQ(ParsePacketKey(long_ihl.data(), long_ihl.size(), kEthTypeIpv4, &key),
            ParseStatus::kTruncated);
  // A TCP header cut short.
  auto cut = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 6, std::vector<uint8_t>(10));
  EXPECT_EQ(ParsePacketKey(cut.data(), cut.size(), kEthTypeIpv4, &key), ParseStatus::kTruncated);
  EXPECT_EQ(ParsePacketKey(good.data(), good.size(), 0x0806, &key), ParseStatus::kNotIp);
}

TEST(PacketKeyTest, EveryPrefixOfAPacketParsesOrIsRefusedWithoutOverrun) {
  // Run under ASan this proves no read past `len`, whatever the cut.
  std::vector<std::vector<uint8_t>> packets = {
      RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 6, RawPacket::Tcp(1, 2, kTcpSyn)),
      RawPacket::Ipv4(
          "10.0.0.1", "10.0.0.2", 1,
          RawPacket::Icmp(3, 3, 0,
                          RawPacket::Ipv4("10.0.0.2", "8.8.8.8", 17, RawPacket::Udp(5353, 53)))),
      RawPacket::Ipv6("2001:db8::1", "2001:db8::2", 0,
                      {44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 9}, RawPacket::Tcp(1, 2, 0)),
  };
  for (const auto& full : packets) {
    for (size_t len = 0; len <= full.size(); ++len) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + len);
      PacketKey key;
      uint16_t type = (full[0] >> 4) == 4 ? kEthTypeIpv4 : kEthTypeIpv6;
      ParseStatus status = ParsePacketKey(cut.data(), cut.size(), type, &key);
      if (len < full.size()) {
        EXPECT_NE(status, ParseStatus::kOk) << "len " << len;
      }
    }
  }
}

TEST(PacketKeyTest, Ipv4FragmentsCarryTheirIdAndNoPortsPastTheFirst) {
  auto first = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 17, RawPacket::Udp(1000, 53), 0x2000, 77);
  PacketKey key = Parse(first, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.fragment, kFragmentMore);
  EXPECT_EQ(key.fragment_id, 77u);
  EXPECT_EQ(key.dst_port, 53);
  auto later = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 17, std::vector<uint8_t>(3), 0x0010, 77);
  key = Parse(later, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.fragment, kFragmentNonFirst);
  EXPECT_EQ(key.dst_port, 0);
  EXPECT_EQ(key.proto, 17);
}

TEST(PacketKeyTest, ParsesIpv6ThroughExtensionHeaders) {
  // Hop-by-hop (8 bytes) -> destination options (16 bytes) -> UDP.
  std::vector<uint8_t> ext = {60, 0, 0, 0, 0, 0, 0, 0, 17, 1};
  ext.resize(8 + 16, 0);
  auto bytes = RawPacket::Ipv6("2001:db8::1", "2001:db8::2", 0, ext, RawPacket::Udp(546, 547));
  PacketKey key = Parse(bytes, kEthTypeIpv6, ParseStatus::kOk);
  EXPECT_EQ(key.family, 6);
  EXPECT_EQ(key.proto, 17);
  EXPECT_EQ(key.src_port, 546);
  EXPECT_EQ(key.dst, Ip("2001:db8::2"));
}

TEST(PacketKeyTest, Ipv6FragmentHeader) {
  // Fragment header: next = TCP, offset 0, M = 1, id 0x01020304.
  std::vector<uint8_t> first_ext = {6, 0, 0x00, 0x01, 1, 2, 3, 4};
  auto first =
      RawPacket::Ipv6("2001:db8::1", "2001:db8::2", 44, first_ext, RawPacket::Tcp(5, 80, kTcpSyn));
  PacketKey key = Parse(first, kEthTypeIpv6, ParseStatus::kOk);
  EXPECT_EQ(key.fragment, kFragmentMore);
  EXPECT_EQ(key.fragment_id, 0x01020304u);
  EXPECT_EQ(key.dst_port, 80);
  std::vector<uint8_t> later_ext = {6, 0, 0x00, 0xa8, 1, 2, 3, 4};  // offset 21, M = 0
  auto later =
      RawPacket::Ipv6("2001:db8::1", "2001:db8::2", 44, later_ext, std::vector<uint8_t>(4));
  key = Parse(later, kEthTypeIpv6, ParseStatus::kOk);
  EXPECT_EQ(key.fragment, kFragmentNonFirst);
  EXPECT_EQ(key.proto, 6);
  EXPECT_EQ(key.dst_port, 0);
}

TEST(PacketKeyTest, RefusesEndlessIpv6ExtensionChains) {
  std::vector<uint8_t> ext;
  for (int i = 0; i < 12; ++i) ext.insert(ext.end(), {60, 0, 0, 0, 0, 0, 0, 0});
  auto bytes = RawPacket::Ipv6("2001:db8::1", "2001:db8::2", 60, ext, {});
  Parse(bytes, kEthTypeIpv6, ParseStatus::kTooManyExtHeaders);
}

TEST(PacketKeyTest, IcmpEchoAndErrorQuote) {
  auto echo = RawPacket::Ipv4("10.0.0.1", "10.0.0.2", 1, RawPacket::Icmp(8, 0, 4242));
  PacketKey key = Parse(echo, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.icmp_type, 8);
  EXPECT_EQ(key.icmp_id, 4242);
  EXPECT_EQ(key.has_inner, 0);

  auto quoted = RawPacket::Ipv4("10.0.0.2", "8.8.8.8", 17, RawPacket::Udp(5353, 53));
  auto error = RawPacket::Ipv4("192.0.2.1", "10.0.0.2", 1, RawPacket::Icmp(3, 3, 0, quoted));
  key = Parse(error, kEthTypeIpv4, ParseStatus::kOk);
  ASSERT_EQ(key.has_inner, 1);
  EXPECT_EQ(key.inner.src, Ip("10.0.0.2"));
  EXPECT_EQ(key.inner.dst, Ip("8.8.8.8"));
  EXPECT_EQ(key.inner.proto, 17);
  EXPECT_EQ(key.inner.src_port, 5353);
  EXPECT_EQ(key.inner.dst_port, 53);

  // A quote too short to hold the ports is ignored, the error itself still parses.
  std::vector<uint8_t> short_quote(quoted.begin(), quoted.begin() + 22);
  auto cut = RawPacket::Ipv4("192.0.2.1", "10.0.0.2", 1, RawPacket::Icmp(11, 0, 0, short_quote));
  key = Parse(cut, kEthTypeIpv4, ParseStatus::kOk);
  EXPECT_EQ(key.has_inner, 0);

  auto quoted6 =
      RawPacket::Ipv6("2001:db8::2", "2001:db8::9", 6, {}, RawPacket::Tcp(4000, 443, kTcpSyn));
  auto error6 =
      RawPacket::Ipv6("2001:db8::ff", "2001:db8::2", 58, {}, RawPacket::Icmp(1, 4, 0, quoted6));
  key = Parse(error6, kEthTypeIpv6, ParseStatus::kOk);
  ASSERT_EQ(key.has_inner, 1);
  EXPECT_EQ(key.inner.dst_port, 443);
  EXPECT_EQ(key.inner.dst, Ip("2001:db8::9"));

  // A quoted echo: the id on its requester's side, as conntrack keys echo flows.
  auto quoted_request = RawPacket::Ipv4("10.0.0.2", "8.8.8.8", 1, RawPacket::Icmp(8, 0, 4242));
  key = Parse(RawPacket::Ipv4("192.0.2.1", "10.0.0.2", 1, RawPacket::Icmp(3, 4, 0, quoted_request)),
              kEthTypeIpv4, ParseStatus::kOk);
  ASSERT_EQ(key.has_inner, 1);
  EXPECT_EQ(key.inner.src_port, 4242);
  EXPECT_EQ(key.inner.dst_port, 0);
  auto quoted_reply = RawPacket::Ipv4("10.0.0.2", "8.8.8.8", 1, RawPacket::Icmp(0, 0, 4242));
  key = Parse(RawPacket::Ipv4("192.0.2.1", "10.0.0.2", 1, RawPacket::Icmp(3, 4, 0, quoted_reply)),
              kEthTypeIpv4, ParseStatus::kOk);
  ASSERT_EQ(key.has_inner, 1);
  EXPECT_EQ(key.inner.src_port, 0);
  EXPECT_EQ(key.inner.dst_port, 4242);
}

// The word compare must order addresses exactly as std::array does (byte by byte): conntrack's
// canonical flow keys travel between hosts, and the vnic address search depends on it.
TEST(PacketKeyTest, CompareAddressesOrdersLikeTheBytes) {
  std::mt19937 random(11);
  auto address = [&] {
    IpBytes ip{};
    // Few distinct byte values, so that long common prefixes and equal addresses are frequent.
    for (uint8_t& byte : ip)
      byte = static_cast<uint8_t>(random() % 3 == 0 ? random() : random() % 2);
    return ip;
  };
  for (int i = 0; i < 100000; ++i) {
    IpBytes a = address(), b = random() % 8 == 0 ? a : address();
    if (random() % 4 == 0) b[random() % 16] ^= static_cast<uint8_t>(1u << (random() % 8));
    int expected = a < b ? -1 : (b < a ? 1 : 0);
    int order = CompareAddresses(a, b);
    ASSERT_EQ((order > 0) - (order < 0), expected) << i;
  }
  EXPECT_LT(CompareAddresses(Ip("198.18.0.2"), Ip("198.18.1.1")), 0);
  EXPECT_GT(CompareAddresses(Ip("2001:db8::1:0"), Ip("2001:db8::ff")), 0);
}

}  // namespace
}  // namespace butterfly
