#include "core/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace butterfly {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
LogSink g_sink = LogSink::kStderr;
const char* g_ident = "butterfly";
std::mutex g_stderr_mutex;

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return LOG_ERR;
    case LogLevel::kWarning:
      return LOG_WARNING;
    case LogLevel::kInfo:
      return LOG_INFO;
    default:
      return LOG_DEBUG;
  }
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "none") return LogLevel::kNone;
  if (name == "error") return LogLevel::kError;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return Fail("log level '" + std::string(name) +
              "' is not one of none, error, warning, info, debug");
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kNone:
      return "none";
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
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
