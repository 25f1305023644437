#include "pipeline/conntrack_monitor.h"

namespace butterfly {

uint64_t ConntrackMonitor::Poll(const std::vector<const Conntrack*>& tables) {
  uint64_t full = 0;
  size_t capacity = 0;
  for (const Conntrack* table : tables) {
    full += table->counters().full.load(std::memory_order_relaxed);
    capacity = table->capacity();
  }
  uint64_t fresh = full - reported_full_;
  reported_full_ = full;
  unreported_ += fresh;
  uint64_t suppressed = 0;
  if (unreported_ > 0 && limiter_.Allow(&suppressed)) {
    LOG_WARNING(
        "conntrack: %llu new flows dropped because a worker's table is full (%zu flows per "
        "worker); raise the conntrack size or shorten the timeouts",
        static_cast<unsigned long long>(unreported_), capacity);
    unreported_ = 0;
  }
  return fresh;
}

}  // namespace butterfly
