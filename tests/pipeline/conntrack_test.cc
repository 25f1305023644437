#include "pipeline/conntrack.h"
#include "pipeline/conntrack_monitor.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "support/packet_builder.h"

namespace butterfly {
namespace {

using testing::Key;

constexpr uint64_t kSecond = 1000;  // the tests count time in milliseconds

ConntrackConfig SmallConfig(uint32_t max_entries) {
  ConntrackConfig config;
  config.max_entries = max_entries;
  config.ticks_per_second = kSecond;
  return config;
}

ConntrackEntry* Open(Conntrack& table, const PacketKey& key, uint64_t now, uint32_t vnic = 1) {
  bool from_lo;
  FlowKey flow = MakeFlowKey(key, vnic, &from_lo);
  EXPECT_EQ(table.Find(flow, now), nullptr);
  return table.Insert(flow, key, from_lo, Direction::kInbound, 7, now, vnic);
}

ConntrackEntry* Lookup(Conntrack& table, const PacketKey& key, uint64_t now, uint32_t vnic = 1) {
  bool from_lo;
  return table.Find(MakeFlowKey(key, vnic, &from_lo), now);
}

bool TrackPacket(Conntrack& table, const PacketKey& key, uint64_t now) {
  bool from_lo;
  ConntrackEntry* entry = table.Find(MakeFlowKey(key, 1, &from_lo), now);
  return entry && table.Track(entry, key, from_lo, now);
}

TEST(ConntrackTest, APacketAndItsReplyShareOneEntry) {
  Conntrack table(SmallConfig(16));
  Key syn = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  ConntrackEntry* entry = Open(table, syn, 0);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(Lookup(table, syn.Reply(kTcpSyn | kTcpAck), 0), entry);
  EXPECT_EQ(entry->state, FlowState::kTcpSynSent);
  EXPECT_EQ(entry->generation, 7u);
  // The same tuple on another vnic is another flow.
  EXPECT_EQ(Lookup(table, syn, 0, /*vnic=*/2), nullptr);
  PacketKey opener = entry->OpenerKey();
  EXPECT_EQ(opener.src, syn.key.src);
  EXPECT_EQ(opener.dst_port, 22);
}

TEST(ConntrackTest, TcpHandshakeAndTeardown) {
  Conntrack table(SmallConfig(16));
  Key syn = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  ConntrackEntry* entry = Open(table, syn, 0);
  // Before the SYN-ACK, a reply's FIN does not belong to the flow; its bare ACK passes (as
  // Linux's "ignored" transition, found by the oracle) and moves nothing.
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpFin | kTcpAck), 1));
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpAck), 1));
  EXPECT_EQ(entry->state, FlowState::kTcpSynSent);
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpSyn | kTcpAck), 1));
  EXPECT_EQ(entry->state, FlowState::kTcpSynReceived);
  EXPECT_TRUE(TrackPacket(table, syn.Flags(kTcpAck), 2));
  EXPECT_EQ(entry->state, FlowState::kTcpEstablished);
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpAck), 3));
  EXPECT_TRUE(TrackPacket(table, syn.Flags(kTcpFin | kTcpAck), 4));
  EXPECT_EQ(entry->state, FlowState::kTcpClosing);
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpFin | kTcpAck), 5));
  EXPECT_TRUE(TrackPacket(table, syn.Flags(kTcpAck), 6));
  // Closing times out far sooner than established.
  EXPECT_EQ(entry->expires, 6 + 120 * kSecond);
  // The port pair reused for a new connection.
  EXPECT_TRUE(TrackPacket(table, syn, 7));
  EXPECT_EQ(entry->state, FlowState::kTcpSynSent);
}

// As Linux's CLOSE state: after a reset, late packets of either side still belong to the flow
// until it ages out (the oracle, tests/oracle, found Butterfly dropping the responder's).
TEST(ConntrackTest, ResetClosesAndLatePacketsPassUntilTheFlowAgesOut) {
  Conntrack table(SmallConfig(16));
  Key client = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22);
  Key server = client.Reply(0);
  ConntrackEntry* entry = Open(table, client.Segment(kTcpSyn, 100, 0), 0);
  ASSERT_TRUE(TrackPacket(table, server.Segment(kTcpSyn | kTcpAck, 900, 101), 1));
  ASSERT_TRUE(TrackPacket(table, client.Segment(kTcpAck, 101, 901), 1));
  EXPECT_TRUE(TrackPacket(table, server.Segment(kTcpRst | kTcpAck, 901, 101), 1));
  EXPECT_EQ(entry->state, FlowState::kTcpClosed);
  EXPECT_EQ(entry->expires, 1 + 10 * kSecond);
  EXPECT_TRUE(TrackPacket(table, server.Segment(kTcpAck, 901, 101), 2));
  EXPECT_TRUE(TrackPacket(table, client.Segment(kTcpAck, 101, 901), 3));
  EXPECT_EQ(entry->state, FlowState::kTcpClosed);
  EXPECT_FALSE(TrackPacket(table, server.Segment(kTcpAck, 901, 101), 3 + 10 * kSecond));
}

// As Linux: a reset that is the only answer to a SYN (a refused connection) ends the flow at
// once, so the next packets on those ports are new flows that the rules judge afresh.
TEST(ConntrackTest, AResetAsTheOnlyAnswerEndsTheFlowAtOnce) {
  Conntrack table(SmallConfig(16));
  Key client = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22);
  Key server = client.Reply(0);
  Open(table, client.Segment(kTcpSyn, 100, 0), 0);
  EXPECT_TRUE(TrackPacket(table, server.Segment(kTcpRst | kTcpAck, 0, 101), 1));
  EXPECT_EQ(Lookup(table, client.Segment(kTcpAck, 101, 1), 1), nullptr);
  EXPECT_FALSE(TrackPacket(table, server.Segment(kTcpAck, 0, 101), 2));
}

// Found by the oracle: before any answer the opener may only repeat its SYN (or reset); its data,
// ACK or FIN in SYN_SENT are Linux's `invalid`.
TEST(ConntrackTest, TheOpenerSendsNothingButItsSynBeforeAnAnswer) {
  Conntrack table(SmallConfig(16));
  Key syn = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  ConntrackEntry* entry = Open(table, syn, 0);
  EXPECT_FALSE(TrackPacket(table, syn.Flags(kTcpAck), 1));
  EXPECT_FALSE(TrackPacket(table, syn.Flags(kTcpAck | kTcpFin), 1));
  EXPECT_FALSE(TrackPacket(table, syn.Flags(kTcpSyn | kTcpAck), 1));
  EXPECT_TRUE(TrackPacket(table, syn, 2));
  EXPECT_EQ(entry->state, FlowState::kTcpSynSent);
}

// Found by the oracle: in an open flow the responder's SYN (and the opener's SYN-ACK) are
// Linux's `invalid`; the opener's SYN and the responder's SYN-ACK pass (retransmissions).
TEST(ConntrackTest, AnOpenFlowRefusesTheResponderSynAndTheOpenerSynAck) {
  Conntrack table(SmallConfig(16));
  Key syn = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  ConntrackEntry* entry = Open(table, syn.Flags(kTcpAck), 0);  // picked up mid-stream
  ASSERT_EQ(entry->state, FlowState::kTcpEstablished);
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpSyn), 1));
  EXPECT_FALSE(TrackPacket(table, syn.Flags(kTcpSyn | kTcpAck), 1));
  EXPECT_TRUE(TrackPacket(table, syn, 2));
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpSyn | kTcpAck), 2));
  EXPECT_TRUE(TrackPacket(table, syn.Flags(kTcpFin | kTcpAck), 3));
  EXPECT_EQ(entry->state, FlowState::kTcpClosing);
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpSyn), 4));
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpRst), 5));
  EXPECT_EQ(entry->state, FlowState::kTcpClosed);
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpSyn), 6));
  EXPECT_FALSE(TrackPacket(table, syn.Flags(kTcpSyn | kTcpAck), 6));
}

// Found by the oracle: an echo request each way with the same id are two flows (Linux keys on the
// type): B's request is no reply to A's, and A's reply to B answers B's request only.
TEST(ConntrackTest, EchoRequestsBothWaysWithOneIdAreTwoFlows) {
  Conntrack table(SmallConfig(16));
  Key ping = Key::Icmp("192.0.2.1", "10.0.0.5", 8, 7);
  ConntrackEntry* entry = Open(table, ping, 0);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(Lookup(table, ping.Reply(0), 0), entry);
  Key back = Key::Icmp("10.0.0.5", "192.0.2.1", 8, 7);
  EXPECT_EQ(Lookup(table, back, 0), nullptr);
  EXPECT_EQ(Lookup(table, back.Reply(0), 0), nullptr);
  Key v6 = Key::Icmp("2001:db8::1", "2001:db8::5", 128, 7);
  ConntrackEntry* v6_entry = Open(table, v6, 0);
  EXPECT_EQ(Lookup(table, v6.Reply(0), 0), v6_entry);
  EXPECT_EQ(Lookup(table, Key::Icmp("2001:db8::5", "2001:db8::1", 128, 7), 0), nullptr);
}

TEST(ConntrackTest, EntriesAgeOutPerProtocolAndState) {
  Conntrack table(SmallConfig(16));
  Key dns = Key::Udp("10.0.0.5", 5353, "8.8.8.8", 53);
  ASSERT_NE(Open(table, dns, 0), nullptr);
  EXPECT_NE(Lookup(table, dns, 30 * kSecond - 1), nullptr);
  EXPECT_EQ(Lookup(table, dns, 30 * kSecond), nullptr);  // unreplied UDP: 30 s
  EXPECT_EQ(table.size(), 0u);

  ASSERT_NE(Open(table, dns, 100 * kSecond), nullptr);
  EXPECT_TRUE(TrackPacket(table, dns.Reply(0), 101 * kSecond));
  EXPECT_NE(Lookup(table, dns, 280 * kSecond), nullptr);  // replied UDP: 180 s
  EXPECT_EQ(Lookup(table, dns, 281 * kSecond), nullptr);

  Key ping = Key::Icmp("10.0.0.5", "192.0.2.1", 8, 99);
  ASSERT_NE(Open(table, ping, 0), nullptr);
  EXPECT_NE(Lookup(table, ping.Reply(0), 29 * kSecond), nullptr);
  EXPECT_EQ(Lookup(table, ping.Reply(0), 30 * kSecond), nullptr);
}

TEST(ConntrackTest, ExpiredEntriesAreReclaimedIncrementally) {
  Conntrack table(SmallConfig(64));
  for (int i = 0; i < 40; ++i) {
    ASSERT_NE(Open(table, Key::Udp("10.0.0.5", static_cast<uint16_t>(1000 + i), "8.8.8.8", 53), 0),
              nullptr);
  }
  EXPECT_EQ(table.size(), 40u);
  size_t freed = 0;
  for (int step = 0; step < 1000 && table.size() > 0; ++step) {
    size_t now_freed = table.ReclaimExpired(31 * kSecond, 8);
    EXPECT_LE(now_freed, 8u);
    freed += now_freed;
  }
  EXPECT_EQ(freed, 40u);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().expired.load(), 40u);
}

TEST(ConntrackTest, AFullTableRefusesAndCounts) {
  Conntrack table(SmallConfig(4));
  for (int i = 0; i < 4; ++i) {
    ASSERT_NE(Open(table, Key::Udp("10.0.0.5", static_cast<uint16_t>(1000 + i), "8.8.8.8", 53), 0),
              nullptr);
  }
  EXPECT_EQ(Open(table, Key::Udp("10.0.0.5", 2000, "8.8.8.8", 53), 1), nullptr);
  EXPECT_EQ(table.counters().full.load(), 1u);
  // Once entries expire, an insert makes room by itself.
  EXPECT_NE(Open(table, Key::Udp("10.0.0.5", 2000, "8.8.8.8", 53), 31 * kSecond), nullptr);
}

TEST(ConntrackTest, TheMonitorReportsRefusedInsertsOnce) {
  Conntrack table(SmallConfig(1));
  ConntrackMonitor monitor;
  EXPECT_EQ(monitor.Poll({&table}), 0u);
  Open(table, Key::Udp("10.0.0.5", 1, "8.8.8.8", 53), 0);
  Open(table, Key::Udp("10.0.0.5", 2, "8.8.8.8", 53), 0);
  Open(table, Key::Udp("10.0.0.5", 3, "8.8.8.8", 53), 0);
  EXPECT_EQ(monitor.Poll({&table}), 2u);
  EXPECT_EQ(monitor.Poll({&table}), 0u);
}

TEST(ConntrackTest, BehavesLikeAMapUnderRandomInsertsAndErases) {
  // Backward-shift deletion must never lose an entry of a probe chain.
  Conntrack table(SmallConfig(512));
  std::map<uint16_t, ConntrackEntry*> model;
  std::mt19937 rng(42);
  for (int step = 0; step < 20000; ++step) {
    uint16_t port = static_cast<uint16_t>(rng() % 700);
    Key key = Key::Udp("10.0.0.5", port, "8.8.8.8", 53);
    bool from_lo;
    FlowKey flow = MakeFlowKey(key, 1, &from_lo);
    ConntrackEntry* found = table.Find(flow, 0);
    ASSERT_EQ(found != nullptr, model.count(port) == 1) << "step " << step;
    if (found) {
      table.Erase(found);
      model.erase(port);
    } else if (model.size() < 512) {
      ASSERT_NE(table.Insert(flow, key, from_lo, Direction::kOutbound, 1, 0, 1), nullptr);
      model[port] = nullptr;
    }
    ASSERT_EQ(table.size(), model.size());
  }
}

TEST(ConntrackTest, ExportAndImportRoundTrip) {
  Conntrack source(SmallConfig(64));
  Key ssh = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  Key dns = Key::Udp("2001:db8::5", 5353, "2001:db8::53", 53);
  Open(source, ssh, 0);
  ASSERT_TRUE(TrackPacket(source, ssh.Reply(kTcpSyn | kTcpAck), 0));
  Open(source, dns, 0);
  Open(source, Key::Udp("10.9.9.9", 1, "10.0.0.5", 2), 0, /*vnic=*/2);  // another vnic's flow
  std::string bytes = source.Export(1, 10 * kSecond);

  Conntrack destination(SmallConfig(64));
  ASSERT_TRUE(destination.Import(bytes, /*vnic=*/9, 0).ok());
  EXPECT_EQ(destination.size(), 2u);
  ConntrackEntry* entry = Lookup(destination, ssh, 0, 9);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, FlowState::kTcpSynReceived);
  EXPECT_EQ(entry->generation, 0u);         // the policy in force re-checks it on its next packet
  EXPECT_EQ(entry->expires, 50 * kSecond);  // 60 s opening timeout, 10 s already spent
  ASSERT_NE(Lookup(destination, dns, 0, 9), nullptr);
}

TEST(ConntrackTest, ImportValidatesEverythingBeforeInsertingAnything) {
  Conntrack source(SmallConfig(64));
  Open(source, Key::Udp("10.0.0.5", 1, "8.8.8.8", 53), 0);
  Open(source, Key::Tcp("10.0.0.5", 2, "8.8.8.8", 80, kTcpSyn), 0);
  std::string good = source.Export(1, 0);
  Conntrack destination(SmallConfig(64));

  auto expect_refused = [&](std::string bytes, const char* why) {
    Status status = destination.Import(bytes, 1, 0);
    EXPECT_FALSE(status.ok()) << why;
    EXPECT_EQ(destination.size(), 0u) << why;
  };
  expect_refused("", "empty");
  expect_refused("XXXX" + good.substr(4), "magic");
  std::string version = good;
  version[5] = 2;
  expect_refused(version, "version");
  expect_refused(good.substr(0, good.size() - 1), "truncated");
  expect_refused(good + "x", "trailing bytes");
  std::string family = good;
  family[12 + 44] = 5;  // the second record's family
  expect_refused(family, "family");
  std::string state = good;
  state[12 + 2] = 99;
  expect_refused(state, "state");
  std::string v4_garbage = good;
  v4_garbage[12 + 4 + 10] = 1;  // past the first four bytes of an IPv4 address
  expect_refused(v4_garbage, "ipv4 padding");
  std::string order = good;
  std::swap(order[12 + 4], order[12 + 20]);  // endpoints no longer in canonical order
  expect_refused(order, "order");
  EXPECT_TRUE(destination.Import(good, 1, 0).ok());
  EXPECT_EQ(destination.size(), 2u);
}

ConntrackConfig QuotaConfig(uint32_t max_entries, uint32_t per_vnic) {
  ConntrackConfig config = SmallConfig(max_entries);
  config.max_entries_per_vnic = per_vnic;
  return config;
}

// Opens a UDP flow of vnic `vnic` charged to `owner`.
ConntrackEntry* OpenAs(Conntrack& table, uint16_t port, uint32_t vnic, uint32_t owner,
                       uint64_t now) {
  Key key = Key::Udp("10.0.0.5", port, "10.0.0.9", 53);
  bool from_lo;
  FlowKey flow = MakeFlowKey(key, vnic, &from_lo);
  return table.Insert(flow, key, from_lo, Direction::kInbound, 1, now, owner);
}

TEST(ConntrackQuotaTest, EachOwnerIsLimitedAloneAndTheOthersStillOpen) {
  Conntrack table(QuotaConfig(64, 4));
  EXPECT_EQ(table.quota(), 4u);
  for (uint16_t port = 1; port <= 4; ++port) {
    ASSERT_NE(OpenAs(table, port, /*vnic=*/7, /*owner=*/7, 0), nullptr);
  }
  EXPECT_EQ(OpenAs(table, 5, 7, 7, 0), nullptr);
  // Flows in another vnic's part of the table count against the owner that opened them (a local
  // VM's flows to another local VM): flooding the receiver does not escape the quota.
  EXPECT_EQ(OpenAs(table, 6, /*vnic=*/8, /*owner=*/7, 0), nullptr);
  EXPECT_EQ(table.counters().quota_refused.load(), 2u);
  EXPECT_EQ(table.counters().full.load(), 0u);
  EXPECT_EQ(table.OwnerEntries(7), 4u);
  // Another owner, even into the same vnic's flows, is unaffected.
  ASSERT_NE(OpenAs(table, 6, /*vnic=*/7, /*owner=*/8, 0), nullptr);
  ASSERT_NE(OpenAs(table, 7, /*vnic=*/8, /*owner=*/8, 0), nullptr);
  EXPECT_EQ(table.OwnerEntries(8), 2u);
  EXPECT_EQ(table.owners(), 2u);
  // An erased flow gives its owner room again.
  bool from_lo;
  Key first = Key::Udp("10.0.0.5", 1, "10.0.0.9", 53);
  ConntrackEntry* entry = table.Find(MakeFlowKey(first, 7, &from_lo), 0);
  ASSERT_NE(entry, nullptr);
  table.Erase(entry);
  EXPECT_EQ(table.OwnerEntries(7), 3u);
  ASSERT_NE(OpenAs(table, 5, 7, 7, 0), nullptr);
  ASSERT_TRUE(table.CheckOwnerAccounting().ok()) << table.CheckOwnerAccounting().error();
}

TEST(ConntrackQuotaTest, AnOwnerAtItsQuotaMakesRoomFromItsExpiredFlows) {
  Conntrack table(QuotaConfig(64, 3));
  for (uint16_t port = 1; port <= 3; ++port) ASSERT_NE(OpenAs(table, port, 1, 1, 0), nullptr);
  EXPECT_EQ(OpenAs(table, 9, 1, 1, 29 * kSecond), nullptr);
  // Unreplied UDP lives 30 s: past it, a refused insert reclaims the next 64 slots, so within a
  // pass over the table (128 slots here; where the flows sit depends on the table's random hash
  // key) an insert succeeds.
  ConntrackEntry* opened = nullptr;
  for (int attempt = 0; attempt < 4 && !opened; ++attempt) {
    opened = OpenAs(table, 9, 1, 1, 31 * kSecond);
  }
  EXPECT_NE(opened, nullptr);
  EXPECT_LE(table.OwnerEntries(1), 3u);  // the reclaim pass is incremental: some may remain
  for (int step = 0; step < 100; ++step) table.ReclaimExpired(31 * kSecond, 8);
  EXPECT_EQ(table.OwnerEntries(1), 1u);
  ASSERT_TRUE(table.CheckOwnerAccounting().ok()) << table.CheckOwnerAccounting().error();
}

TEST(ConntrackQuotaTest, AnOwnersLastEntryFreesItsBucket) {
  Conntrack table(QuotaConfig(64, 8));
  for (uint32_t owner = 100; owner < 110; ++owner) {
    ASSERT_NE(OpenAs(table, static_cast<uint16_t>(owner), 1, owner, 0), nullptr);
  }
  EXPECT_EQ(table.owners(), 10u);
  for (int step = 0; step < 1000 && table.size() > 0; ++step) table.ReclaimExpired(31 * kSecond, 8);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.owners(), 0u);
  for (uint32_t owner = 100; owner < 110; ++owner) EXPECT_EQ(table.OwnerEntries(owner), 0u);
  ASSERT_TRUE(table.CheckOwnerAccounting().ok()) << table.CheckOwnerAccounting().error();
}

// Inserts, erases, expiry on lookup, overwrites of expired entries on insert and incremental
// reclaim, with entries moving under backward-shift deletion: the owners' counts must always
// match a recount of the whole table, never exceed the quota, and equal the live flows of each
// owner once everything expired is reclaimed.
void RandomOwnerAccounting(uint32_t max_entries, uint32_t quota, uint32_t owner_count,
                           uint32_t seed) {
  ConntrackConfig config = QuotaConfig(max_entries, quota);
  config.udp_unreplied_s = 1;
  Conntrack table(config);
  std::mt19937 rng(seed);
  struct Live {
    uint32_t owner;
    uint64_t expires;
  };
  std::map<std::pair<uint16_t, uint32_t>, Live> model;              // (port, vnic) -> owner, expiry
  auto owner_id = [](uint32_t n) { return n * 2654435761u + 17; };  // far apart, not sequential
  uint64_t now = 1;
  size_t refused_by_quota = 0;
  for (int step = 0; step < 30000; ++step) {
    now += rng() % 5;
    uint16_t port = static_cast<uint16_t>(rng() % (max_entries * 3));
    uint32_t vnic = rng() % 3;
    uint32_t owner = owner_id(rng() % owner_count);
    Key key = Key::Udp("10.0.0.5", port, "10.0.0.9", 53);
    bool from_lo;
    FlowKey flow = MakeFlowKey(key, vnic, &from_lo);
    auto it = model.find({port, vnic});
    bool live = it != model.end() && it->second.expires > now;
    ConntrackEntry* found = table.Find(flow, now);
    ASSERT_EQ(found != nullptr, live) << "step " << step;
    if (found && rng() % 2 == 0) {
      table.Erase(found);
      model.erase(it);
    } else if (!found) {
      uint32_t held = table.OwnerEntries(owner);
      size_t size = table.size();
      ConntrackEntry* entry = table.Insert(flow, key, from_lo, Direction::kOutbound, 1, now, owner);
      if (entry) {
        model[{port, vnic}] = {owner, now + kSecond};
      } else {
        // Refused only at the quota or a full table (after the insert's own reclaim pass).
        ASSERT_TRUE(held >= quota || size >= max_entries) << "step " << step;
        if (held >= quota) ++refused_by_quota;
      }
    }
    if (step % 3 == 0) table.ReclaimExpired(now, 4);
    Status check = table.CheckOwnerAccounting();
    ASSERT_TRUE(check.ok()) << "step " << step << ": " << check.error();
    for (uint32_t n = 0; n < owner_count; ++n) ASSERT_LE(table.OwnerEntries(owner_id(n)), quota);
    if (step % 1000 == 999) {
      // Reclaim everything expired: the counts are then exactly the live flows per owner.
      for (int pass = 0; pass < 3; ++pass) table.ReclaimExpired(now, max_entries * 4);
      std::map<uint32_t, uint32_t> live_per_owner;
      for (auto& [flow_id, entry] : model) {
        if (entry.expires > now) ++live_per_owner[entry.owner];
      }
      size_t owners = 0;
      for (uint32_t n = 0; n < owner_count; ++n) {
        uint32_t expected = live_per_owner[owner_id(n)];
        ASSERT_EQ(table.OwnerEntries(owner_id(n)), expected) << "step " << step;
        owners += expected > 0;
      }
      ASSERT_EQ(table.owners(), owners);
    }
  }
  EXPECT_GT(refused_by_quota, 0u);  // the quota was reached along the way
  for (int pass = 0; pass < 3; ++pass) table.ReclaimExpired(now + 10 * kSecond, max_entries * 4);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.owners(), 0u);
  ASSERT_TRUE(table.CheckOwnerAccounting().ok());
}

TEST(ConntrackQuotaTest, CountsFollowEntriesThroughEveryRemovalPath) {
  RandomOwnerAccounting(/*max_entries=*/256, /*quota=*/30, /*owners=*/9, /*seed=*/1);
}

TEST(ConntrackQuotaTest, CountsHoldWithMoreOwnersThanBuckets) {
  // 16 buckets (one per entry) for 40 owners: buckets are freed and reused, and the owner index
  // (32 slots) shifts back on every removal.
  RandomOwnerAccounting(/*max_entries=*/16, /*quota=*/3, /*owners=*/40, /*seed=*/2);
}

TEST(ConntrackQuotaTest, AnImportOverTheQuotaInsertsNothing) {
  Conntrack source(SmallConfig(64));
  for (uint16_t port = 1; port <= 5; ++port) ASSERT_NE(OpenAs(source, port, 1, 1, 0), nullptr);
  std::string five = source.Export(1, 0);

  Conntrack destination(QuotaConfig(64, 6));
  ASSERT_NE(OpenAs(destination, 100, /*vnic=*/9, /*owner=*/9, 0), nullptr);
  ASSERT_NE(OpenAs(destination, 101, /*vnic=*/9, /*owner=*/9, 0), nullptr);
  Status status = destination.Import(five, /*vnic=*/9, 0);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().find("quota of 6"), std::string::npos) << status.error();
  EXPECT_EQ(destination.size(), 2u);
  EXPECT_EQ(destination.OwnerEntries(9), 2u);
  // Into another vnic, with room: charged to that vnic.
  ASSERT_TRUE(destination.Import(five, /*vnic=*/10, 0).ok());
  EXPECT_EQ(destination.OwnerEntries(10), 5u);
  // Again: the flows are there already, nothing new is charged.
  ASSERT_TRUE(destination.Import(five, /*vnic=*/10, 0).ok());
  EXPECT_EQ(destination.OwnerEntries(10), 5u);
  EXPECT_EQ(destination.size(), 7u);
  ASSERT_TRUE(destination.CheckOwnerAccounting().ok());
}

// Found by tests/fuzz/fuzz_conntrack_import: a table that filled up midway kept the flows imported
// before (and the states overwritten) although the import was refused.
TEST(ConntrackTest, ImportThatDoesNotFitChangesNothing) {
  Conntrack source(SmallConfig(64));
  Key kept = Key::Tcp("10.0.0.5", 1, "8.8.8.8", 80, kTcpSyn);
  Open(source, kept, 0);
  ASSERT_TRUE(TrackPacket(source, kept.Reply(kTcpSyn | kTcpAck), 0));
  for (uint16_t port = 2; port < 5; ++port)
    Open(source, Key::Udp("10.0.0.5", port, "8.8.8.8", 53), 0);
  std::string four_flows = source.Export(1, 0);

  Conntrack destination(SmallConfig(3));
  Open(destination, kept, 0);  // in the export too, in another state
  Open(destination, Key::Udp("10.0.0.6", 7, "8.8.8.8", 53), 0);
  std::string before = destination.Export(1, 0);
  Status status = destination.Import(four_flows, 1, 0);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(destination.size(), 2u);
  ASSERT_NE(Lookup(destination, kept, 0), nullptr);
  EXPECT_EQ(Lookup(destination, kept, 0)->state, FlowState::kTcpSynSent) << "overwritten state";
  EXPECT_EQ(destination.Export(1, 0), before);
}

}  // namespace
}  // namespace butterfly
