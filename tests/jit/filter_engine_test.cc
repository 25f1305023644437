#include "jit/filter_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "support/packet_builder.h"
#include "support/policy_builder.h"

namespace butterfly {
namespace {

using namespace std::chrono_literals;
using testing::Key;
using testing::PolicyBuilder;

std::shared_ptr<const VnicPolicy> SshFrom(const std::string& cidr, const std::string& vnic = "vm") {
  PolicyBuilder builder(vnic);
  builder.VnicIp("10.0.0.5").Inbound(kProtoTcp, 22, 22, {cidr.c_str()});
  return builder.Build();
}

class FilterEngineTest : public ::testing::Test {
 protected:
  RcuDomain rcu_{4};
};

TEST_F(FilterEngineTest, AVnicWithoutPolicyDropsEverything) {
  FilterEngine engine(&rcu_, {});
  FilterSlot* slot = engine.SlotOf("vm");
  ASSERT_NE(slot->Current(), nullptr);
  EXPECT_EQ(slot->Current()->kind(), ProgramKind::kDropAll);
}

TEST_F(FilterEngineTest, EnforcesAtOnceThenSwapsInTheJit) {
  FilterEngine engine(&rcu_, {});
  FilterSlot* slot = engine.SlotOf("vm");
  auto policy = SshFrom("192.0.2.0/24");
  ASSERT_TRUE(engine.SetPolicy(policy).ok());
  // Whichever implementation runs right now, it enforces the new policy.
  const FilterProgram* now = slot->Current();
  EXPECT_EQ(now->kind(), ProgramKind::kRules);
  EXPECT_EQ(now->generation(), policy->generation);
  ASSERT_TRUE(engine.WaitForCompiles(10s));
  const FilterProgram* compiled = slot->Current();
  EXPECT_TRUE(compiled->is_jit());
  EXPECT_EQ(compiled->generation(), policy->generation);
  EXPECT_TRUE(compiled->RulesAllow(Direction::kInbound, Key::Tcp("192.0.2.9", 1, "10.0.0.5", 22)));
  EXPECT_FALSE(compiled->RulesAllow(Direction::kInbound, Key::Tcp("192.0.3.9", 1, "10.0.0.5", 22)));
  EXPECT_EQ(engine.SlotOf("vm"), slot);  // the slot is stable across changes
  auto counters = engine.counters();
  EXPECT_EQ(counters.compiles, 1u);
  EXPECT_GT(counters.compile_ms_max, 0.0);
}

TEST_F(FilterEngineTest, ABurstOfChangesCoalescesAndTheNewestWins) {
  FilterEngine engine(&rcu_, {});
  std::shared_ptr<const VnicPolicy> last;
  for (int i = 0; i < 50; ++i) {
    last = SshFrom("192.0." + std::to_string(i) + ".0/24");
    ASSERT_TRUE(engine.SetPolicy(last).ok());
  }
  ASSERT_TRUE(engine.WaitForCompiles(30s));
  const FilterProgram* program = engine.SlotOf("vm")->Current();
  EXPECT_TRUE(program->is_jit());
  EXPECT_EQ(program->generation(), last->generation);
  auto counters = engine.counters();
  EXPECT_EQ(counters.policies, 50u);
  EXPECT_LT(counters.compiles + counters.stale_compiles, 50u);
  EXPECT_GE(counters.compiles, 1u);
}

TEST_F(FilterEngineTest, WithoutJitTheInterpreterEnforcesEverything) {
  FilterEngine engine(&rcu_, {.jit = false});
  ASSERT_TRUE(engine.SetPolicy(SshFrom("192.0.2.0/24")).ok());
  ASSERT_TRUE(engine.WaitForCompiles(5s));
  const FilterProgram* program = engine.SlotOf("vm")->Current();
  EXPECT_FALSE(program->is_jit());
  EXPECT_TRUE(program->RulesAllow(Direction::kInbound, Key::Tcp("192.0.2.9", 1, "10.0.0.5", 22)));
  EXPECT_EQ(engine.counters().interpreted, 1u);
  EXPECT_EQ(engine.counters().compiles, 0u);
}

TEST_F(FilterEngineTest, ReplacedFiltersAreFreedWithoutAnyoneAsking) {
  FilterEngine engine(&rcu_, {.jit = false, .reclaim_period = 1ms});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(engine.SetPolicy(SshFrom("192.0.2.0/24")).ok());
  // No worker is registered: the background thread frees the nine replaced filters by itself.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (rcu_.pending() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(rcu_.pending(), 0u);
}

TEST_F(FilterEngineTest, BypassSkipsFiltering) {
  FilterEngine engine(&rcu_, {});
  PolicyBuilder builder("vm");
  builder.Bypass();
  ASSERT_TRUE(engine.SetPolicy(builder.Build()).ok());
  EXPECT_EQ(engine.SlotOf("vm")->Current()->kind(), ProgramKind::kBypass);
}

TEST_F(FilterEngineTest, APolicyTheIrCannotExpressIsRefusedAndFailsClosed) {
  FilterEngine engine(&rcu_, {});
  ASSERT_TRUE(engine.SetPolicy(SshFrom("192.0.2.0/24")).ok());
  PolicyBuilder builder("vm");
  builder.Inbound(kProtoIcmp, 10, 20, {"10.0.0.0/8"});
  Status status = engine.SetPolicy(builder.Build());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().find("a port range only applies to tcp and udp"), std::string::npos);
  ASSERT_TRUE(engine.WaitForCompiles(10s));
  EXPECT_EQ(engine.SlotOf("vm")->Current()->kind(), ProgramKind::kDropAll);
}

TEST_F(FilterEngineTest, RemovedVnicsAreFreedAfterAGracePeriod) {
  FilterEngine engine(&rcu_, {});
  rcu_.Register(0);
  rcu_.Online(0);
  FilterSlot* slot = engine.SlotOf("vm");
  uint32_t index = slot->vnic_index();
  ASSERT_TRUE(engine.SetPolicy(SshFrom("192.0.2.0/24")).ok());
  ASSERT_TRUE(engine.WaitForCompiles(10s));
  engine.RemoveVnic("vm");
  // Worker 0 has not reported: the slot must still be readable.
  rcu_.Poll();
  EXPECT_EQ(slot->vnic_index(), index);
  EXPECT_NE(slot->Current(), nullptr);
  rcu_.Quiescent(0);
  rcu_.Offline(0);
  rcu_.Synchronize();
  EXPECT_EQ(rcu_.pending(), 0u);
  EXPECT_NE(engine.SlotOf("vm")->vnic_index(), index);  // a new vnic never reuses the index
  rcu_.Unregister(0);
}

// Readers evaluate through the slot while the control side swaps filters thousands of times; a
// reader must always see a complete filter that decides as its generation says.
TEST(RcuTest, ReadersSeeConsistentFiltersWhileTheControlSideSwaps) {
  constexpr int kReaders = 3;
  constexpr int kSwaps = 3000;
  RcuDomain rcu(kReaders);
  FilterEngine engine(&rcu, {.reclaim_period = 1ms});
  FilterSlot* slot = engine.SlotOf("vm");
  // Even generations allow ssh, odd ones http: a reader checks a program against its generation.
  std::vector<std::shared_ptr<const VnicPolicy>> policies;
  std::map<uint64_t, uint16_t> port_of_generation;
  for (int i = 0; i < kSwaps; ++i) {
    PolicyBuilder builder("vm");
    uint16_t port = i % 2 ? 80 : 22;
    builder.VnicIp("10.0.0.5").Inbound(kProtoTcp, port, port, {"192.0.2.0/24"});
    policies.push_back(builder.Build());
    port_of_generation[policies.back()->generation] = port;
  }
  ASSERT_TRUE(engine.SetPolicy(policies[0]).ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> evaluations{0}, jit_evaluations{0}, mismatches{0};
  std::vector<std::thread> readers;
  for (int id = 0; id < kReaders; ++id) {
    rcu.Register(id);
    readers.emplace_back([&, id] {
      const PacketKey ssh = Key::Tcp("192.0.2.1", 999, "10.0.0.5", 22);
      const PacketKey http = Key::Tcp("192.0.2.1", 999, "10.0.0.5", 80);
      rcu.Online(id);
      uint64_t local = 0, local_jit = 0, bad = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 16; ++i) {
          const FilterProgram* program = slot->Current();
          if (program->kind() != ProgramKind::kRules) continue;
          auto it = port_of_generation.find(program->generation());
          uint16_t port = it == port_of_generation.end() ? 0 : it->second;
          bool allows_ssh = program->RulesAllow(Direction::kInbound, ssh);
          bool allows_http = program->RulesAllow(Direction::kInbound, http);
          if (allows_ssh != (port == 22) || allows_http != (port == 80)) ++bad;
          ++local;
          if (program->is_jit()) ++local_jit;
        }
        rcu.Quiescent(id);
        // Sometimes sleep as an idle worker would: offline first.
        if (local % 4096 == 0) {
          rcu.Offline(id);
          std::this_thread::sleep_for(50us);
          rcu.Online(id);
        }
      }
      rcu.Offline(id);
      evaluations += local;
      jit_evaluations += local_jit;
      mismatches += bad;
    });
  }
  for (int i = 1; i < kSwaps; ++i) {
    ASSERT_TRUE(engine.SetPolicy(policies[i]).ok());
    // Let a compile land now and then, so readers also cross JIT-to-JIT and JIT-to-interpreter
    // swaps (a compile freed while a reader may still run it is what ASan would catch).
    if (i % 50 == 0) {
      ASSERT_TRUE(engine.WaitForCompiles(30s));
    }
  }
  ASSERT_TRUE(engine.WaitForCompiles(60s));
  std::this_thread::sleep_for(20ms);
  stop = true;
  for (auto& reader : readers) reader.join();
  for (int id = 0; id < kReaders; ++id) rcu.Unregister(id);
  rcu.Synchronize();

  auto counters = engine.counters();
  std::printf("%llu evaluations (%llu by JIT code), %llu compiles, %llu stale\n",
              static_cast<unsigned long long>(evaluations.load()),
              static_cast<unsigned long long>(jit_evaluations.load()),
              static_cast<unsigned long long>(counters.compiles),
              static_cast<unsigned long long>(counters.stale_compiles));
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_GT(evaluations.load(), 0u);
  EXPECT_GE(counters.compiles, kSwaps / 50u);
  EXPECT_EQ(slot->Current()->generation(), policies.back()->generation);
  EXPECT_TRUE(slot->Current()->is_jit());
}

}  // namespace
}  // namespace butterfly
