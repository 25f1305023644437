// VXLAN decapsulation (src/pipeline/vxlan_decap.h) on frames in plain memory: what is accepted
// (and what it yields: VNI, the sending VTEP and its MAC, the inner frame alone), and why
// everything else is dropped, with the mbuf left as it was.
#include "pipeline/vxlan_decap.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pipeline/frame.h"
#include "support/frame_builder.h"
#include "support/test_mbuf.h"

namespace butterfly {
namespace {

using testing::Bytes;
using testing::Ipv4Of;
using testing::Ipv6Of;
using testing::MacOf;
using testing::TestMbuf;

const testing::Mac kVtepMac = MacOf("02:00:00:00:00:01");
const testing::Mac kRouterMac = MacOf("02:00:00:00:00:fe");

// Byte offsets in a tunnel packet over IPv4 (no options) and over IPv6.
constexpr size_t kIpv4 = 14, kVxlan4 = 42;
constexpr size_t kUdp6 = 54, kVxlan6 = 62;

UnderlayInfo Ipv4Underlay() {
  UnderlayInfo underlay;
  underlay.present = true;
  underlay.mac = kVtepMac;
  underlay.vtep_ip = VtepOfIpv4(Ipv4Of("198.18.0.1"));
  return underlay;
}

UnderlayInfo Ipv6Underlay() {
  UnderlayInfo underlay = Ipv4Underlay();
  underlay.ipv6 = true;
  underlay.vtep_ip = Ipv6Of("2001:db8::1");
  return underlay;
}

// A VM's UDP packet, as the remote VTEP encapsulated it.
Bytes InnerFrame() {
  return testing::EthernetFrame(
      MacOf("02:aa:00:00:00:02"), MacOf("02:aa:00:00:00:01"), kEthTypeIpv4,
      testing::Ipv4Packet(Ipv4Of("10.0.0.1"), Ipv4Of("10.0.0.2"), kProtoUdp,
                          testing::UdpDatagram(1000, 2000, {1, 2, 3, 4, 5})));
}

struct Ipv4Tunnel {
  std::string src = "198.18.0.2";
  std::string dst = "198.18.0.1";
  uint8_t protocol = kProtoUdp;
  uint16_t fragment = 0;
  Bytes options{};
  uint16_t port = 4789;
  uint8_t flags = 0x08;
  uint32_t vni = 42;
  Bytes inner = InnerFrame();

  Bytes Build() const {
    Bytes vxlan = testing::Cat({testing::VxlanBytes(vni, flags), inner});
    return testing::EthernetFrame(
        kVtepMac, kRouterMac, kEthTypeIpv4,
        testing::Ipv4Packet(Ipv4Of(src), Ipv4Of(dst), protocol,
                            testing::UdpDatagram(49200, port, vxlan), fragment, options));
  }
};

struct Ipv6Tunnel {
  std::string src = "2001:db8::2";
  std::string dst = "2001:db8::1";
  uint8_t next_header = kProtoUdp;
  uint16_t port = 4789;
  uint8_t flags = 0x08;
  uint32_t vni = 42;
  Bytes inner = InnerFrame();

  Bytes Build() const {
    Bytes vxlan = testing::Cat({testing::VxlanBytes(vni, flags), inner});
    return testing::EthernetFrame(kVtepMac, kRouterMac, kEthTypeIpv6,
                                  testing::Ipv6Packet(Ipv6Of(src), Ipv6Of(dst), next_header,
                                                      testing::UdpDatagram(49200, port, vxlan)));
  }
};

// Sets the outer IPv4 header's total length and makes its checksum valid again.
Bytes WithTotalLength(Bytes frame, uint16_t total_length) {
  testing::Put16(&frame, kIpv4 + 2, total_length);
  testing::Put16(&frame, kIpv4 + 10, 0);
  size_t header_length = (frame[kIpv4] & 0x0f) * 4u;
  uint16_t sum = testing::OnesComplementSum(testing::Slice(frame, kIpv4, header_length));
  testing::Put16(&frame, kIpv4 + 10, static_cast<uint16_t>(~sum));
  return frame;
}

Bytes Truncated(Bytes frame, size_t length) {
  frame.resize(length);
  return frame;
}

Bytes With(Bytes frame, size_t at, uint8_t value) {
  frame.at(at) = value;
  return frame;
}

struct Accepted {
  DecapResult result;
  Bytes frame;  // what the mbuf holds afterwards
};

// Decapsulates `frame` and expects it accepted.
Accepted Decap(const Bytes& frame, const UnderlayInfo& underlay) {
  TestMbuf mbuf(frame);
  Accepted accepted;
  DropReason reason = DropReason::kFilter;
  EXPECT_TRUE(VxlanDecap(mbuf.get(), underlay, &accepted.result, &reason))
      << "refused: " << DropReasonName(reason);
  EXPECT_EQ(mbuf.get()->pkt_len, mbuf.get()->data_len);
  accepted.frame = mbuf.Bytes();
  return accepted;
}

struct DropCase {
  std::string name;
  Bytes frame;
  DropReason reason;
};

// Each frame is refused for its reason, and the mbuf is left as it was.
void ExpectDrops(const std::vector<DropCase>& cases, const UnderlayInfo& underlay) {
  for (const DropCase& drop : cases) {
    SCOPED_TRACE(drop.name);
    TestMbuf mbuf(drop.frame);
    DecapResult result;
    DropReason reason = DropReason::kFilter;
    EXPECT_FALSE(VxlanDecap(mbuf.get(), underlay, &result, &reason));
    EXPECT_EQ(reason, drop.reason) << DropReasonName(reason);
    EXPECT_EQ(mbuf.get()->data_off, RTE_PKTMBUF_HEADROOM);
    EXPECT_EQ(mbuf.get()->pkt_len, drop.frame.size());
    EXPECT_EQ(mbuf.Bytes(), drop.frame);
  }
}

TEST(VxlanDecapTest, Ipv4TunnelYieldsTheInnerFrameVniAndSender) {
  Accepted accepted = Decap(Ipv4Tunnel{.vni = 0xabcdef}.Build(), Ipv4Underlay());
  EXPECT_EQ(accepted.result.vni, 0xabcdefu);
  EXPECT_TRUE(SameVtep(accepted.result.outer_src, VtepOfIpv4(Ipv4Of("198.18.0.2"))));
  EXPECT_EQ(accepted.result.outer_src_mac, kRouterMac);
  EXPECT_EQ(accepted.frame, InnerFrame());
}

TEST(VxlanDecapTest, Ipv6TunnelYieldsTheInnerFrameVniAndSender) {
  Accepted accepted = Decap(Ipv6Tunnel{.vni = 0xfedcba}.Build(), Ipv6Underlay());
  EXPECT_EQ(accepted.result.vni, 0xfedcbau);
  EXPECT_EQ(accepted.result.outer_src, Ipv6Of("2001:db8::2"));
  EXPECT_EQ(accepted.result.outer_src_mac, kRouterMac);
  EXPECT_EQ(accepted.frame, InnerFrame());
}

// RFC 7348: the reserved bits are ignored on receipt; the VNI is the word's three high bytes.
TEST(VxlanDecapTest, ReservedBitsAreIgnored) {
  Bytes frame = Ipv4Tunnel{.flags = 0xff, .vni = 0x123456}.Build();
  for (size_t at : {kVxlan4 + 1, kVxlan4 + 2, kVxlan4 + 3, kVxlan4 + 7}) frame[at] = 0xa5;
  EXPECT_EQ(Decap(frame, Ipv4Underlay()).result.vni, 0x123456u);
}

// Bytes after the IP packet (Ethernet padding) are not part of the inner frame.
TEST(VxlanDecapTest, EthernetPaddingIsTrimmed) {
  Bytes padding(9, 0xee);
  Bytes inner = testing::Slice(InnerFrame(), 0, 14);  // the smallest inner frame
  EXPECT_EQ(
      Decap(testing::Cat({Ipv4Tunnel{.inner = inner}.Build(), padding}), Ipv4Underlay()).frame,
      inner);
  EXPECT_EQ(
      Decap(testing::Cat({Ipv6Tunnel{.inner = inner}.Build(), padding}), Ipv6Underlay()).frame,
      inner);
}

// The header length comes from IHL: options are skipped (and covered by the header checksum).
TEST(VxlanDecapTest, Ipv4OptionsAreSkipped) {
  Bytes options = {1, 1, 1, 0, 0x94, 0x04, 0, 0};  // NOPs and end of list, a router alert
  Accepted accepted = Decap(Ipv4Tunnel{.options = options, .vni = 7}.Build(), Ipv4Underlay());
  EXPECT_EQ(accepted.result.vni, 7u);
  EXPECT_EQ(accepted.frame, InnerFrame());
}

// Don't Fragment is not fragmentation.
TEST(VxlanDecapTest, DontFragmentIsAccepted) {
  EXPECT_EQ(Decap(Ipv4Tunnel{.fragment = kIpv4DontFragment}.Build(), Ipv4Underlay()).frame,
            InnerFrame());
}

// Flooded traffic arrives on a multicast group rather than the VTEP address.
TEST(VxlanDecapTest, MulticastDestinationsAreAccepted) {
  EXPECT_EQ(Decap(Ipv4Tunnel{.dst = "239.1.2.3"}.Build(), Ipv4Underlay()).frame, InnerFrame());
  EXPECT_EQ(Decap(Ipv6Tunnel{.dst = "ff05::1:3"}.Build(), Ipv6Underlay()).frame, InnerFrame());
}

TEST(VxlanDecapTest, TheConfiguredPortIsTheVxlanPort) {
  UnderlayInfo underlay = Ipv4Underlay();
  underlay.vxlan_port = 8472;
  EXPECT_EQ(Decap(Ipv4Tunnel{.port = 8472}.Build(), underlay).frame, InnerFrame());
  ExpectDrops({{"the default port", Ipv4Tunnel{}.Build(), DropReason::kNotVxlan}}, underlay);
}

TEST(VxlanDecapTest, Ipv4Drops) {
  Bytes good = Ipv4Tunnel{}.Build();
  uint16_t total = static_cast<uint16_t>(good.size() - kIpv4);
  // An options word outside the checksum: the header checksum must cover the whole header.
  Bytes options_unsummed = Ipv4Tunnel{.options = {1, 1, 1, 0}}.Build();
  testing::Put16(&options_unsummed, kIpv4 + 10, 0);
  testing::Put16(&options_unsummed, kIpv4 + 10,
                 static_cast<uint16_t>(
                     ~testing::OnesComplementSum(testing::Slice(options_unsummed, kIpv4, 20))));
  ExpectDrops(
      {
          {"another UDP port", Ipv4Tunnel{.port = 4790}.Build(), DropReason::kNotVxlan},
          {"another destination", Ipv4Tunnel{.dst = "198.18.0.9"}.Build(), DropReason::kNotVxlan},
          {"TCP, not UDP", Ipv4Tunnel{.protocol = kProtoTcp}.Build(), DropReason::kNotVxlan},
          {"IPv6 ether type", With(good, 13, 0xdd), DropReason::kNotVxlan},
          {"VLAN tagged", With(With(good, 12, 0x81), 13, 0x00), DropReason::kNotVxlan},
          {"IP version 6 in an IPv4 frame", With(good, kIpv4, 0x65), DropReason::kNotVxlan},
          {"cut inside the IP header", Truncated(good, kIpv4 + 19), DropReason::kNotVxlan},
          {"Ethernet header only", Truncated(good, 14), DropReason::kNotVxlan},
          {"empty", {}, DropReason::kNotVxlan},
          {"no I flag", Ipv4Tunnel{.flags = 0}.Build(), DropReason::kBadVxlan},
          {"reserved flags without I", Ipv4Tunnel{.flags = 0xf7}.Build(), DropReason::kBadVxlan},
          {"more fragments", Ipv4Tunnel{.fragment = 0x2000}.Build(), DropReason::kMalformed},
          {"a later fragment", Ipv4Tunnel{.fragment = 0x0001}.Build(), DropReason::kMalformed},
          {"a later fragment, DF set", Ipv4Tunnel{.fragment = 0x4010}.Build(),
           DropReason::kMalformed},
          {"header checksum wrong", With(good, kIpv4 + 11, good[kIpv4 + 11] ^ 1),
           DropReason::kMalformed},
          {"options outside the checksum", options_unsummed, DropReason::kMalformed},
          {"IHL below 5", WithTotalLength(With(good, kIpv4, 0x44), total), DropReason::kMalformed},
          {"total length past the frame", WithTotalLength(good, total + 1), DropReason::kMalformed},
          {"total length below the header", WithTotalLength(good, 19), DropReason::kMalformed},
          {"cut inside the VXLAN header", Truncated(good, kVxlan4 + 4), DropReason::kMalformed},
          {"IP packet ends inside the VXLAN header",
           WithTotalLength(good, static_cast<uint16_t>(kVxlan4 + 4 - kIpv4)),
           DropReason::kMalformed},
          {"inner frame shorter than Ethernet",
           Ipv4Tunnel{.inner = testing::Slice(InnerFrame(), 0, 13)}.Build(),
           DropReason::kMalformed},
      },
      Ipv4Underlay());
}

TEST(VxlanDecapTest, Ipv6Drops) {
  Bytes good = Ipv6Tunnel{}.Build();
  uint16_t payload = static_cast<uint16_t>(good.size() - kUdp6);
  auto with_payload_length = [&](uint16_t length) {
    Bytes frame = good;
    testing::Put16(&frame, 14 + 4, length);
    return frame;
  };
  ExpectDrops(
      {
          {"another UDP port", Ipv6Tunnel{.port = 4790}.Build(), DropReason::kNotVxlan},
          {"another destination", Ipv6Tunnel{.dst = "2001:db8::9"}.Build(), DropReason::kNotVxlan},
          {"a fragment header", Ipv6Tunnel{.next_header = 44}.Build(), DropReason::kNotVxlan},
          {"a hop-by-hop header", Ipv6Tunnel{.next_header = 0}.Build(), DropReason::kNotVxlan},
          {"IPv4 on an IPv6 underlay", Ipv4Tunnel{}.Build(), DropReason::kNotVxlan},
          {"IP version 4 in an IPv6 frame", With(good, 14, 0x45), DropReason::kNotVxlan},
          {"cut inside the IPv6 header", Truncated(good, 14 + 39), DropReason::kNotVxlan},
          {"no I flag", Ipv6Tunnel{.flags = 0}.Build(), DropReason::kBadVxlan},
          {"payload length past the frame", with_payload_length(payload + 1),
           DropReason::kMalformed},
          {"payload ends inside the VXLAN header",
           with_payload_length(static_cast<uint16_t>(kVxlan6 + 4 - kUdp6)), DropReason::kMalformed},
          {"cut inside the UDP header", Truncated(good, kUdp6 + 4), DropReason::kMalformed},
          {"inner frame shorter than Ethernet",
           Ipv6Tunnel{.inner = testing::Slice(InnerFrame(), 0, 13)}.Build(),
           DropReason::kMalformed},
      },
      Ipv6Underlay());
  ExpectDrops({{"IPv6 on an IPv4 underlay", good, DropReason::kNotVxlan}}, Ipv4Underlay());
}

// (A fuzz_packet finding: a frame of another ether type was read as IPv4.)
TEST(VxlanDecapTest, OnlyAnIpv4FrameIsAnIpv4Tunnel) {
  Bytes tunnel = Ipv4Tunnel{}.Build();
  for (uint16_t ether_type : {uint16_t{0x00c6}, kEthTypeVlan, kEthTypeArp, kEthTypeIpv6}) {
    Bytes other = tunnel;
    testing::Put16(&other, 12, ether_type);
    ExpectDrops({{std::to_string(ether_type), other, DropReason::kNotVxlan}}, Ipv4Underlay());
  }
}

}  // namespace
}  // namespace butterfly

namespace butterfly {
namespace {

// The stage over a burst: a tunnel for a VNI with a vnic here is kept with its VNI's forwarding,
// one for another VNI is unknown_vni, and a broken one keeps its own reason; in order.
TEST(VxlanDecapBurstTest, EachPacketGetsItsFateAndAKeptOneItsVni) {
  ForwardingTable table;
  table.underlay = Ipv4Underlay();
  VniForwarding here;
  here.vni = 42;
  std::vector<std::pair<uint64_t, const VniForwarding*>> vnis = {{42, &here}};
  table.vnis = FlatMap<uint64_t, const VniForwarding*, MixHash>(vnis);
  Ipv4Tunnel other_vni;
  other_vni.vni = 43;
  Ipv4Tunnel not_vxlan;
  not_vxlan.port = 4790;
  TestMbuf packets[] = {TestMbuf(Ipv4Tunnel().Build()), TestMbuf(other_vni.Build()),
                        TestMbuf(not_vxlan.Build())};
  rte_mbuf* burst[] = {packets[0].get(), packets[1].get(), packets[2].get()};
  DecapResult tunnels[3];
  const VniForwarding* found[3] = {};
  DropReason fate[3];
  VxlanDecapBurst(burst, 3, table, tunnels, found, fate);
  EXPECT_EQ(fate[0], kKeep);
  EXPECT_EQ(found[0], &here);
  EXPECT_EQ(tunnels[0].vni, 42u);
  EXPECT_EQ(packets[0].Bytes(), InnerFrame());
  EXPECT_EQ(fate[1], DropReason::kUnknownVni);
  EXPECT_EQ(fate[2], DropReason::kNotVxlan);
}

}  // namespace
}  // namespace butterfly
