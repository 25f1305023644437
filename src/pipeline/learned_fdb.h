// The remote MACs learned from decapsulated traffic, as the control side keeps them: (VNI, MAC)
// -> VTEP and last-seen time, with a cap per VNI. A VNI at its cap learns nothing new until some
// of its own entries age out: a MAC flood from the underlay in one VNI (10^6 source MACs) cannot
// grow the table without bound, and never evicts local vnics, static entries (kept elsewhere) or
// another VNI's entries. No DPDK here, so that the policy is unit-tested alone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "jit/packet_key.h"

namespace butterfly {

class LearnedFdb {
 public:
  using Key = std::pair<uint32_t, uint64_t>;  // (VNI, MAC as 48 bits)
  struct Entry {
    IpBytes vtep{};
    uint32_t last_seen = 0;  // seconds
  };
  enum class Outcome { kAdded, kMoved, kRefreshed, kRefused };

  explicit LearnedFdb(uint32_t max_per_vni) : max_per_vni_(max_per_vni) {}

  // Records traffic from `key` behind `vtep` at `now`. A MAC already known is refreshed (or moved
  // to its new VTEP) whatever the VNI's count; a new one is refused when its VNI holds the cap.
  Outcome Learn(const Key& key, const IpBytes& vtep, uint32_t now);

  // Forgets entries idle for more than `ageing_seconds`; `last_seen` gives a later stamp of an
  // entry (the workers' copy) when there is one, else 0. True when something was forgotten.
  bool Age(uint32_t now, uint32_t ageing_seconds,
           const std::function<uint32_t(const Key&)>& last_seen);

  const std::map<Key, Entry>& entries() const { return entries_; }
  uint32_t max_per_vni() const { return max_per_vni_; }
  size_t CountOf(uint32_t vni) const;
  // Learns refused because the VNI was at its cap: in total, and per VNI (never reset).
  uint64_t refused() const { return refused_; }
  const std::map<uint32_t, uint64_t>& refused_by_vni() const { return refused_by_vni_; }

 private:
  uint32_t max_per_vni_;
  std::map<Key, Entry> entries_;
  std::map<uint32_t, size_t> count_by_vni_;
  std::map<uint32_t, uint64_t> refused_by_vni_;
  uint64_t refused_ = 0;
};

}  // namespace butterfly
