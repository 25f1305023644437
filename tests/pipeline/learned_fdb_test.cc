#include "pipeline/learned_fdb.h"

#include <gtest/gtest.h>

namespace butterfly {
namespace {

IpBytes Vtep(uint8_t last) { return IpBytes{198, 18, 0, last}; }
uint32_t NoStamp(const LearnedFdb::Key&) { return 0; }

TEST(LearnedFdb, RefusesNewMacsOfAVniAtItsCapAndCountsThem) {
  LearnedFdb fdb(3);
  for (uint64_t mac = 1; mac <= 3; ++mac) {
    EXPECT_EQ(fdb.Learn({100, mac}, Vtep(2), 10), LearnedFdb::Outcome::kAdded);
  }
  EXPECT_EQ(fdb.Learn({100, 4}, Vtep(2), 10), LearnedFdb::Outcome::kRefused);
  EXPECT_EQ(fdb.Learn({100, 5}, Vtep(3), 10), LearnedFdb::Outcome::kRefused);
  EXPECT_EQ(fdb.CountOf(100), 3u);
  EXPECT_EQ(fdb.entries().size(), 3u);
  EXPECT_FALSE(fdb.entries().contains({100, 4}));
  EXPECT_EQ(fdb.refused(), 2u);
  EXPECT_EQ(fdb.refused_by_vni().at(100), 2u);
}

TEST(LearnedFdb, AFloodInOneVniNeitherEvictsNorBlocksAnotherVni) {
  LearnedFdb fdb(100);
  for (uint64_t mac = 1; mac <= 50; ++mac) fdb.Learn({200, mac}, Vtep(9), 1);
  for (uint64_t mac = 1; mac <= 100000; ++mac) fdb.Learn({100, mac << 8}, Vtep(2), 2);
  EXPECT_EQ(fdb.CountOf(100), 100u);
  EXPECT_EQ(fdb.refused(), 100000u - 100);
  EXPECT_EQ(fdb.CountOf(200), 50u);
  for (uint64_t mac = 1; mac <= 50; ++mac) {
    ASSERT_TRUE(fdb.entries().contains({200, mac})) << mac;
    EXPECT_EQ(fdb.entries().at({200, mac}).vtep, Vtep(9));
  }
  // VNI 200 still learns up to its own cap.
  EXPECT_EQ(fdb.Learn({200, 51}, Vtep(9), 3), LearnedFdb::Outcome::kAdded);
  EXPECT_FALSE(fdb.refused_by_vni().contains(200));
}

TEST(LearnedFdb, KnownMacsAreRefreshedAndMovedAtTheCap) {
  LearnedFdb fdb(2);
  fdb.Learn({100, 1}, Vtep(2), 10);
  fdb.Learn({100, 2}, Vtep(2), 10);
  EXPECT_EQ(fdb.Learn({100, 1}, Vtep(2), 20), LearnedFdb::Outcome::kRefreshed);
  EXPECT_EQ(fdb.entries().at({100, 1}).last_seen, 20u);
  EXPECT_EQ(fdb.Learn({100, 2}, Vtep(5), 20), LearnedFdb::Outcome::kMoved);
  EXPECT_EQ(fdb.entries().at({100, 2}).vtep, Vtep(5));
  EXPECT_EQ(fdb.refused(), 0u);
}

TEST(LearnedFdb, AgeingMakesRoomInTheVniAgain) {
  LearnedFdb fdb(2);
  fdb.Learn({100, 1}, Vtep(2), 10);
  fdb.Learn({100, 2}, Vtep(2), 50);
  EXPECT_EQ(fdb.Learn({100, 3}, Vtep(2), 60), LearnedFdb::Outcome::kRefused);
  EXPECT_FALSE(fdb.Age(60, 100, NoStamp));
  EXPECT_TRUE(fdb.Age(111, 100, NoStamp));  // MAC 1 idle 101 s; MAC 2 61 s
  EXPECT_EQ(fdb.CountOf(100), 1u);
  EXPECT_TRUE(fdb.entries().contains({100, 2}));
  EXPECT_EQ(fdb.Learn({100, 3}, Vtep(2), 111), LearnedFdb::Outcome::kAdded);
  EXPECT_EQ(fdb.Learn({100, 4}, Vtep(2), 111), LearnedFdb::Outcome::kRefused);
  EXPECT_EQ(fdb.refused(), 2u);  // never reset by ageing
}

TEST(LearnedFdb, AWorkersLaterStampKeepsAnEntry) {
  LearnedFdb fdb(4);
  fdb.Learn({100, 1}, Vtep(2), 10);
  fdb.Learn({100, 2}, Vtep(2), 10);
  auto stamp = [](const LearnedFdb::Key& key) -> uint32_t { return key.second == 1 ? 200 : 0; };
  EXPECT_TRUE(fdb.Age(250, 100, stamp));
  EXPECT_TRUE(fdb.entries().contains({100, 1}));
  EXPECT_FALSE(fdb.entries().contains({100, 2}));
  EXPECT_EQ(fdb.entries().at({100, 1}).last_seen, 200u);
}

}  // namespace
}  // namespace butterfly
