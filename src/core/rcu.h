// The RCU domain shared by the workers and the control side (DPDK rte_rcu_qsbr). Workers report
// a quiescent state once per loop and go offline before they sleep; the control side defers the
// freeing of anything a worker may still hold (a replaced filter, a removed vnic) until every
// worker online at the time has reported since. Deferred work is a list of callbacks polled by the
// control side, not rte_rcu_qsbr_dq (that needs EAL memzones): unit tests run without EAL.
#pragma once

#include <rte_rcu_qsbr.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace butterfly {

class RcuDomain {
 public:
  explicit RcuDomain(uint32_t max_workers);
  // Runs every pending callback after a last grace period: workers must be offline or gone.
  ~RcuDomain();
  RcuDomain(const RcuDomain&) = delete;
  RcuDomain& operator=(const RcuDomain&) = delete;

  uint32_t max_workers() const { return max_workers_; }

  // Control side, before a worker starts and after it stopped.
  void Register(uint32_t worker_id);
  void Unregister(uint32_t worker_id);

  // Worker side: no lock, no allocation, no system call.
  void Online(uint32_t worker_id) { rte_rcu_qsbr_thread_online(qsbr_, worker_id); }
  void Offline(uint32_t worker_id) { rte_rcu_qsbr_thread_offline(qsbr_, worker_id); }
  void Quiescent(uint32_t worker_id) { rte_rcu_qsbr_quiescent(qsbr_, worker_id); }

  // Control side, any thread: runs `reclaim` on a later Poll once every worker online now has
  // reported a quiescent state (call it after unpublishing what `reclaim` frees).
  void Defer(std::function<void()> reclaim);
  // Runs the callbacks whose grace period is over; returns how many ran. Never blocks on workers.
  size_t Poll();
  // Blocks until a grace period that starts now is over, then runs what it allows.
  void Synchronize();
  size_t pending() const;

 private:
  struct Deferred {
    uint64_t token;
    std::function<void()> reclaim;
  };

  const uint32_t max_workers_;
  rte_rcu_qsbr* qsbr_;
  mutable std::mutex mutex_;       // guards deferred_
  std::deque<Deferred> deferred_;  // tokens ascend
};

}  // namespace butterfly
