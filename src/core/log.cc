#include "core/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

namespace butterfly {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
LogSink g_sink = LogSink::kStderr;
const char* g_ident = "butterfly";
std::mutex g_stderr_mutex;

// The one list of levels: their names (command line, config, logs) and syslog priorities.
struct LevelInfo {
  LogLevel level;
  std::string_view name;
  int syslog_priority;
};
constexpr LevelInfo kLevels[] = {{LogLevel::kNone, "none", LOG_DEBUG},
                                 {LogLevel::kError, "error", LOG_ERR},
                                 {LogLevel::kWarning, "warning", LOG_WARNING},
                                 {LogLevel::kInfo, "info", LOG_INFO},
                                 {LogLevel::kDebug, "debug", LOG_DEBUG}};

const LevelInfo* InfoOf(LogLevel level) {
  for (const LevelInfo& info : kLevels) {
    if (info.level == level) return &info;
  }
  return nullptr;
}

int SyslogPriority(LogLevel level) {
  const LevelInfo* info = InfoOf(level);
  return info ? info->syslog_priority : LOG_DEBUG;
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  std::string names;
  for (const LevelInfo& info : kLevels) {
    if (info.name == name) return info.level;
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  }
  return Fail("log level '" + std::string(name) + "' is not one of " + names);
}

const char* LogLevelName(LogLevel level) {
  const LevelInfo* info = InfoOf(level);
  return info ? info->name.data() : "?";
}

void LogInit(const char* ident, LogSink sink, LogLevel level) {
  g_ident = ident;
  g_sink = sink;
  SetLogLevel(level);
  // In a terminal (make run), syslog messages are echoed on stderr too, so the operator sees them.
  if (sink == LogSink::kSyslog) {
    openlog(ident, LOG_PID | LOG_NDELAY | (isatty(STDERR_FILENO) ? LOG_PERROR : 0), LOG_DAEMON);
  }
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
bool LogEnabled(LogLevel level) {
  return level != LogLevel::kNone &&
         static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void LogWrite(LogLevel level, const char* format, ...) {
  char message[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);

  if (g_sink == LogSink::kSyslog) {
    syslog(SyslogPriority(level), "%s: %s", LogLevelName(level), message);
    return;
  }
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::lock_guard lock(g_stderr_mutex);
  std::fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s\n", stamp, now.tv_nsec / 1000000, g_ident,
               static_cast<int>(getpid()), LogLevelName(level), message);
}

bool RateLimiter::Allow(uint64_t* suppressed) {
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= period_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++suppressed_;
    return false;
  }
  ++in_window_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void RateLimitedLog::Write(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mutex_);
    if (!limiter_.Allow(&suppressed)) {
      suppressed_total_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  char message[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof(message), format, args);
  va_end(args);
  if (suppressed > 0) {
    LogWrite(level, "%s (%llu similar messages suppressed)", message,
             static_cast<unsigned long long>(suppressed));
  } else {
    LogWrite(level, "%s", message);
  }
}

}  // namespace butterfly
