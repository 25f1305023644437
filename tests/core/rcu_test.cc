#include "core/rcu.h"

#include <gtest/gtest.h>

namespace butterfly {
namespace {

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

}  // namespace
}  // namespace butterfly
