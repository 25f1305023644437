#include "pipeline/learned_fdb.h"

#include <algorithm>

namespace butterfly {

LearnedFdb::Outcome LearnedFdb::Learn(const Key& key, const IpBytes& vtep, uint32_t now) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.last_seen = now;
    if (it->second.vtep == vtep) return Outcome::kRefreshed;
    it->second.vtep = vtep;
    return Outcome::kMoved;
  }
  size_t& count = count_by_vni_[key.first];
  if (count >= max_per_vni_) {
    ++refused_;
    ++refused_by_vni_[key.first];
    return Outcome::kRefused;
  }
  entries_.emplace(key, Entry{vtep, now});
  ++count;
  return Outcome::kAdded;
}

bool LearnedFdb::Age(uint32_t now, uint32_t ageing_seconds,
                     const std::function<uint32_t(const Key&)>& last_seen) {
  bool forgotten = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it->second.last_seen = std::max(it->second.last_seen, last_seen(it->first));
    if (now - it->second.last_seen > ageing_seconds) {
      auto count = count_by_vni_.find(it->first.first);
      if (--count->second == 0) count_by_vni_.erase(count);
      it = entries_.erase(it);
      forgotten = true;
    } else {
      ++it;
    }
  }
  return forgotten;
}

size_t LearnedFdb::CountOf(uint32_t vni) const {
  auto it = count_by_vni_.find(vni);
  return it == count_by_vni_.end() ? 0 : it->second;
}

}  // namespace butterfly
