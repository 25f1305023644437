// The control side of the filter engine, owned by the control thread. SetPolicy enforces a new
// policy at once through the interpreter, then a background thread compiles it with the JIT and
// swaps the compiled filter in; a burst of changes to one vnic costs one compile (the newest
// policy wins, stale compiles are discarded). Replaced filters are freed after an RCU grace
// period; the background thread also polls the RCU domain for that.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/policy.h"
#include "core/rcu.h"
#include "core/result.h"
#include "jit/filter_slot.h"
#include "jit/jit_compiler.h"

namespace butterfly {

class FilterEngine {
 public:
  struct Options {
    bool jit = true;  // false: --no-jit, the interpreter enforces every policy
    bool optimize = true;
    // How often the background thread polls the RCU domain while frees are pending.
    std::chrono::milliseconds reclaim_period{2};
  };

  struct Counters {
    uint64_t policies = 0;          // SetPolicy calls applied
    uint64_t compiles = 0;          // JIT filters published
    uint64_t compile_failures = 0;  // the interpreter stayed in force
    uint64_t stale_compiles = 0;    // discarded: a newer policy arrived meanwhile
    uint64_t interpreted = 0;       // policies left to the interpreter (JIT off, or no rule)
    double compile_ms_total = 0;
    double compile_ms_max = 0;
  };

  // `rcu` must outlive the engine.
  FilterEngine(RcuDomain* rcu, Options options);
  // Frees every filter after a grace period: workers must be offline or stopped.
  ~FilterEngine();
  FilterEngine(const FilterEngine&) = delete;
  FilterEngine& operator=(const FilterEngine&) = delete;

  // Enforces `policy` for its vnic. A policy the IR cannot express is refused with the reason,
  // and the vnic then drops everything (fail closed) rather than run a filter it did not ask for.
  Status SetPolicy(std::shared_ptr<const VnicPolicy> policy);
  // Unpublishes nothing by itself: the dataplane stops using the slot, then the slot and its
  // filter are freed after a grace period.
  void RemoveVnic(const std::string& vnic_id);
  // The vnic's slot, stable until RemoveVnic; created (dropping everything) when missing.
  FilterSlot* SlotOf(const std::string& vnic_id);

  Counters counters() const;
  bool jit_enabled() const { return compiler_ != nullptr; }
  // Tests and benchmarks: waits until no compile is queued or running.
  bool WaitForCompiles(std::chrono::milliseconds timeout);

 private:
  struct VnicState {
    std::unique_ptr<FilterSlot> slot;
    uint64_t generation = 0;  // of the newest policy set
  };

  VnicState& StateOf(const std::string& vnic_id);                          // mutex_ held
  void Publish(FilterSlot* slot, std::unique_ptr<FilterProgram> program);  // mutex_ held
  void BackgroundLoop();

  RcuDomain* const rcu_;
  const Options options_;
  std::unique_ptr<JitCompiler> compiler_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::map<std::string, VnicState> vnics_;
  uint32_t next_vnic_index_ = 1;
  // Newest IR to compile per vnic, and the order vnics were queued in.
  std::map<std::string, std::shared_ptr<const FilterIr>> to_compile_;
  std::deque<std::string> compile_order_;
  bool compiling_ = false;
  bool stopping_ = false;
  Counters counters_;
  std::thread background_;
};

}  // namespace butterfly
