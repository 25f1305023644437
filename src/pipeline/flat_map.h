// An immutable open-addressing hash map, built once by the control side and then only read by
// workers: no allocation, no lock, one or two cache lines per lookup. Capacity is a power of two
// at least twice the item count, so probes stay short.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace butterfly {

template <typename Key, typename Value, typename Hash, typename Equal = std::equal_to<Key>>
class FlatMap {
 public:
  FlatMap() = default;
  explicit FlatMap(const std::vector<std::pair<Key, Value>>& items) {
    size_t capacity = 8;
    while (capacity < items.size() * 2) capacity *= 2;
    slots_.resize(capacity);
    mask_ = capacity - 1;
    for (const auto& [key, value] : items) {
      size_t index = Hash()(key) & mask_;
      while (slots_[index].used && !Equal()(slots_[index].key, key)) index = (index + 1) & mask_;
      slots_[index] = Slot{key, value, true};
    }
    size_ = items.size();
  }

  const Value* Find(const Key& key) const {
    if (slots_.empty()) return nullptr;
    for (size_t index = Hash()(key) & mask_;; index = (index + 1) & mask_) {
      const Slot& slot = slots_[index];
      if (!slot.used) return nullptr;
      if (Equal()(slot.key, key)) return &slot.value;
    }
  }
  size_t size() const { return size_; }

  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (const Slot& slot : slots_) {
      if (slot.used) visit(slot.key, slot.value);
    }
  }

 private:
  struct Slot {
    Key key{};
    Value value{};
    bool used = false;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// 64-bit mix (splitmix64's finaliser): cheap and spreads MACs and addresses well.
struct MixHash {
  size_t operator()(uint64_t key) const {
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    return static_cast<size_t>(key ^ (key >> 31));
  }
};

}  // namespace butterfly
