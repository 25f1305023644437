// A vnic's filter as workers see it: an atomic pointer to the FilterProgram in force, swapped by
// the FilterEngine on every policy change. A worker loads it once per burst. The slot itself is
// stable for the vnic's lifetime and freed after a grace period once the vnic is removed.
#pragma once

#include <atomic>
#include <cstdint>

#include "jit/filter_program.h"

namespace butterfly {

class FilterSlot {
 public:
  explicit FilterSlot(uint32_t vnic_index) : vnic_index_(vnic_index) {}
  FilterSlot(const FilterSlot&) = delete;
  FilterSlot& operator=(const FilterSlot&) = delete;

  const FilterProgram* Current() const { return current_.load(std::memory_order_acquire); }
  // Tells this vnic's conntrack entries from other vnics' (addresses may overlap across VNIs).
  // Never reused within a process, so entries of a removed vnic just age out.
  uint32_t vnic_index() const { return vnic_index_; }

  // Control side: installs `program` and returns the previous one, to free after a grace period.
  const FilterProgram* Exchange(const FilterProgram* program) {
    return current_.exchange(program, std::memory_order_acq_rel);
  }

 private:
  std::atomic<const FilterProgram*> current_{nullptr};
  const uint32_t vnic_index_;
};

}  // namespace butterfly
