// Logging for the control side: syslog (default) or stderr, levels none/error/warning/info/debug,
// changeable at run time. Workers never call this directly: they count, and the control thread
// reports through a RateLimiter.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "core/result.h"

namespace butterfly {

enum class LogLevel : int { kNone = 0, kError = 1, kWarning = 2, kInfo = 3, kDebug = 4 };

Result<LogLevel> ParseLogLevel(std::string_view name);
const char* LogLevelName(LogLevel level);

enum class LogSink { kSyslog, kStderr };

void LogInit(const char* ident, LogSink sink, LogLevel level);
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);
void LogWrite(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Allows at most `burst` messages per `period`; counts what it suppressed so the next message
// that passes can say so.
class RateLimiter {
 public:
  RateLimiter(int burst, std::chrono::milliseconds period) : burst_(burst), period_(period) {}
  // True when a message may be written now; `suppressed` receives how many were dropped since the
  // last one that passed.
  bool Allow(uint64_t* suppressed);

 private:
  const int burst_;
  const std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point window_start_{};
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
};

// One log call site for events that traffic or clients can trigger at will (a packet, a connection
// attempt): it writes at most `burst` messages per `period`, and the first message it writes after
// suppressing some says how many ("... (123 similar messages suppressed)"). Thread-safe. A message
// of a level that is off neither writes nor uses up the budget. Dataplane workers still never log:
// they count, and the control thread reports through one of these.
class RateLimitedLog {
 public:
  RateLimitedLog(int burst, std::chrono::milliseconds period) : limiter_(burst, period) {}
  void Write(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));
  // Messages suppressed since this site was made.
  uint64_t suppressed_total() const { return suppressed_total_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  RateLimiter limiter_;
  std::atomic<uint64_t> suppressed_total_{0};
};

}  // namespace butterfly

// A rate-limited log statement with its own budget, e.g.
//   LOG_RATE_LIMITED(LogLevel::kWarning, 5, std::chrono::seconds(10), "nic %s: ...", id);
#define LOG_RATE_LIMITED(level, burst, period, ...)                         \
  do {                                                                      \
    static ::butterfly::RateLimitedLog bf_rate_limited_site(burst, period); \
    bf_rate_limited_site.Write(level, __VA_ARGS__);                         \
  } while (0)

#define BF_LOG(level, ...)                                                         \
  do {                                                                             \
    if (::butterfly::LogEnabled(level)) ::butterfly::LogWrite(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) BF_LOG(::butterfly::LogLevel::kError, __VA_ARGS__)
#define LOG_WARNING(...) BF_LOG(::butterfly::LogLevel::kWarning, __VA_ARGS__)
#define LOG_INFO(...) BF_LOG(::butterfly::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) BF_LOG(::butterfly::LogLevel::kDebug, __VA_ARGS__)
