// Antispoof (src/pipeline/antispoof.h): what a VM may send. Always its own source MAC and never
// RARP; with ip_anti_spoof, ARP's sender MAC and IP and neighbour discovery's advertised target
// and link-layer options must be the vnic's. The source address of IP packets is left to the
// filter.
#include "pipeline/antispoof.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "support/frame_builder.h"
#include "support/test_mbuf.h"

namespace butterfly {
namespace {

using testing::Bytes;
using testing::Ipv4Of;
using testing::Ipv6Of;
using testing::MacOf;

const testing::Mac kVmMac = MacOf("02:00:00:00:00:01");
const testing::Mac kOtherMac = MacOf("02:00:00:00:00:99");
const testing::Mac kGatewayMac = MacOf("02:00:00:00:00:fe");
const testing::Mac kBroadcast = MacOf("ff:ff:ff:ff:ff:ff");
const testing::Mac kAllNodesMac = MacOf("33:33:00:00:00:01");

VnicSettings Vnic(bool ip_anti_spoof) {
  VnicSettings vnic;
  vnic.vni = 42;
  vnic.mac = kVmMac;
  vnic.ip_anti_spoof = ip_anti_spoof;
  vnic.ipv4 = {Ipv4Of("10.0.0.1"), Ipv4Of("10.0.0.5")};
  vnic.ipv6 = {Ipv6Of("2001:db8::1"), Ipv6Of("2001:db8::5")};
  return vnic;
}

Bytes Udp4From(const testing::Mac& mac, const std::string& src, const std::string& dst) {
  return testing::EthernetFrame(kGatewayMac, mac, kEthTypeIpv4,
                                testing::Ipv4Packet(Ipv4Of(src), Ipv4Of(dst), kProtoUdp,
                                                    testing::UdpDatagram(1000, 2000, {1, 2, 3})));
}

// A DHCP discover: from 0.0.0.0 to the broadcast address, port 68 to 67.
Bytes DhcpDiscover() {
  return testing::EthernetFrame(
      kBroadcast, kVmMac, kEthTypeIpv4,
      testing::Ipv4Packet(Ipv4Of("0.0.0.0"), Ipv4Of("255.255.255.255"), kProtoUdp,
                          testing::UdpDatagram(68, 67, Bytes(240, 0))));
}

Bytes Udp6From(const std::string& src) {
  return testing::EthernetFrame(kGatewayMac, kVmMac, kEthTypeIpv6,
                                testing::Ipv6Packet(Ipv6Of(src), Ipv6Of("2001:db8::2"), kProtoUdp,
                                                    testing::UdpDatagram(1000, 2000, {1, 2, 3})));
}

Bytes Arp(uint16_t opcode, const testing::Mac& sender_mac, const std::string& sender_ip,
          const std::string& target_ip, const testing::Mac& source = kVmMac) {
  return testing::EthernetFrame(
      kBroadcast, source, kEthTypeArp,
      testing::ArpBytes(opcode, sender_mac, Ipv4Of(sender_ip), {}, Ipv4Of(target_ip)));
}

// ICMPv6 `icmp` from `src` to `dst`, sent by the VM.
Bytes Icmpv6(const std::string& src, const std::string& dst, const Bytes& icmp) {
  return testing::EthernetFrame(kAllNodesMac, kVmMac, kEthTypeIpv6,
                                testing::Icmpv6Packet(Ipv6Of(src), Ipv6Of(dst), icmp));
}

Bytes Advertisement(const std::string& target, const Bytes& options = {}) {
  return Icmpv6(
      "2001:db8::1", "ff02::1",
      testing::NdMessage(kIcmpv6NeighborAdvertisement, 0x20000000, Ipv6Of(target), options));
}

Bytes Solicitation(const std::string& src, const std::string& target, const Bytes& options = {}) {
  return Icmpv6(src, "ff02::1:ff00:2",
                testing::NdMessage(kIcmpv6NeighborSolicitation, 0, Ipv6Of(target), options));
}

Bytes RouterSolicitation(const Bytes& options = {}) {
  return Icmpv6("fe80::1", "ff02::2",
                testing::Cat({{kIcmpv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0}, options}));
}

Bytes SourceLink(const testing::Mac& mac) {
  return testing::LinkAddressOption(kNdOptionSourceLinkAddress, mac);
}
Bytes TargetLink(const testing::Mac& mac) {
  return testing::LinkAddressOption(kNdOptionTargetLinkAddress, mac);
}

Bytes Truncated(Bytes frame, size_t length) {
  frame.resize(length);
  return frame;
}

struct Case {
  std::string name;
  Bytes frame;
  std::optional<DropReason> verdict;  // nothing: it goes on
};

std::string VerdictName(std::optional<DropReason> verdict) {
  return verdict ? DropReasonName(*verdict) : "pass";
}

void ExpectVerdicts(const std::vector<Case>& cases, const VnicSettings& vnic,
                    bool all_pass = false) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    testing::TestMbuf mbuf(c.frame);
    std::optional<DropReason> expected = all_pass ? std::nullopt : c.verdict;
    EXPECT_EQ(VerdictName(CheckAntispoof(mbuf.get(), vnic)), VerdictName(expected));
    EXPECT_EQ(mbuf.Bytes(), c.frame);  // it only reads
  }
}

Bytes WithSourceMacByte(size_t index) {
  Bytes frame = Udp4From(kVmMac, "10.0.0.1", "10.0.0.2");
  frame[6 + index] ^= 0x10;
  return frame;
}

// Checked whatever ip_anti_spoof says.
const std::vector<Case>& AlwaysCases() {
  static const std::vector<Case> cases = {
      {"IPv4 from the vnic", Udp4From(kVmMac, "10.0.0.1", "10.0.0.2"), std::nullopt},
      {"source MAC byte 0 differs", WithSourceMacByte(0), DropReason::kAntispoof},
      {"source MAC byte 1 differs", WithSourceMacByte(1), DropReason::kAntispoof},
      {"source MAC byte 3 differs", WithSourceMacByte(3), DropReason::kAntispoof},
      {"source MAC byte 4 differs", WithSourceMacByte(4), DropReason::kAntispoof},
      {"source MAC byte 5 differs", WithSourceMacByte(5), DropReason::kAntispoof},
      {"another VM's MAC", Udp4From(kOtherMac, "10.0.0.1", "10.0.0.2"), DropReason::kAntispoof},
      {"broadcast source MAC", Udp4From(kBroadcast, "10.0.0.1", "10.0.0.2"),
       DropReason::kAntispoof},
      {"ARP from another MAC", Arp(kArpRequest, kOtherMac, "10.0.0.1", "10.0.0.2", kOtherMac),
       DropReason::kAntispoof},
      {"RARP",
       testing::EthernetFrame(kBroadcast, kVmMac, kEthTypeRarp,
                              testing::ArpBytes(3, kVmMac, 0, kVmMac, 0)),
       DropReason::kAntispoof},
      {"shorter than Ethernet", Truncated(Udp4From(kVmMac, "10.0.0.1", "10.0.0.2"), 13),
       DropReason::kMalformed},
      {"empty", {}, DropReason::kMalformed},
      {"ARP cut short", Truncated(Arp(kArpRequest, kVmMac, "10.0.0.1", "10.0.0.2"), 14 + 27),
       DropReason::kMalformed},
      // The source address of IP packets is the filter's business.
      {"IPv4 from another address", Udp4From(kVmMac, "10.9.9.9", "10.0.0.2"), std::nullopt},
      {"DHCP discover from 0.0.0.0", DhcpDiscover(), std::nullopt},
      {"IPv6 from another address", Udp6From("2001:db8::99"), std::nullopt},
      {"ICMPv6 echo request", Icmpv6("2001:db8::1", "2001:db8::2", {128, 0, 0, 0, 0, 1, 0, 1}),
       std::nullopt},
      {"an IPv6 header only", Truncated(Udp6From("2001:db8::1"), 14 + 40), std::nullopt},
  };
  return cases;
}

// Refused only with ip_anti_spoof (without it, every one goes on).
const std::vector<Case>& IpAntiSpoofCases() {
  static const std::vector<Case> cases = {
      // ARP: sender MAC and IP must be the vnic's; 0.0.0.0 (a probe, RFC 5227) claims nothing.
      {"ARP request", Arp(kArpRequest, kVmMac, "10.0.0.1", "10.0.0.2"), std::nullopt},
      {"ARP reply from the second address", Arp(kArpReply, kVmMac, "10.0.0.5", "10.0.0.2"),
       std::nullopt},
      {"ARP probe", Arp(kArpRequest, kVmMac, "0.0.0.0", "10.0.0.1"), std::nullopt},
      {"gratuitous ARP", Arp(kArpRequest, kVmMac, "10.0.0.1", "10.0.0.1"), std::nullopt},
      {"ARP for another sender IP", Arp(kArpRequest, kVmMac, "10.0.0.2", "10.0.0.3"),
       DropReason::kAntispoof},
      {"gratuitous ARP for another address", Arp(kArpReply, kVmMac, "10.0.0.2", "10.0.0.2"),
       DropReason::kAntispoof},
      {"ARP with another sender MAC", Arp(kArpRequest, kOtherMac, "10.0.0.1", "10.0.0.2"),
       DropReason::kAntispoof},
      // Advertisements: the target must be the vnic's, or link-local.
      {"NA for its address", Advertisement("2001:db8::1", TargetLink(kVmMac)), std::nullopt},
      {"NA for its second address", Advertisement("2001:db8::5"), std::nullopt},
      {"NA for a link-local address", Advertisement("fe80::1234", TargetLink(kVmMac)),
       std::nullopt},
      {"NA for fe80::/10's last block", Advertisement("febf::1"), std::nullopt},
      {"NA for another address", Advertisement("2001:db8::2", TargetLink(kVmMac)),
       DropReason::kAntispoof},
      {"NA for another address, no option", Advertisement("2001:db8::2"), DropReason::kAntispoof},
      {"NA for fec0::1 (not link-local)", Advertisement("fec0::1"), DropReason::kAntispoof},
      {"NA with another target MAC", Advertisement("2001:db8::1", TargetLink(kOtherMac)),
       DropReason::kAntispoof},
      {"NA, link-local, another target MAC", Advertisement("fe80::1", TargetLink(kOtherMac)),
       DropReason::kAntispoof},
      {"NA cut short", Truncated(Advertisement("2001:db8::1"), 14 + 40 + 23),
       DropReason::kMalformed},
      // Solicitations ask about any target; their source link-layer option must be the vnic's.
      {"NS for another address", Solicitation("2001:db8::1", "2001:db8::2", SourceLink(kVmMac)),
       std::nullopt},
      {"NS with another source MAC",
       Solicitation("2001:db8::1", "2001:db8::2", SourceLink(kOtherMac)), DropReason::kAntispoof},
      {"NS for duplicate address detection", Solicitation("::", "2001:db8::77"), std::nullopt},
      {"NS cut short", Truncated(Solicitation("2001:db8::1", "2001:db8::2"), 14 + 40 + 23),
       DropReason::kMalformed},
      {"RS", RouterSolicitation(SourceLink(kVmMac)), std::nullopt},
      {"RS without option", RouterSolicitation(), std::nullopt},
      {"RS with another source MAC", RouterSolicitation(SourceLink(kOtherMac)),
       DropReason::kAntispoof},
      // The options are walked: other types are skipped; a bad length is malformed.
      {"a nonce, then another source MAC",
       Solicitation("2001:db8::1", "2001:db8::2",
                    testing::Cat({{14, 1, 1, 2, 3, 4, 5, 6}, SourceLink(kOtherMac)})),
       DropReason::kAntispoof},
      {"a nonce, then the vnic's MAC",
       Solicitation("2001:db8::1", "2001:db8::2",
                    testing::Cat({{14, 1, 1, 2, 3, 4, 5, 6}, SourceLink(kVmMac)})),
       std::nullopt},
      {"an option of length 0",
       Solicitation("2001:db8::1", "2001:db8::2", {14, 0, 0, 0, 0, 0, 0, 0}),
       DropReason::kMalformed},
      {"an option past the frame",
       Solicitation("2001:db8::1", "2001:db8::2", {14, 2, 0, 0, 0, 0, 0, 0}),
       DropReason::kMalformed},
  };
  return cases;
}

TEST(AntispoofTest, AlwaysWithIpAntiSpoof) { ExpectVerdicts(AlwaysCases(), Vnic(true)); }

TEST(AntispoofTest, AlwaysWithoutIpAntiSpoof) { ExpectVerdicts(AlwaysCases(), Vnic(false)); }

TEST(AntispoofTest, ArpAndNeighborDiscoveryWithIpAntiSpoof) {
  ExpectVerdicts(IpAntiSpoofCases(), Vnic(true));
}

TEST(AntispoofTest, ArpAndNeighborDiscoveryPassWithoutIpAntiSpoof) {
  ExpectVerdicts(IpAntiSpoofCases(), Vnic(false), /*all_pass=*/true);
}

// A vnic with no address yet may only probe (ARP) and check duplicates (NDP).
TEST(AntispoofTest, VnicWithoutAddresses) {
  VnicSettings vnic = Vnic(true);
  vnic.ipv4.clear();
  vnic.ipv6.clear();
  ExpectVerdicts(
      {
          {"ARP probe", Arp(kArpRequest, kVmMac, "0.0.0.0", "10.0.0.1"), std::nullopt},
          {"ARP request", Arp(kArpRequest, kVmMac, "10.0.0.1", "10.0.0.2"), DropReason::kAntispoof},
          {"NS for duplicate address detection", Solicitation("::", "2001:db8::1"), std::nullopt},
          {"NA for a link-local address", Advertisement("fe80::1"), std::nullopt},
          {"NA for a global address", Advertisement("2001:db8::1"), DropReason::kAntispoof},
      },
      vnic);
}

// The stage over a burst decides each frame as CheckAntispoof does, in order.
TEST(AntispoofTest, ABurstGetsEachFramesVerdictAsItsFate) {
  std::vector<Case> cases = AlwaysCases();
  ASSERT_GE(cases.size(), 2u);
  std::vector<testing::TestMbuf> mbufs;
  for (const Case& c : cases) mbufs.emplace_back(c.frame);
  std::vector<rte_mbuf*> burst;
  for (const testing::TestMbuf& mbuf : mbufs) burst.push_back(mbuf.get());
  std::vector<DropReason> fate(burst.size());
  AntispoofBurst(burst.data(), static_cast<uint16_t>(burst.size()), Vnic(true), fate.data());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(fate[i], cases[i].verdict.value_or(kKeep));
  }
}

}  // namespace
}  // namespace butterfly
