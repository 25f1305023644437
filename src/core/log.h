// Logging for the control side: syslog (default) or stderr, levels none/error/warning/info/debug,
// changeable at run time. Workers never call this directly: they count, and the control thread
// reports through a RateLimiter.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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

}  // namespace butterfly

#define BF_LOG(level, ...)                                               \
  do {                                                                   \
    if (::butterfly::LogEnabled(level)) ::butterfly::LogWrite(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) BF_LOG(::butterfly::LogLevel::kError, __VA_ARGS__)
#define LOG_WARNING(...) BF_LOG(::butterfly::LogLevel::kWarning, __VA_ARGS__)
#define LOG_INFO(...) BF_LOG(::butterfly::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) BF_LOG(::butterfly::LogLevel::kDebug, __VA_ARGS__)
