// Control side: turns the workers' "conntrack full" counters into a log line, rate-limited, so an
// operator learns that new flows are being dropped without a worker ever logging.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/log.h"
#include "pipeline/conntrack.h"

namespace butterfly {

class ConntrackMonitor {
 public:
  ConntrackMonitor() : limiter_(1, std::chrono::seconds(10)) {}

  // Call periodically with every worker's table. Returns how many inserts were refused since the
  // previous call (0: nothing to say).
  uint64_t Poll(const std::vector<const Conntrack*>& tables);

 private:
  RateLimiter limiter_;
  uint64_t reported_full_ = 0;
  uint64_t unreported_ = 0;
};

}  // namespace butterfly
