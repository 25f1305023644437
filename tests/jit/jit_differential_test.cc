// The JIT against the interpreter on random policies and random and adversarial packets.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "jit/interpreter.h"
#include "jit/jit_compiler.h"
#include "support/packet_builder.h"
#include "support/policy_builder.h"
#include "support/random_policy.h"

namespace butterfly {
namespace {

using testing::Key;
using testing::PolicyBuilder;

uint64_t SeedFromEnvironment() {
  const char* text = std::getenv("BUTTERFLY_SEED");
  uint64_t seed = text ? std::strtoull(text, nullptr, 0) : std::random_device{}();
  std::printf("seed %llu (rerun with BUTTERFLY_SEED=%llu to replay)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

class JitDifferentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto compiler = JitCompiler::Create({.optimize = true});
    ASSERT_TRUE(compiler.ok()) << compiler.error();
    compiler_ = std::move(*compiler);
  }

  // Compiles `policy` and checks every packet both ways; returns the number of decisions.
  size_t Compare(const VnicPolicy& policy, const std::vector<PacketKey>& packets,
                 const std::string& context) {
    auto ir = BuildFilterIr(policy);
    EXPECT_TRUE(ir.ok()) << ir.error();
    if (!ir.ok()) return 0;
    auto compiled = compiler_->Compile(**ir);
    EXPECT_TRUE(compiled.ok()) << compiled.error();
    if (!compiled.ok()) return 0;
    size_t decisions = 0;
    for (Direction direction : {Direction::kInbound, Direction::kOutbound}) {
      JitMatchFn fn = (*compiled)->match(direction);
      for (size_t i = 0; i < packets.size(); ++i) {
        bool expected = InterpretRules(**ir, direction, packets[i]);
        bool got = fn(&packets[i]) != 0;
        if (expected != got) {
          ADD_FAILURE() << context << ": packet " << i << " direction "
                        << static_cast<int>(direction) << ": interpreter " << expected << ", jit "
                        << got << " (" << policy.rules.size() << " rules)";
          return decisions;
        }
        ++decisions;
      }
    }
    return decisions;
  }

  std::unique_ptr<JitCompiler> compiler_;
};

TEST_F(JitDifferentialTest, AgreesWithTheInterpreterOnAMillionDecisions) {
  uint64_t seed = SeedFromEnvironment();
  testing::RandomPolicyGenerator generator(seed);
  auto started = std::chrono::steady_clock::now();
  // Sizes that take every code shape: all inline, inline addresses with table classes, tables.
  const int kSizes[] = {0, 1, 2, 3, 5, 8, 12, 20, 40, 100, 300, 1000, 3000};
  size_t decisions = 0;
  int round = 0;
  while (decisions < 1'000'000 || round < 150) {
    int size = kSizes[round % std::size(kSizes)];
    auto policy = generator.Policy(size);
    std::vector<PacketKey> packets;
    for (int i = 0; i < 2000; ++i) packets.push_back(generator.Packet(*policy));
    decisions += Compare(*policy, packets,
                         "seed " + std::to_string(seed) + " round " + std::to_string(round));
    if (HasFailure()) return;
    ++round;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%zu decisions on %d policies in %.1f s, all agree\n", decisions, round, seconds);
  EXPECT_GE(decisions, 1'000'000u);
}

TEST_F(JitDifferentialTest, ManyWholeProtocolsUseTheBitmapPath) {
  PolicyBuilder builder;
  for (int proto : {1, 2, 47, 50, 51, 132, 255, 0}) {
    builder.Inbound(proto, 0, 65535, {"10.0.0.0/8", "2001:db8::/32"});
  }
  builder.Inbound(kProtoTcp, 0, 65535, {"10.0.0.0/8"}).Outbound(kProtoUdp, 1, 1, {"10.0.0.0/8"});
  std::vector<PacketKey> packets;
  for (int proto = 0; proto < 256; ++proto) {
    for (const char* src : {"10.2.3.4", "11.0.0.1", "2001:db8::5", "2001:db9::5"}) {
      for (uint16_t port : {0, 1, 2}) {
        Key key = Key::Proto(src, testing::FamilyOf(src) == 4 ? "10.9.9.9" : "2001:db8::9",
                             static_cast<uint8_t>(proto));
        key.key.dst_port = port;
        packets.push_back(key);
      }
    }
  }
  EXPECT_EQ(Compare(*builder.Build(), packets, "bitmap"), packets.size() * 2);
}

TEST_F(JitDifferentialTest, AddressesAtTheEdgesOfTheSpace) {
  PolicyBuilder builder;
  builder.Inbound(kAnyProtocol, 0, 65535, {"255.255.255.255/32", "0.0.0.0/32", "128.0.0.0/1"})
      .Inbound(kAnyProtocol, 0, 65535,
               {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::/128", "8000::/1"})
      .Inbound(kProtoTcp, 65535, 65535, {"0.0.0.0/0", "::/0"});
  std::vector<PacketKey> packets;
  for (const char* src : {"255.255.255.255", "0.0.0.0", "127.255.255.255", "128.0.0.0", "1.2.3.4",
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                          "::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "8000::", "::1"}) {
    const char* dst = testing::FamilyOf(src) == 4 ? "10.0.0.1" : "2001:db8::1";
    for (uint16_t port : {0, 1, 65534, 65535}) packets.push_back(Key::Tcp(src, 1, dst, port));
  }
  EXPECT_EQ(Compare(*builder.Build(), packets, "edges"), packets.size() * 2);
}

TEST_F(JitDifferentialTest, UnoptimizedCodeAgreesToo) {
  auto compiler = JitCompiler::Create({.optimize = false});
  ASSERT_TRUE(compiler.ok());
  compiler_ = std::move(*compiler);
  testing::RandomPolicyGenerator generator(SeedFromEnvironment() + 1);
  for (int round = 0; round < 20; ++round) {
    auto policy = generator.Policy(round * 7);
    std::vector<PacketKey> packets;
    for (int i = 0; i < 1000; ++i) packets.push_back(generator.Packet(*policy));
    Compare(*policy, packets, "unoptimized round " + std::to_string(round));
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace butterfly
