// L2 forwarding: the control side's Fdb builds the table, the workers' L2Forwarding stage
// records a next hop per frame and reports what it learns; the learn ring is a real rte_ring in
// plain memory and frames are mbufs in plain memory (no EAL).
#include "pipeline/l2_forwarding.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/fdb.h"
#include "support/test_mbuf.h"

namespace butterfly {
namespace {

using testing::TestMbuf;

constexpr uint32_t kVni = 1;
constexpr uint32_t kOtherVni = 2;

MacBytes Mac(const char* text) {
  MacBytes mac;
  auto parsed = MacAddress::Parse(text);
  EXPECT_TRUE(parsed.ok()) << text;
  std::copy(parsed->bytes.begin(), parsed->bytes.end(), mac.begin());
  return mac;
}

VtepIp Vtep(const char* ipv4) {
  in_addr address{};
  EXPECT_EQ(inet_pton(AF_INET, ipv4, &address), 1) << ipv4;
  return VtepOfIpv4(address.s_addr);
}

// An Ethernet frame from `src` to `dst`, IPv4 ethertype, with a little payload.
std::vector<uint8_t> Frame(const MacBytes& dst, const MacBytes& src) {
  std::vector<uint8_t> frame(60, 0);
  std::copy(dst.begin(), dst.end(), frame.begin());
  std::copy(src.begin(), src.end(), frame.begin() + 6);
  frame[12] = 0x08;
  return frame;
}

const MacBytes kMacA = Mac("52:54:00:00:00:0a");
const MacBytes kMacB = Mac("52:54:00:00:00:0b");
const MacBytes kMacC = Mac("52:54:00:00:00:0c");
const MacBytes kRemoteMac = Mac("52:54:00:00:01:01");
const MacBytes kUnresolvedMac = Mac("52:54:00:00:01:02");
const MacBytes kRouterMac = Mac("02:00:00:00:00:09");
const MacBytes kBroadcast = Mac("ff:ff:ff:ff:ff:ff");

class L2ForwardingTest : public ::testing::Test {
 protected:
  L2ForwardingTest() : fdb_(100), l2_(Ring(), counters_) {
    underlay_.present = true;
    underlay_.vtep_ip = Vtep("198.18.0.1");
    a_ = AddVnic("a", kMacA, kVni, 0);
    b_ = AddVnic("b", kMacB, kVni, 1);
    c_ = AddVnic("c", kMacC, kOtherVni, 2);
    fdb_.SetStaticMac({kVni, MacKey(kRemoteMac.data())}, Vtep("198.18.0.9"));
    fdb_.SetStaticMac({kVni, MacKey(kUnresolvedMac.data())}, Vtep("198.18.0.10"));
    LearnEvent neighbor{kLearnNeighbor, {}, 0, 0, Vtep("198.18.0.9")};
    std::memcpy(neighbor.mac, kRouterMac.data(), 6);
    EXPECT_TRUE(fdb_.Learn(&neighbor, 1, 0));
    Rebuild();
  }
  ~L2ForwardingTest() override { std::free(ring_memory_); }

  rte_ring* Ring() {
    ssize_t size = rte_ring_get_memsize_elem(sizeof(LearnEvent), 64);
    ring_memory_ = std::aligned_alloc(64, static_cast<size_t>(size));
    auto* ring = static_cast<rte_ring*>(ring_memory_);
    EXPECT_EQ(rte_ring_init(ring, "l2_test_learn", 64, RING_F_SC_DEQ), 0);
    return ring;
  }

  VnicPort* AddVnic(const std::string& id, const MacBytes& mac, uint32_t vni, uint32_t index) {
    Vnic vnic;
    vnic.id = id;
    std::copy(mac.begin(), mac.end(), vnic.mac.bytes.begin());
    vnic.vni = vni;
    ports_.push_back(std::make_unique<VnicPort>(vnic, index, 0, 1, nullptr));
    return ports_.back().get();
  }

  void Rebuild() {
    std::vector<VnicPort*> ports;
    for (const auto& port : ports_) ports.push_back(port.get());
    table_ = fdb_.Build(ports, 1, underlay_);
  }

  // The next hop of one frame from `source`.
  NextHop FromVnic(VnicPort* source, const MacBytes& dst) {
    TestMbuf frame(Frame(dst, source->settings()->mac));
    rte_mbuf* frames[1] = {frame.get()};
    uint32_t vni = source->settings()->vni;
    NextHop next;
    l2_.FromVnic(*table_, *source, table_->FindVni(vni), vni, frames, 1, &next);
    return next;
  }

  // The next hop of one decapsulated frame from `src` behind `vtep`, at second `now`.
  NextHop FromUnderlay(const MacBytes& dst, const MacBytes& src, const VtepIp& vtep,
                       uint32_t now = 1) {
    TestMbuf frame(Frame(dst, src));
    rte_mbuf* frames[1] = {frame.get()};
    DecapResult tunnel{kVni, vtep, Mac("02:00:00:00:00:20")};
    const VniForwarding* vni = table_->FindVni(kVni);
    NextHop next;
    l2_.FromUnderlay(*table_, frames, &tunnel, &vni, 1, now, &next);
    return next;
  }

  std::vector<LearnEvent> Reported() {
    std::vector<LearnEvent> events(64);
    unsigned n =
        rte_ring_sc_dequeue_burst_elem(l2_ring(), events.data(), sizeof(LearnEvent), 64, nullptr);
    events.resize(n);
    return events;
  }
  rte_ring* l2_ring() { return static_cast<rte_ring*>(ring_memory_); }

  void* ring_memory_ = nullptr;
  WorkerCounters counters_;
  UnderlayInfo underlay_;
  Fdb fdb_;
  L2Forwarding l2_;
  std::vector<std::unique_ptr<VnicPort>> ports_;
  VnicPort* a_ = nullptr;
  VnicPort* b_ = nullptr;
  VnicPort* c_ = nullptr;
  std::unique_ptr<ForwardingTable> table_;
};

TEST_F(L2ForwardingTest, AKnownLocalMacIsDeliveredToItsVnic) {
  NextHop next = FromVnic(a_, kMacB);
  EXPECT_EQ(next.kind, NextHop::Kind::kVnic);
  EXPECT_EQ(next.vnic, b_);
}

TEST_F(L2ForwardingTest, AFrameToItsOwnSenderIsDroppedAsNoRoute) {
  NextHop next = FromVnic(a_, kMacA);
  EXPECT_EQ(next.kind, NextHop::Kind::kDrop);
  EXPECT_EQ(next.reason, DropReason::kNoRoute);
}

TEST_F(L2ForwardingTest, BroadcastAndUnknownUnicastFloodTheSendersVniOnly) {
  for (const MacBytes& dst : {kBroadcast, Mac("52:54:00:00:09:99")}) {
    NextHop next = FromVnic(a_, dst);
    EXPECT_EQ(next.kind, NextHop::Kind::kFlood);
    ASSERT_NE(next.forwarding, nullptr);
    EXPECT_EQ(next.forwarding->vni, kVni);
    EXPECT_EQ(next.forwarding->local_vnics, (std::vector<VnicPort*>{a_, b_}));
  }
}

TEST_F(L2ForwardingTest, AMacOfAnotherVniIsNeverReached) {
  // B's MAC seen from C (VNI 2): unknown there, flooded in VNI 2, where only C lives.
  NextHop next = FromVnic(c_, kMacB);
  EXPECT_EQ(next.kind, NextHop::Kind::kFlood);
  ASSERT_NE(next.forwarding, nullptr);
  EXPECT_EQ(next.forwarding->vni, kOtherVni);
  EXPECT_EQ(next.forwarding->local_vnics, std::vector<VnicPort*>{c_});
}

TEST_F(L2ForwardingTest, ARemoteMacGoesToItsVtepThroughTheResolvedNeighbour) {
  NextHop next = FromVnic(a_, kRemoteMac);
  ASSERT_EQ(next.kind, NextHop::Kind::kVtep);
  EXPECT_EQ(next.vni, kVni);
  ASSERT_NE(next.vtep, nullptr);
  EXPECT_TRUE(SameVtep(*next.vtep, Vtep("198.18.0.9")));
  EXPECT_EQ(next.next_hop_mac, kRouterMac);
}

TEST_F(L2ForwardingTest, AnUnresolvedVtepIsANoNeighborDropNamingTheVtepToAskFor) {
  NextHop next = FromVnic(a_, kUnresolvedMac);
  EXPECT_EQ(next.kind, NextHop::Kind::kDrop);
  EXPECT_EQ(next.reason, DropReason::kNoNeighbor);
  ASSERT_NE(next.vtep, nullptr);
  EXPECT_TRUE(SameVtep(*next.vtep, Vtep("198.18.0.10")));
}

TEST_F(L2ForwardingTest, WithoutAnUnderlayARemoteMacHasNoRoute) {
  underlay_.present = false;
  Rebuild();
  NextHop next = FromVnic(a_, kRemoteMac);
  EXPECT_EQ(next.kind, NextHop::Kind::kDrop);
  EXPECT_EQ(next.reason, DropReason::kNoRoute);
}

TEST_F(L2ForwardingTest, AMulticastGroupVtepNeedsNoNeighbour) {
  MacBytes mac;
  ASSERT_TRUE(L2Forwarding::NextHopMac(*table_, Vtep("230.0.0.1"), &mac));
  EXPECT_EQ(mac, Mac("01:00:5e:00:00:01"));
  EXPECT_FALSE(L2Forwarding::NextHopMac(*table_, Vtep("198.18.0.77"), &mac));
}

TEST_F(L2ForwardingTest, FromTheUnderlayItDeliversAndReportsTheSenderAndItsVtepOncePerSecond) {
  const MacBytes sender = Mac("52:54:00:00:02:01");
  NextHop next = FromUnderlay(kMacB, sender, Vtep("198.18.0.20"));
  EXPECT_EQ(next.kind, NextHop::Kind::kVnic);
  EXPECT_EQ(next.vnic, b_);
  std::vector<LearnEvent> events = Reported();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, kLearnNeighbor);  // the way back to 198.18.0.20
  EXPECT_TRUE(SameVtep(events[0].ip, Vtep("198.18.0.20")));
  EXPECT_EQ(events[1].kind, kLearnRemoteMac);
  EXPECT_EQ(events[1].vni, kVni);
  EXPECT_EQ(MacKey(events[1].mac), MacKey(sender.data()));
  EXPECT_TRUE(SameVtep(events[1].ip, Vtep("198.18.0.20")));

  FromUnderlay(kMacB, sender, Vtep("198.18.0.20"));  // the same second: nothing new
  EXPECT_TRUE(Reported().empty());
  FromUnderlay(kMacB, sender, Vtep("198.18.0.20"), 2);
  EXPECT_EQ(Reported().size(), 2u);
}

TEST_F(L2ForwardingTest, FromTheUnderlayUnknownGoesToLocalVnicsOnlyAndLocalMacsAreNotLearned) {
  NextHop next = FromUnderlay(Mac("52:54:00:00:09:99"), kMacA, Vtep("198.18.0.9"));
  EXPECT_EQ(next.kind, NextHop::Kind::kFlood);
  EXPECT_EQ(next.forwarding, table_->FindVni(kVni));
  // 198.18.0.9 is a known neighbour and A is local: nothing to report.
  EXPECT_TRUE(Reported().empty());
}

TEST_F(L2ForwardingTest, WhatTheUnderlayTeachesTheFdbMakesTheWayBack) {
  const MacBytes sender = Mac("52:54:00:00:02:01");
  FromUnderlay(kMacB, sender, Vtep("198.18.0.20"));
  EXPECT_EQ(FromVnic(b_, sender).kind, NextHop::Kind::kFlood);  // not learned yet
  std::vector<LearnEvent> events = Reported();
  EXPECT_TRUE(fdb_.Learn(events.data(), static_cast<unsigned>(events.size()), 1));
  Rebuild();
  NextHop next = FromVnic(b_, sender);
  ASSERT_EQ(next.kind, NextHop::Kind::kVtep);
  EXPECT_TRUE(SameVtep(*next.vtep, Vtep("198.18.0.20")));
  EXPECT_EQ(next.next_hop_mac, Mac("02:00:00:00:00:20"));  // the tunnel's outer source MAC
  ASSERT_EQ(fdb_.LearnedMacs(table_.get(), 1, false).size(), 1u);
}

TEST_F(L2ForwardingTest, AVniAtItsLearningCapReportsNoNewMacAndCountsTheFrames) {
  Fdb small(1);
  fdb_ = std::move(small);
  LearnEvent first{kLearnRemoteMac, {2, 0, 0, 0, 0, 1}, 0, kVni, Vtep("198.18.0.20")};
  ASSERT_TRUE(fdb_.Learn(&first, 1, 0));
  Rebuild();
  ASSERT_TRUE(table_->FindVni(kVni)->learning_full);
  FromUnderlay(kMacB, Mac("52:54:00:00:02:02"), Vtep("198.18.0.20"));
  std::vector<LearnEvent> events = Reported();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, kLearnNeighbor);  // the way back is still learned
  EXPECT_EQ(counters_.fdb_vni_full.Get(), 1u);
}

TEST(FdbTest, AVniFloodsToItsDefaultGroupUntilItHasPeersAndGroupsAreVersioned) {
  Fdb fdb(10);
  UnderlayInfo underlay;
  underlay.present = true;
  Vnic vnic;
  vnic.id = "a";
  vnic.vni = 0x010203;
  VnicPort port(vnic, 0, 0, 1, nullptr);
  auto table = fdb.Build({&port}, 1, underlay);
  const VniForwarding* vni = table->FindVni(0x010203);
  ASSERT_NE(vni, nullptr);
  EXPECT_TRUE(SameVtep(vni->multicast_group, Vtep("230.1.2.3")));
  EXPECT_EQ(table->multicast_groups, std::vector<uint32_t>{Ipv4OfVtep(Vtep("230.1.2.3"))});
  uint64_t version = table->groups_version;
  EXPECT_EQ(fdb.Build({&port}, 1, underlay)->groups_version, version);  // nothing changed

  fdb.SetVniPeers(0x010203, {Vtep("198.18.0.5")});
  table = fdb.Build({&port}, 1, underlay);
  vni = table->FindVni(0x010203);
  EXPECT_TRUE(IsUnset(vni->multicast_group));
  ASSERT_EQ(vni->flood_vteps.size(), 1u);
  EXPECT_TRUE(table->multicast_groups.empty());
  EXPECT_NE(table->groups_version, version);
}

TEST(FdbTest, LearnedMacsAgeUnlessTheWorkersStampedThemAndStaticOnesAreNotListed) {
  Fdb fdb(10);
  UnderlayInfo underlay;
  Vnic vnic;
  vnic.id = "a";
  vnic.vni = kVni;
  VnicPort port(vnic, 0, 0, 1, nullptr);
  LearnEvent learned[2] = {{kLearnRemoteMac, {2, 0, 0, 0, 0, 1}, 0, kVni, Vtep("198.18.0.20")},
                           {kLearnRemoteMac, {2, 0, 0, 0, 0, 2}, 0, kVni, Vtep("198.18.0.20")}};
  ASSERT_TRUE(fdb.Learn(learned, 2, 10));
  fdb.SetStaticMac({kVni, MacKey(kRemoteMac.data())}, Vtep("198.18.0.9"));
  auto table = fdb.Build({&port}, 1, underlay);
  EXPECT_EQ(fdb.LearnedMacs(table.get(), 10, false).size(), 2u);
  // A worker saw the first MAC at second 100.
  (*table->FindVni(kVni)->remote_macs.Find(0x020000000001))->last_seen.store(100);
  EXPECT_TRUE(fdb.Age(table.get(), 200, 150));
  std::vector<LearnedMac> left = fdb.LearnedMacs(table.get(), 200, false);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].mac.bytes[5], 1);
  EXPECT_EQ(left[0].idle_seconds, 100u);
}

}  // namespace
}  // namespace butterfly
