#include "core/rcu.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "jit/filter_engine.h"
#include "support/packet_builder.h"
#include "support/policy_builder.h"

namespace butterfly {
namespace {

using namespace std::chrono_literals;
using testing::Key;
using testing::PolicyBuilder;

TEST(RcuTest, DeferredWorkWaitsForEveryOnlineWorker) {
  RcuDomain rcu(4);
  rcu.Register(0);
  rcu.Register(1);
  rcu.Online(0);
  rcu.Online(1);
  bool freed = false;
  rcu.Defer([&freed] { freed = true; });
  EXPECT_EQ(rcu.Poll(), 0u);
  rcu.Quiescent(0);
  EXPECT_EQ(rcu.Poll(), 0u);
  EXPECT_FALSE(freed);
  rcu.Quiescent(1);
  EXPECT_EQ(rcu.Poll(), 1u);
  EXPECT_TRUE(freed);
  rcu.Offline(0);
  rcu.Offline(1);
  rcu.Unregister(0);
  rcu.Unregister(1);
}

TEST(RcuTest, AnOfflineWorkerDoesNotHoldUpReclaim) {
  RcuDomain rcu(2);
  rcu.Register(0);
  rcu.Online(0);
  rcu.Offline(0);  // asleep
  int runs = 0;
  rcu.Defer([&runs] { ++runs; });
  EXPECT_EQ(rcu.Poll(), 1u);
  EXPECT_EQ(runs, 1);
  rcu.Unregister(0);
}

TEST(RcuTest, CallbacksMayDeferMore) {
  RcuDomain rcu(1);
  int runs = 0;
  rcu.Defer([&] {
    ++runs;
    rcu.Defer([&runs] { ++runs; });
  });
  rcu.Synchronize();
  EXPECT_EQ(runs, 2);
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
