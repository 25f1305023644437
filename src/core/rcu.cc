#include "core/rcu.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace butterfly {

RcuDomain::RcuDomain(uint32_t max_workers) : max_workers_(max_workers) {
  size_t size = rte_rcu_qsbr_get_memsize(max_workers);
  // The per-thread counters are cache-line aligned inside the structure.
  size = (size + 63) / 64 * 64;
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, size));
  if (!qsbr_) throw std::bad_alloc();
  if (rte_rcu_qsbr_init(qsbr_, max_workers) != 0) {
    std::free(qsbr_);
    throw std::runtime_error("rte_rcu_qsbr_init failed for " + std::to_string(max_workers) +
                             " workers");
  }
}

RcuDomain::~RcuDomain() {
  Synchronize();
  std::free(qsbr_);
}

void RcuDomain::Register(uint32_t worker_id) {
  if (rte_rcu_qsbr_thread_register(qsbr_, worker_id) != 0) {
    throw std::invalid_argument("rcu: worker id " + std::to_string(worker_id) +
                                " out of range (max " + std::to_string(max_workers_) + ")");
  }
}

void RcuDomain::Unregister(uint32_t worker_id) { rte_rcu_qsbr_thread_unregister(qsbr_, worker_id); }

void RcuDomain::Defer(std::function<void()> reclaim) {
  std::lock_guard lock(mutex_);
  // Taken under the lock so the queue stays ordered by token.
  uint64_t token = rte_rcu_qsbr_start(qsbr_);
  deferred_.push_back({token, std::move(reclaim)});
}

size_t RcuDomain::Poll() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mutex_);
    while (!deferred_.empty() && rte_rcu_qsbr_check(qsbr_, deferred_.front().token, false) == 1) {
      ready.push_back(std::move(deferred_.front().reclaim));
      deferred_.pop_front();
    }
  }
  // Outside the lock: a callback may defer more work.
  for (auto& reclaim : ready) reclaim();
  return ready.size();
}

void RcuDomain::Synchronize() {
  uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = rte_rcu_qsbr_start(qsbr_);
  }
  rte_rcu_qsbr_check(qsbr_, token, true);
  while (Poll() > 0) {
  }
}

size_t RcuDomain::pending() const {
  std::lock_guard lock(mutex_);
  return deferred_.size();
}

}  // namespace butterfly
