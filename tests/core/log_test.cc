// Rate-limited logging: the budget per period, the count of what was suppressed, disabled levels,
// and many threads on one call site.
#include "core/log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace butterfly {
namespace {

using std::chrono::milliseconds;

size_t CountLines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

class RateLimitedLogTest : public ::testing::Test {
 protected:
  void SetUp() override { LogInit("log_test", LogSink::kStderr, LogLevel::kInfo); }
};

TEST_F(RateLimitedLogTest, WritesTheBurstThenSaysHowManyItSuppressed) {
  RateLimitedLog site(3, milliseconds(200));
  testing::internal::CaptureStderr();
  for (int i = 0; i < 10; ++i) site.Write(LogLevel::kWarning, "flood %d", i);
  std::string first = testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(first), 3u) << first;
  EXPECT_NE(first.find("flood 2"), std::string::npos);
  EXPECT_EQ(first.find("flood 3"), std::string::npos);
  EXPECT_EQ(site.suppressed_total(), 7u);

  std::this_thread::sleep_for(milliseconds(250));
  testing::internal::CaptureStderr();
  site.Write(LogLevel::kWarning, "flood again");
  std::string second = testing::internal::GetCapturedStderr();
  EXPECT_NE(second.find("warning: flood again (7 similar messages suppressed)"), std::string::npos)
      << second;
}

TEST_F(RateLimitedLogTest, DisabledLevelsNeitherWriteNorUseTheBudget) {
  RateLimitedLog site(2, std::chrono::hours(1));
  testing::internal::CaptureStderr();
  for (int i = 0; i < 5; ++i) site.Write(LogLevel::kDebug, "hidden");
  SetLogLevel(LogLevel::kDebug);
  site.Write(LogLevel::kDebug, "shown 1");
  site.Write(LogLevel::kDebug, "shown 2");
  std::string text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("shown 2"), std::string::npos) << text;
  EXPECT_EQ(site.suppressed_total(), 0u);
}

TEST_F(RateLimitedLogTest, ManyThreadsOnOneSiteShareOneBudget) {
  RateLimitedLog site(5, std::chrono::hours(1));
  testing::internal::CaptureStderr();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&site, t] {
      for (int i = 0; i < 1000; ++i) site.Write(LogLevel::kError, "thread %d event %d", t, i);
    });
  }
  for (auto& thread : threads) thread.join();
  std::string text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(text), 5u) << text;
  EXPECT_EQ(site.suppressed_total(), 3995u);
}

TEST_F(RateLimitedLogTest, MacroGivesEachCallSiteItsOwnBudget) {
  testing::internal::CaptureStderr();
  for (int i = 0; i < 100; ++i) {
    LOG_RATE_LIMITED(LogLevel::kWarning, 2, std::chrono::hours(1), "site A %d", i);
    LOG_RATE_LIMITED(LogLevel::kWarning, 1, std::chrono::hours(1), "site B %d", i);
  }
  std::string text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(text), 3u) << text;
  EXPECT_NE(text.find("site A 1"), std::string::npos);
  EXPECT_NE(text.find("site B 0"), std::string::npos);
}

}  // namespace
}  // namespace butterfly
