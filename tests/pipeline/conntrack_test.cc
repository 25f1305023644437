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
  return table.Insert(flow, key, from_lo, Direction::kInbound, 7, now);
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
  // A reply that is not a SYN-ACK does not belong to a flow still in its handshake.
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpAck), 1));
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

TEST(ConntrackTest, ResetClosesAndTheResponderFallsSilent) {
  Conntrack table(SmallConfig(16));
  Key syn = Key::Tcp("192.0.2.1", 40000, "10.0.0.5", 22, kTcpSyn);
  ConntrackEntry* entry = Open(table, syn, 0);
  EXPECT_TRUE(TrackPacket(table, syn.Reply(kTcpRst | kTcpAck), 1));
  EXPECT_EQ(entry->state, FlowState::kTcpClosed);
  EXPECT_FALSE(TrackPacket(table, syn.Reply(kTcpAck), 2));
  EXPECT_EQ(entry->expires, 1 + 10 * kSecond);
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
      ASSERT_NE(table.Insert(flow, key, from_lo, Direction::kOutbound, 1, 0), nullptr);
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
