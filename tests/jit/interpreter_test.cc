#include "jit/interpreter.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "support/packet_builder.h"
#include "support/policy_builder.h"
#include "support/random_policy.h"

namespace butterfly {
namespace {

using testing::Key;
using testing::PolicyBuilder;

bool Allows(const VnicPolicy& policy, Direction direction, const PacketKey& key) {
  auto ir = BuildFilterIr(policy);
  EXPECT_TRUE(ir.ok());
  return InterpretRules(**ir, direction, key);
}

// The semantics read straight off VnicPolicy, with none of the IR's normalization: the oracle
// that keeps the IR honest.
bool NaiveAllows(const VnicPolicy& policy, Direction direction, const PacketKey& key) {
  if (direction == Direction::kOutbound && !policy.restrict_outbound) return true;
  IpAddress remote;
  remote.family = key.family == 4 ? IpFamily::kV4 : IpFamily::kV6;
  remote.bytes = direction == Direction::kInbound ? key.src : key.dst;
  for (const PolicyRule& rule : policy.rules) {
    if (rule.direction != direction) continue;
    if (rule.protocol != kAnyProtocol && rule.protocol != key.proto) continue;
    bool ports = rule.protocol == kProtoTcp || rule.protocol == kProtoUdp;
    if (ports && (key.dst_port < rule.port_first || key.dst_port > rule.port_last)) continue;
    for (const Cidr& cidr : rule.remotes) {
      if (cidr.Contains(remote)) return true;
    }
  }
  return false;
}

TEST(InterpreterTest, InboundIsDeniedUnlessARuleAllowsIt) {
  PolicyBuilder builder;
  builder.Inbound(kProtoTcp, 22, 22, {"10.0.0.0/8"});
  auto policy = builder.Build();
  EXPECT_TRUE(Allows(*policy, Direction::kInbound, Key::Tcp("10.1.1.1", 5000, "192.0.2.1", 22)));
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Tcp("10.1.1.1", 5000, "192.0.2.1", 23)));
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Tcp("11.1.1.1", 5000, "192.0.2.1", 22)));
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Udp("10.1.1.1", 5000, "192.0.2.1", 22)));
  // The remote address of an inbound packet is its source, never its destination.
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Tcp("192.0.2.1", 5000, "10.1.1.1", 22)));
}

TEST(InterpreterTest, OutboundIsOpenUntilAGroupHasAnOutboundRule) {
  PolicyBuilder open;
  open.Inbound(kProtoTcp, 22, 22, {"10.0.0.0/8"});
  EXPECT_TRUE(Allows(*open.Build(), Direction::kOutbound, Key::Udp("192.0.2.1", 1, "8.8.8.8", 53)));
  PolicyBuilder restricted;
  restricted.Outbound(kProtoUdp, 53, 53, {"8.8.8.8/32"});
  auto policy = restricted.Build();
  EXPECT_TRUE(Allows(*policy, Direction::kOutbound, Key::Udp("192.0.2.1", 1, "8.8.8.8", 53)));
  EXPECT_FALSE(Allows(*policy, Direction::kOutbound, Key::Udp("192.0.2.1", 1, "8.8.4.4", 53)));
  EXPECT_FALSE(Allows(*policy, Direction::kOutbound, Key::Tcp("192.0.2.1", 1, "8.8.8.8", 53)));
}

TEST(InterpreterTest, ZeroPrefixesMatchTheirOwnFamilyOnly) {
  PolicyBuilder v4_only;
  v4_only.Inbound(kAnyProtocol, 0, 65535, {"0.0.0.0/0"});
  auto policy = v4_only.Build();
  EXPECT_TRUE(Allows(*policy, Direction::kInbound, Key::Udp("203.0.113.9", 1, "10.0.0.1", 2)));
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Udp("2001:db8::1", 1, "2001:db8::2", 2)));
  PolicyBuilder v6_only;
  v6_only.Inbound(kAnyProtocol, 0, 65535, {"::/0"});
  policy = v6_only.Build();
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Udp("203.0.113.9", 1, "10.0.0.1", 2)));
  EXPECT_TRUE(Allows(*policy, Direction::kInbound, Key::Udp("2001:db8::1", 1, "2001:db8::2", 2)));
}

TEST(InterpreterTest, ProtocolsWithoutPortsIgnoreThePortFields) {
  PolicyBuilder builder;
  builder.Inbound(kProtoIcmp, 0, 65535, {"10.0.0.0/8"}).Inbound(47, 0, 65535, {"10.0.0.0/8"});
  auto policy = builder.Build();
  EXPECT_TRUE(Allows(*policy, Direction::kInbound, Key::Icmp("10.0.0.9", "10.1.0.1", 8)));
  EXPECT_TRUE(Allows(*policy, Direction::kInbound, Key::Proto("10.0.0.9", "10.1.0.1", 47)));
  EXPECT_FALSE(Allows(*policy, Direction::kInbound, Key::Proto("10.0.0.9", "10.1.0.1", 50)));
}

TEST(InterpreterTest, AgreesWithTheNaiveReadingOfThePolicy) {
  uint64_t seed = std::getenv("BUTTERFLY_SEED")
                      ? std::strtoull(std::getenv("BUTTERFLY_SEED"), nullptr, 0)
                      : std::random_device{}();
  std::printf("InterpreterTest seed %llu (BUTTERFLY_SEED=%llu replays it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  testing::RandomPolicyGenerator generator(seed);
  for (int round = 0; round < 200; ++round) {
    auto policy = generator.Policy(1 + round % 40);
    auto ir = BuildFilterIr(*policy);
    ASSERT_TRUE(ir.ok()) << ir.error();
    for (int i = 0; i < 500; ++i) {
      PacketKey key = generator.Packet(*policy);
      for (Direction direction : {Direction::kInbound, Direction::kOutbound}) {
        ASSERT_EQ(InterpretRules(**ir, direction, key), NaiveAllows(*policy, direction, key))
            << "seed " << seed << " round " << round << " packet " << i;
      }
    }
  }
}

}  // namespace
}  // namespace butterfly
