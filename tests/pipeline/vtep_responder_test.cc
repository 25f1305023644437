// The VTEP's own traffic (src/pipeline/vtep_responder.h): ARP requests and neighbour
// solicitations for the VTEP answered in place, neighbours learnt from what is aimed at us, and
// the ARP requests, neighbour solicitations and IGMP reports the workers send.
//
// The handlers only rewrite a frame in place (or append to it), so they run on mbufs in plain
// memory. The builders take an mbuf from a mempool, and a mempool needs the EAL
// (rte_pktmbuf_pool_create fails without it: "Cannot allocate tailq entry"): their suite starts a
// small EAL once per process (no hugepages, no PCI, no shared files; --in-memory is refused with
// --no-huge), only when one of its tests runs.
#include "pipeline/vtep_responder.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <cstring>
#include <string>
#include <vector>

#include "pipeline/eal.h"
#include "pipeline/frame.h"
#include "support/frame_builder.h"
#include "support/test_mbuf.h"

namespace butterfly {
namespace {

using testing::Bytes;
using testing::Get16;
using testing::Get32;
using testing::Ipv4Of;
using testing::Ipv6Of;
using testing::MacOf;
using testing::Slice;
using testing::TestMbuf;

const testing::Mac kVtepMac = MacOf("02:00:00:00:00:01");
const testing::Mac kPeerMac = MacOf("02:00:00:00:00:02");
const testing::Mac kRouterMac = MacOf("02:00:00:00:00:fe");
const testing::Mac kBroadcast = MacOf("ff:ff:ff:ff:ff:ff");

UnderlayInfo Ipv4Underlay(const std::string& vtep = "198.18.0.1", testing::Mac mac = kVtepMac) {
  UnderlayInfo underlay;
  underlay.present = true;
  underlay.mac = mac;
  underlay.vtep_ip = VtepOfIpv4(Ipv4Of(vtep));
  return underlay;
}

UnderlayInfo Ipv6Underlay(const std::string& vtep = "2001:db8::1", testing::Mac mac = kVtepMac) {
  UnderlayInfo underlay = Ipv4Underlay("0.0.0.0", mac);
  underlay.ipv6 = true;
  underlay.vtep_ip = Ipv6Of(vtep);
  return underlay;
}

// ---------------------------------------------------------------------------------------------
// ARP

// An ARP frame padded to Ethernet's 60 bytes, as it arrives.
Bytes ArpFrame(uint16_t opcode, const testing::Mac& sender_mac, const std::string& sender_ip,
               const std::string& target_ip, const testing::Mac& target_mac = {}) {
  Bytes frame = testing::EthernetFrame(
      kBroadcast, sender_mac, kEthTypeArp,
      testing::ArpBytes(opcode, sender_mac, Ipv4Of(sender_ip), target_mac, Ipv4Of(target_ip)));
  frame.resize(60, 0xee);
  return frame;
}

struct Handled {
  ArpOutcome outcome;
  Bytes frame;  // what the mbuf holds afterwards
};

Handled HandleArp(const Bytes& frame, const UnderlayInfo& underlay = Ipv4Underlay()) {
  TestMbuf mbuf(frame);
  Handled handled{HandleUnderlayArp(mbuf.get(), underlay), {}};
  handled.frame = mbuf.Bytes();
  return handled;
}

TEST(VtepArpTest, RequestForTheVtepIsAnsweredInPlace) {
  Bytes request = ArpFrame(kArpRequest, kPeerMac, "198.18.0.2", "198.18.0.1");
  Handled handled = HandleArp(request);
  ASSERT_TRUE(handled.outcome.reply);
  const Bytes& reply = handled.frame;
  ASSERT_EQ(reply.size(), request.size());
  EXPECT_EQ(Slice(reply, 0, 6), testing::BytesOf(kPeerMac));
  EXPECT_EQ(Slice(reply, 6, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Get16(reply, 12), kEthTypeArp);
  EXPECT_EQ(Slice(reply, 14, 6), Slice(request, 14, 6));  // Ethernet, IPv4, 6, 4
  EXPECT_EQ(Get16(reply, 20), kArpReply);
  EXPECT_EQ(Slice(reply, 22, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Slice(reply, 28, 4), testing::BytesOfIpv4(Ipv4Of("198.18.0.1")));
  EXPECT_EQ(Slice(reply, 32, 6), testing::BytesOf(kPeerMac));
  EXPECT_EQ(Slice(reply, 38, 4), testing::BytesOfIpv4(Ipv4Of("198.18.0.2")));
  EXPECT_EQ(Slice(reply, 42, 18), Slice(request, 42, 18));  // the padding
  // And the asker is a neighbour.
  EXPECT_TRUE(handled.outcome.learn);
  EXPECT_EQ(handled.outcome.sender_ip, VtepOfIpv4(Ipv4Of("198.18.0.2")));
  EXPECT_EQ(handled.outcome.sender_mac, kPeerMac);
}

// An address probe (RFC 5227) for the VTEP address is answered (the prober learns it is taken)
// but teaches nothing.
TEST(VtepArpTest, ProbeIsAnsweredAndNotLearnt) {
  Handled handled = HandleArp(ArpFrame(kArpRequest, kPeerMac, "0.0.0.0", "198.18.0.1"));
  EXPECT_TRUE(handled.outcome.reply);
  EXPECT_FALSE(handled.outcome.learn);
  EXPECT_EQ(Slice(handled.frame, 0, 6), testing::BytesOf(kPeerMac));
  EXPECT_EQ(Slice(handled.frame, 32, 6), testing::BytesOf(kPeerMac));
  EXPECT_EQ(Get32(handled.frame, 38), 0u);
}

TEST(VtepArpTest, WhatIsLearnt) {
  struct Case {
    std::string name;
    Bytes frame;
    bool learn;
  };
  const testing::Mac multicast = MacOf("01:00:5e:00:00:02");
  std::vector<Case> cases = {
      {"reply to us", ArpFrame(kArpReply, kPeerMac, "198.18.0.2", "198.18.0.1", kVtepMac), true},
      {"gratuitous request", ArpFrame(kArpRequest, kPeerMac, "198.18.0.5", "198.18.0.5"), true},
      {"gratuitous reply", ArpFrame(kArpReply, kPeerMac, "198.18.0.5", "198.18.0.5"), true},
      {"request for another", ArpFrame(kArpRequest, kPeerMac, "198.18.0.2", "198.18.0.3"), false},
      {"reply to another", ArpFrame(kArpReply, kPeerMac, "198.18.0.2", "198.18.0.3"), false},
      {"our own address", ArpFrame(kArpRequest, kPeerMac, "198.18.0.1", "198.18.0.1"), false},
      {"a multicast sender MAC", ArpFrame(kArpReply, multicast, "198.18.0.2", "198.18.0.1"), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Handled handled = HandleArp(c.frame);
    EXPECT_EQ(handled.outcome.learn, c.learn);
    if (c.learn) {
      uint32_t sender_ip;
      std::memcpy(&sender_ip, c.frame.data() + 28, 4);
      EXPECT_EQ(handled.outcome.sender_ip, VtepOfIpv4(sender_ip));
      EXPECT_EQ(handled.outcome.sender_mac, kPeerMac);
    }
    if (!handled.outcome.reply) {
      EXPECT_EQ(handled.frame, c.frame);
    }
  }
}

// Only Ethernet/IPv4 ARP, whole, is read; a request for another address is not answered.
TEST(VtepArpTest, OtherFramesAreLeftAlone) {
  Bytes request = ArpFrame(kArpRequest, kPeerMac, "198.18.0.2", "198.18.0.1");
  auto with = [&](size_t at, uint8_t value) {
    Bytes frame = request;
    frame[at] = value;
    return frame;
  };
  Bytes truncated = Slice(request, 0, 41);
  for (const Bytes& frame : {ArpFrame(kArpRequest, kPeerMac, "198.18.0.2", "198.18.0.3"),
                             with(15, 6), with(16, 0x86), with(18, 8), with(19, 16), truncated}) {
    Handled handled = HandleArp(frame);
    EXPECT_FALSE(handled.outcome.reply);
    EXPECT_FALSE(handled.outcome.learn);
    EXPECT_EQ(handled.frame, frame);
  }
}

// ---------------------------------------------------------------------------------------------
// Neighbour discovery

const Bytes kAllNodes = testing::BytesOf(Ipv6Of("ff02::1"));

struct Nd {
  uint8_t type = kIcmpv6NeighborSolicitation;
  uint8_t code = 0;
  uint32_t flags = 0;
  std::string src = "2001:db8::2";
  std::string dst = "ff02::1:ff00:1";
  std::string target = "2001:db8::1";
  Bytes options = testing::LinkAddressOption(kNdOptionSourceLinkAddress, kPeerMac);
  testing::Mac ethernet_src = kRouterMac;  // not the option's: which one is used shows
  uint8_t hop_limit = 255;

  Bytes Build() const {
    Bytes icmp = testing::NdMessage(type, flags, Ipv6Of(target), options);
    icmp[1] = code;
    return testing::EthernetFrame(MacOf("33:33:ff:00:00:01"), ethernet_src, kEthTypeIpv6,
                                  testing::Icmpv6Packet(Ipv6Of(src), Ipv6Of(dst), icmp, hop_limit));
  }
};

Nd Advertisement(const std::string& target, const std::string& dst = "2001:db8::1") {
  Nd nd;
  nd.type = kIcmpv6NeighborAdvertisement;
  nd.flags = 0x60000000;
  nd.src = target;
  nd.dst = dst;
  nd.target = target;
  nd.options = testing::LinkAddressOption(kNdOptionTargetLinkAddress, kPeerMac);
  return nd;
}

Handled HandleNdp(const Bytes& frame, uint16_t tailroom = 0,
                  const UnderlayInfo& underlay = Ipv6Underlay()) {
  TestMbuf mbuf(frame, RTE_PKTMBUF_HEADROOM, tailroom);
  EXPECT_TRUE(IsNeighborDiscovery(mbuf.get()));
  Handled handled{HandleUnderlayNdp(mbuf.get(), underlay), {}};
  handled.frame = mbuf.Bytes();
  return handled;
}

// The advertisement `frame` as the VTEP (2001:db8::1) sends it to `dst_mac`/`dst` with `flags`.
void ExpectAdvertisement(const Bytes& frame, const testing::Mac& dst_mac, const Bytes& dst,
                         uint32_t flags) {
  ASSERT_EQ(frame.size(), 14u + 40 + 32);
  EXPECT_EQ(Slice(frame, 0, 6), testing::BytesOf(dst_mac));
  EXPECT_EQ(Slice(frame, 6, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Get16(frame, 12), kEthTypeIpv6);
  Bytes ip = Slice(frame, 14, frame.size() - 14);
  EXPECT_EQ(Get32(ip, 0), 0x60000000u);
  EXPECT_EQ(Get16(ip, 4), 32);
  EXPECT_EQ(ip[6], kProtoIcmpv6);
  EXPECT_EQ(ip[7], 255);
  EXPECT_EQ(Slice(ip, 8, 16), testing::BytesOf(Ipv6Of("2001:db8::1")));
  EXPECT_EQ(Slice(ip, 24, 16), dst);
  EXPECT_EQ(ip[40], kIcmpv6NeighborAdvertisement);
  EXPECT_EQ(ip[41], 0);
  EXPECT_TRUE(testing::Ipv6UpperChecksumValid(ip)) << std::hex << Get16(ip, 42);
  EXPECT_EQ(Get32(ip, 44), flags);
  EXPECT_EQ(Slice(ip, 48, 16), testing::BytesOf(Ipv6Of("2001:db8::1")));
  EXPECT_EQ(Slice(ip, 64, 8), testing::LinkAddressOption(kNdOptionTargetLinkAddress, kVtepMac));
}

constexpr uint32_t kSolicitedOverride = 0x60000000;
constexpr uint32_t kOverride = 0x20000000;

TEST(VtepNdpTest, IsNeighborDiscovery) {
  Bytes echo = Nd{.type = 128}.Build();
  Bytes udp = Nd{}.Build();
  udp[14 + 6] = kProtoUdp;
  struct Case {
    Bytes frame;
    bool expected;
  };
  for (const Case& c : {Case{Nd{}.Build(), true}, Case{Advertisement("2001:db8::2").Build(), true},
                        Case{echo, false}, Case{udp, false},
                        Case{Slice(Nd{.options = {}}.Build(), 0, 77), false}}) {
    TestMbuf mbuf(c.frame);
    EXPECT_EQ(IsNeighborDiscovery(mbuf.get()), c.expected) << c.frame.size();
  }
}

// The answer goes to the solicitation's source link-layer address, which is learnt.
TEST(VtepNdpTest, SolicitationForTheVtepIsAnsweredInPlace) {
  Handled handled = HandleNdp(Nd{}.Build());
  ASSERT_TRUE(handled.outcome.reply);
  ExpectAdvertisement(handled.frame, kPeerMac, testing::BytesOf(Ipv6Of("2001:db8::2")),
                      kSolicitedOverride);
  EXPECT_TRUE(handled.outcome.learn);
  EXPECT_EQ(handled.outcome.sender_ip, Ipv6Of("2001:db8::2"));
  EXPECT_EQ(handled.outcome.sender_mac, kPeerMac);
}

// Without a source link-layer option: answered to the frame's source, nothing learnt; the
// answer (with its option) is longer than the question and needs the room.
TEST(VtepNdpTest, SolicitationWithoutOption) {
  Bytes solicitation = Nd{.options = {}}.Build();
  ASSERT_EQ(solicitation.size(), 78u);
  Handled handled = HandleNdp(solicitation, 8);
  ASSERT_TRUE(handled.outcome.reply);
  ExpectAdvertisement(handled.frame, kRouterMac, testing::BytesOf(Ipv6Of("2001:db8::2")),
                      kSolicitedOverride);
  EXPECT_FALSE(handled.outcome.learn);
  EXPECT_FALSE(HandleNdp(solicitation, 7).outcome.reply);
}

// Options after the one read (a nonce) do not go into the answer.
TEST(VtepNdpTest, LongerSolicitationIsTrimmed) {
  Bytes options = testing::Cat({{14, 1, 1, 2, 3, 4, 5, 6},
                                testing::LinkAddressOption(kNdOptionSourceLinkAddress, kPeerMac),
                                {14, 1, 6, 5, 4, 3, 2, 1}});
  Handled handled = HandleNdp(Nd{.options = options}.Build());
  ASSERT_TRUE(handled.outcome.reply);
  ExpectAdvertisement(handled.frame, kPeerMac, testing::BytesOf(Ipv6Of("2001:db8::2")),
                      kSolicitedOverride);
  EXPECT_EQ(handled.outcome.sender_mac, kPeerMac);
}

// Duplicate address detection (source ::): answered to all nodes, not solicited, nothing learnt.
TEST(VtepNdpTest, DuplicateAddressDetectionIsAnsweredToAllNodes) {
  Handled handled = HandleNdp(Nd{.src = "::", .options = {}}.Build(), 8);
  ASSERT_TRUE(handled.outcome.reply);
  ExpectAdvertisement(handled.frame, MacOf("33:33:00:00:00:01"), kAllNodes, kOverride);
  EXPECT_FALSE(handled.outcome.learn);
}

// RFC 4861 7.1.1: hop limit 255, code 0, a valid checksum, a whole message.
TEST(VtepNdpTest, InvalidOrOtherSolicitationsAreIgnored) {
  Bytes bad_checksum = Nd{}.Build();
  bad_checksum[14 + 40 + 3] ^= 1;
  Bytes long_payload = Nd{}.Build();
  testing::Put16(&long_payload, 14 + 4, 33);
  Bytes short_payload = Nd{}.Build();
  testing::Put16(&short_payload, 14 + 4, 23);
  for (const Bytes& frame : {Nd{.target = "2001:db8::3"}.Build(), Nd{.hop_limit = 254}.Build(),
                             Nd{.code = 1}.Build(), bad_checksum, long_payload, short_payload}) {
    Handled handled = HandleNdp(frame, 64);
    EXPECT_FALSE(handled.outcome.reply);
    EXPECT_FALSE(handled.outcome.learn);
    EXPECT_EQ(handled.frame, frame);
  }
}

TEST(VtepNdpTest, WhatAdvertisementsTeach) {
  struct Case {
    std::string name;
    Nd nd;
    bool learn;
    testing::Mac mac = kPeerMac;
  };
  Nd without_option = Advertisement("2001:db8::2");
  without_option.options = {};
  without_option.ethernet_src = kPeerMac;
  Nd multicast_mac = Advertisement("2001:db8::2");
  multicast_mac.options =
      testing::LinkAddressOption(kNdOptionTargetLinkAddress, MacOf("33:33:00:00:00:01"));
  Nd hop_limit = Advertisement("2001:db8::2");
  hop_limit.hop_limit = 64;
  Nd after_source = Advertisement("2001:db8::2");
  after_source.options =
      testing::Cat({testing::LinkAddressOption(kNdOptionSourceLinkAddress, kRouterMac),
                    testing::LinkAddressOption(kNdOptionTargetLinkAddress, kPeerMac)});
  std::vector<Case> cases = {
      {"answer to us", Advertisement("2001:db8::2"), true},
      {"announcement to all nodes", Advertisement("2001:db8::2", "ff02::1"), true},
      {"no option: the frame's source", without_option, true},
      {"the target option, not the source one", after_source, true},
      {"to another node", Advertisement("2001:db8::2", "2001:db8::3"), false},
      {"for our own address", Advertisement("2001:db8::1", "ff02::1"), false},
      {"for a multicast address", Advertisement("ff02::1"), false},
      {"a multicast MAC", multicast_mac, false},
      {"hop limit below 255", hop_limit, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes frame = c.nd.Build();
    Handled handled = HandleNdp(frame);
    EXPECT_FALSE(handled.outcome.reply);
    EXPECT_EQ(handled.outcome.learn, c.learn);
    if (c.learn) {
      EXPECT_EQ(handled.outcome.sender_ip, Ipv6Of(c.nd.target));
      EXPECT_EQ(handled.outcome.sender_mac, c.mac);
    }
    EXPECT_EQ(handled.frame, frame);
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: mbufs from a mempool, hence the EAL.

class VtepBuildersTest : public ::testing::Test {
 protected:
  // The EAL once per process, cleaned up (its runtime directory removed) at exit.
  struct Eal {
    Eal() {
      HostFacts host = ReadHostFacts();
      std::string cpus;
      for (unsigned cpu : host.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
      std::vector<std::string> args = {
          "stages_test",
          "--no-huge",
          "--no-pci",
          "-m",
          "64",
          "--no-shconf",
          "--no-telemetry",
          "--log-level=error",
          "--file-prefix=butterfly-stages-test-" + std::to_string(host.pid),
          "--lcores=0@(" + cpus + ")"};
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
        error = std::string("rte_eal_init: ") + rte_strerror(rte_errno);
        return;
      }
      initialised = true;
      pool =
          rte_pktmbuf_pool_create("vtep_test", 63, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
      if (!pool) error = std::string("mempool: ") + rte_strerror(rte_errno);
    }
    ~Eal() {
      if (pool) rte_mempool_free(pool);
      if (initialised) CleanupEal();
    }
    bool initialised = false;
    rte_mempool* pool = nullptr;
    std::string error;
  };

  static Eal& TheEal() {
    static Eal eal;
    return eal;
  }

  void SetUp() override { ASSERT_NE(pool(), nullptr) << TheEal().error; }

  static rte_mempool* pool() { return TheEal().pool; }

  // The frame's bytes; the mbuf goes back to the pool.
  static Bytes Take(rte_mbuf* frame) {
    EXPECT_EQ(frame->nb_segs, 1);
    EXPECT_EQ(frame->pkt_len, frame->data_len);
    const auto* data = rte_pktmbuf_mtod(frame, const uint8_t*);
    Bytes bytes(data, data + frame->data_len);
    rte_pktmbuf_free(frame);
    return bytes;
  }
};

TEST_F(VtepBuildersTest, ArpRequest) {
  rte_mbuf* frame = BuildArpRequest(pool(), Ipv4Underlay(), Ipv4Of("198.18.0.2"));
  ASSERT_NE(frame, nullptr);
  Bytes bytes = Take(frame);
  ASSERT_EQ(bytes.size(), 42u);
  EXPECT_EQ(Slice(bytes, 0, 6), testing::BytesOf(kBroadcast));
  EXPECT_EQ(Slice(bytes, 6, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Get16(bytes, 12), kEthTypeArp);
  EXPECT_EQ(Slice(bytes, 14, 8), (Bytes{0, 1, 0x08, 0x00, 6, 4, 0, 1}));
  EXPECT_EQ(Slice(bytes, 22, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Slice(bytes, 28, 4), testing::BytesOfIpv4(Ipv4Of("198.18.0.1")));
  EXPECT_EQ(Slice(bytes, 32, 6), Bytes(6, 0));
  EXPECT_EQ(Slice(bytes, 38, 4), testing::BytesOfIpv4(Ipv4Of("198.18.0.2")));
  // The peer answers it, and learns us.
  Handled handled = HandleArp(bytes, Ipv4Underlay("198.18.0.2", kPeerMac));
  EXPECT_TRUE(handled.outcome.reply);
  EXPECT_TRUE(handled.outcome.learn);
  EXPECT_EQ(handled.outcome.sender_ip, VtepOfIpv4(Ipv4Of("198.18.0.1")));
  EXPECT_EQ(handled.outcome.sender_mac, kVtepMac);
}

TEST_F(VtepBuildersTest, NeighborSolicitation) {
  rte_mbuf* frame = BuildNeighborSolicitation(pool(), Ipv6Underlay(), Ipv6Of("2001:db8::a:bcde"));
  ASSERT_NE(frame, nullptr);
  Bytes bytes = Take(frame);
  ASSERT_EQ(bytes.size(), 14u + 40 + 32);
  // To the target's solicited-node group (RFC 4291), ff02::1:ff0a:bcde.
  EXPECT_EQ(Slice(bytes, 0, 6), testing::BytesOf(MacOf("33:33:ff:0a:bc:de")));
  EXPECT_EQ(Slice(bytes, 6, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Get16(bytes, 12), kEthTypeIpv6);
  Bytes ip = Slice(bytes, 14, bytes.size() - 14);
  EXPECT_EQ(Get32(ip, 0), 0x60000000u);
  EXPECT_EQ(Get16(ip, 4), 32);
  EXPECT_EQ(ip[6], kProtoIcmpv6);
  EXPECT_EQ(ip[7], 255);
  EXPECT_EQ(Slice(ip, 8, 16), testing::BytesOf(Ipv6Of("2001:db8::1")));
  EXPECT_EQ(Slice(ip, 24, 16), testing::BytesOf(Ipv6Of("ff02::1:ff0a:bcde")));
  EXPECT_EQ(ip[40], kIcmpv6NeighborSolicitation);
  EXPECT_EQ(ip[41], 0);
  EXPECT_TRUE(testing::Ipv6UpperChecksumValid(ip)) << std::hex << Get16(ip, 42);
  EXPECT_EQ(Get32(ip, 44), 0u);
  EXPECT_EQ(Slice(ip, 48, 16), testing::BytesOf(Ipv6Of("2001:db8::a:bcde")));
  EXPECT_EQ(Slice(ip, 64, 8), testing::LinkAddressOption(kNdOptionSourceLinkAddress, kVtepMac));
  // The target answers it, and learns us.
  Handled handled = HandleNdp(bytes, 0, Ipv6Underlay("2001:db8::a:bcde", kPeerMac));
  EXPECT_TRUE(handled.outcome.reply);
  EXPECT_TRUE(handled.outcome.learn);
  EXPECT_EQ(handled.outcome.sender_ip, Ipv6Of("2001:db8::1"));
  EXPECT_EQ(handled.outcome.sender_mac, kVtepMac);
  EXPECT_TRUE(testing::Ipv6UpperChecksumValid(Slice(handled.frame, 14, 72)));
}

TEST_F(VtepBuildersTest, IgmpReport) {
  // 239.129.2.3: the MAC keeps the group's low 23 bits (RFC 1112).
  rte_mbuf* frame = BuildIgmpReport(pool(), Ipv4Underlay(), Ipv4Of("239.129.2.3"));
  ASSERT_NE(frame, nullptr);
  Bytes bytes = Take(frame);
  ASSERT_EQ(bytes.size(), 14u + 24 + 8);
  EXPECT_EQ(Slice(bytes, 0, 6), testing::BytesOf(MacOf("01:00:5e:01:02:03")));
  EXPECT_EQ(Slice(bytes, 6, 6), testing::BytesOf(kVtepMac));
  EXPECT_EQ(Get16(bytes, 12), kEthTypeIpv4);
  Bytes ip = Slice(bytes, 14, 24);
  EXPECT_EQ(ip[0], 0x46);  // a 24-byte header: the router alert option (RFC 2236)
  EXPECT_EQ(ip[1], 0xc0);
  EXPECT_EQ(Get16(ip, 2), 32);
  EXPECT_EQ(Get16(ip, 6), 0);  // not fragmented
  EXPECT_EQ(ip[8], 1);         // TTL 1: link-local
  EXPECT_EQ(ip[9], kProtoIgmp);
  EXPECT_EQ(Slice(ip, 12, 4), testing::BytesOfIpv4(Ipv4Of("198.18.0.1")));
  EXPECT_EQ(Slice(ip, 16, 4), testing::BytesOfIpv4(Ipv4Of("239.129.2.3")));
  EXPECT_EQ(Slice(ip, 20, 4), (Bytes{0x94, 0x04, 0, 0}));
  EXPECT_TRUE(testing::ChecksumValid(ip)) << std::hex << Get16(ip, 10);
  Bytes igmp = Slice(bytes, 38, 8);
  EXPECT_EQ(igmp[0], 0x16);  // IGMPv2 membership report
  EXPECT_EQ(igmp[1], 0);
  EXPECT_EQ(Slice(igmp, 4, 4), testing::BytesOfIpv4(Ipv4Of("239.129.2.3")));
  EXPECT_TRUE(testing::ChecksumValid(igmp)) << std::hex << Get16(igmp, 2);
}

TEST_F(VtepBuildersTest, NullWithoutBuffers) {
  rte_mempool* small =
      rte_pktmbuf_pool_create("vtep_test_small", 2, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(small, nullptr);
  std::vector<rte_mbuf*> taken;
  while (rte_mbuf* mbuf = rte_pktmbuf_alloc(small)) taken.push_back(mbuf);
  EXPECT_EQ(BuildArpRequest(small, Ipv4Underlay(), Ipv4Of("198.18.0.2")), nullptr);
  EXPECT_EQ(BuildNeighborSolicitation(small, Ipv6Underlay(), Ipv6Of("2001:db8::2")), nullptr);
  EXPECT_EQ(BuildIgmpReport(small, Ipv4Underlay(), Ipv4Of("239.1.1.1")), nullptr);
  for (rte_mbuf* mbuf : taken) rte_pktmbuf_free(mbuf);
  rte_mempool_free(small);
}

}  // namespace
}  // namespace butterfly
