#include "jit/filter_tables.h"

#include <algorithm>
#include <bit>
#include <map>
#include <utility>

namespace butterfly {
namespace {

Uint128 ToInteger(const IpBytes& ip, int width) {
  Uint128 value = 0;
  for (int i = 0; i < width / 8; ++i) value = value << 8 | ip[i];
  return value;
}

uint64_t HashV4(uint32_t address) { return (address * 0x9e3779b97f4a7c15ULL) >> 29; }
uint64_t HashV6(uint64_t high, uint64_t low) {
  uint64_t h = (high ^ std::rotl(low, 29)) * 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 31);
}

using RuleIndexes = std::vector<int>;  // sorted indexes into the IR rule list

class ClassBuilder {
 public:
  ClassBuilder(const std::vector<IrRule>& rules, RuleSetTables* tables)
      : rules_(rules), tables_(tables) {
    tables_->classes.assign(1, PortClass{});  // kNoClass
  }

  uint32_t Intern(const RuleIndexes& indexes) {
    if (indexes.empty()) return kNoClass;
    auto [it, inserted] = ids_.try_emplace(indexes, 0);
    if (inserted) {
      it->second = static_cast<uint32_t>(tables_->classes.size());
      tables_->classes.push_back(Build(indexes));
    }
    return it->second;
  }

 private:
  using Ranges = std::vector<std::pair<uint16_t, uint16_t>>;

  void AppendMerged(Ranges ranges, uint32_t* begin, uint32_t* end) {
    std::sort(ranges.begin(), ranges.end());
    *begin = static_cast<uint32_t>(tables_->range_first.size());
    for (const auto& [first, last] : ranges) {
      if (tables_->range_first.size() > *begin &&
          uint32_t{first} <= uint32_t{tables_->range_last.back()} + 1) {
        tables_->range_last.back() = std::max(tables_->range_last.back(), last);
      } else {
        tables_->range_first.push_back(first);
        tables_->range_last.push_back(last);
      }
    }
    *end = static_cast<uint32_t>(tables_->range_first.size());
  }

  PortClass Build(const RuleIndexes& indexes) {
    PortClass klass;
    Ranges tcp, udp;
    auto allow_whole = [&klass](int proto) {
      klass.whole_protocols[proto >> 6] |= 1ULL << (proto & 63);
    };
    for (int index : indexes) {
      const IrRule& rule = rules_[index];
      if (rule.protocol == kAnyProtocol) {
        for (uint64_t& bits : klass.whole_protocols) bits = ~0ULL;
      } else if (rule.HasPorts() && !(rule.port_first == 0 && rule.port_last == 65535)) {
        (rule.protocol == kProtoTcp ? tcp : udp).emplace_back(rule.port_first, rule.port_last);
      } else {
        allow_whole(rule.protocol);
      }
    }
    if (klass.AllowsWholeProtocol(kProtoTcp)) tcp.clear();
    if (klass.AllowsWholeProtocol(kProtoUdp)) udp.clear();
    AppendMerged(std::move(tcp), &klass.tcp_begin, &klass.tcp_end);
    AppendMerged(std::move(udp), &klass.udp_begin, &klass.udp_end);
    return klass;
  }

  const std::vector<IrRule>& rules_;
  RuleSetTables* tables_;
  std::map<RuleIndexes, uint32_t> ids_;
};

template <typename Slot, typename Hash, typename Same, typename Fill>
void InsertHost(std::vector<Slot>& slots, uint64_t mask, Hash hash, Same same, Fill fill) {
  for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots[i].klass == kNoClass || same(slots[i])) {
      fill(slots[i]);
      return;
    }
  }
}

// Below this many starts a plain binary search is as fast as the index.
constexpr size_t kIndexThreshold = 32;

// Where `value` falls when it shares the starts' prefix: its bucket.
size_t BucketOf(Uint128 value, int width, int shared_bits, int index_bits) {
  Uint128 rest = shared_bits == 0 ? value : value << shared_bits;  // drop the shared prefix
  if (width == 32) rest = rest & ((Uint128{1} << 32) - 1);
  int shift = width - index_bits;
  return static_cast<size_t>(rest >> shift);
}

void BuildIndex(const std::vector<Uint128>& starts, int width, RuleSetTables* tables) {
  if (starts.size() < kIndexThreshold) return;
  // The prefix starts[1..] share (starts[0] is 0 and sits below them all).
  Uint128 first = starts[1], last = starts.back();
  int shared = 0;
  while (shared < width - 1) {
    Uint128 bit = Uint128{1} << (width - 1 - shared);
    if ((first & bit) != (last & bit)) break;
    ++shared;
  }
  int index_bits = std::min(width - shared, static_cast<int>(std::bit_width(starts.size())) + 1);
  tables->index_shared_bits = shared;
  tables->index_bits = index_bits;
  Uint128 host_mask = shared == 0 ? ~Uint128{0} : (Uint128{1} << (width - shared)) - 1;
  if (width == 32) host_mask &= (Uint128{1} << 32) - 1;
  tables->index_prefix = first & ~host_mask & (width == 32 ? (Uint128{1} << 32) - 1 : ~Uint128{0});
  size_t buckets = size_t{1} << index_bits;
  tables->bucket_first.resize(buckets + 1);
  // bucket_first[b]: the interval of the bucket's lowest address, found by walking both in order.
  size_t interval = 0;
  for (size_t b = 0; b < buckets; ++b) {
    Uint128 bucket_start = tables->index_prefix | (Uint128{b} << (width - shared - index_bits));
    while (interval + 1 < starts.size() && starts[interval + 1] <= bucket_start) ++interval;
    tables->bucket_first[b] = static_cast<uint32_t>(interval);
  }
  tables->bucket_first[buckets] = static_cast<uint32_t>(starts.size() - 1);
}

void BuildRuleSet(const std::vector<IrRule>& rules, uint8_t family, RuleSetTables* tables) {
  tables->family = family;
  tables->empty = rules.empty();
  ClassBuilder classes(rules, tables);
  const int width = family == 4 ? 32 : 128;

  // Sweep the prefix boundaries: between two of them, the same rules cover every address.
  struct Event {
    Uint128 at;
    int rule;
    int delta;
  };
  std::vector<Event> events;
  std::map<Uint128, RuleIndexes> hosts;
  for (int index = 0; index < static_cast<int>(rules.size()); ++index) {
    for (const IpPrefix& prefix : rules[index].remotes) {
      Uint128 first = ToInteger(prefix.address, width);
      if (prefix.length == width) {
        hosts[first].push_back(index);
        continue;
      }
      events.push_back({first, index, +1});
      int host_bits = width - prefix.length;
      // A prefix that reaches the top of the space has no end boundary.
      Uint128 size = host_bits == 128 ? 0 : Uint128{1} << host_bits;
      Uint128 end = first + size;
      bool reaches_top = host_bits == 128 || (width == 128 ? end == 0 : end >> 32 != 0);
      if (!reaches_top) events.push_back({end, index, -1});
    }
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.at < b.at; });

  std::vector<Uint128> starts{0};
  std::vector<RuleIndexes> interval_rules{{}};
  std::map<int, int> active;
  for (size_t i = 0; i < events.size();) {
    Uint128 at = events[i].at;
    for (; i < events.size() && events[i].at == at; ++i) {
      if ((active[events[i].rule] += events[i].delta) == 0) active.erase(events[i].rule);
    }
    RuleIndexes now;
    for (const auto& [rule, count] : active) now.push_back(rule);
    if (now == interval_rules.back()) continue;
    if (starts.back() == at) {
      interval_rules.back() = std::move(now);
    } else {
      starts.push_back(at);
      interval_rules.push_back(std::move(now));
    }
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    if (width == 32) {
      tables->starts_v4.push_back(static_cast<uint32_t>(starts[i]));
    } else {
      tables->starts_v6.push_back(starts[i]);
    }
    tables->interval_class.push_back(classes.Intern(interval_rules[i]));
  }

  BuildIndex(starts, width, tables);

  size_t capacity = hosts.empty() ? 0 : std::bit_ceil(hosts.size() * 2);
  tables->host_count = hosts.size();
  tables->host_mask = capacity ? capacity - 1 : 0;
  if (width == 32) {
    tables->hosts_v4.resize(capacity);
  } else {
    tables->hosts_v6.resize(capacity);
  }
  for (auto& [address, own_rules] : hosts) {
    size_t interval = std::upper_bound(starts.begin(), starts.end(), address) - starts.begin() - 1;
    RuleIndexes all = own_rules;
    all.insert(all.end(), interval_rules[interval].begin(), interval_rules[interval].end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    uint32_t klass = classes.Intern(all);
    if (width == 32) {
      uint32_t v4 = static_cast<uint32_t>(address);
      InsertHost(
          tables->hosts_v4, tables->host_mask, HashV4(v4),
          [v4](const HostSlotV4& slot) { return slot.address == v4; },
          [v4, klass](HostSlotV4& slot) {
            slot = {v4, klass};
          });
    } else {
      uint64_t high = static_cast<uint64_t>(address >> 64), low = static_cast<uint64_t>(address);
      InsertHost(
          tables->hosts_v6, tables->host_mask, HashV6(high, low),
          [=](const HostSlotV6& slot) { return slot.high == high && slot.low == low; },
          [=](HostSlotV6& slot) {
            slot = {high, low, klass};
          });
    }
  }
}

// The index of the last element of `starts` not greater than `value`; starts[0] is 0, so there
// is one. Branch-free: the loop runs log2(size) times whatever the value.
template <typename T>
size_t LastNotGreater(const T* starts, size_t n, T value) {
  const T* base = starts;
  while (n > 1) {
    size_t half = n / 2;
    base = base[half] <= value ? base + half : base;
    n -= half;
  }
  return base - starts;
}

// The interval holding `value`, through the bucket index when there is one.
template <typename T>
size_t IntervalOf(const RuleSetTables& tables, const std::vector<T>& starts, T value, int width) {
  if (tables.bucket_first.empty()) return LastNotGreater(starts.data(), starts.size(), value);
  Uint128 wide = value;
  int shared = tables.index_shared_bits;
  Uint128 prefix_of_value = shared == 0 ? 0 : (wide >> (width - shared)) << (width - shared);
  if (prefix_of_value != tables.index_prefix) {
    // Below every start past the first, or above them all.
    return prefix_of_value < tables.index_prefix ? 0 : starts.size() - 1;
  }
  size_t bucket = BucketOf(wide, width, shared, tables.index_bits);
  size_t first = tables.bucket_first[bucket];
  size_t last = tables.bucket_first[bucket + 1];
  return first + LastNotGreater(starts.data() + first, last - first + 1, value);
}

bool InRanges(const RuleSetTables& tables, uint32_t begin, uint32_t end, uint16_t port) {
  if (end - begin <= 4) {
    for (uint32_t i = begin; i < end; ++i) {
      if (port >= tables.range_first[i] && port <= tables.range_last[i]) return true;
    }
    return false;
  }
  // The last range starting at or before `port`.
  const uint16_t* first = tables.range_first.data();
  const uint16_t* it = std::upper_bound(first + begin, first + end, port);
  if (it == first + begin) return false;
  return port <= tables.range_last[it - first - 1];
}

}  // namespace

uint32_t AddressV4(const IpBytes& ip) {
  return uint32_t{ip[0]} << 24 | uint32_t{ip[1]} << 16 | uint32_t{ip[2]} << 8 | ip[3];
}
uint64_t AddressHigh(const IpBytes& ip) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = value << 8 | ip[i];
  return value;
}
uint64_t AddressLow(const IpBytes& ip) {
  uint64_t value = 0;
  for (int i = 8; i < 16; ++i) value = value << 8 | ip[i];
  return value;
}

size_t RuleSetTables::MemoryBytes() const {
  return classes.size() * sizeof(PortClass) + range_first.size() * 4 +
         hosts_v4.size() * sizeof(HostSlotV4) + hosts_v6.size() * sizeof(HostSlotV6) +
         starts_v4.size() * 4 + starts_v6.size() * 16 + interval_class.size() * 4 +
         bucket_first.size() * 4;
}

size_t FilterTables::MemoryBytes() const {
  size_t bytes = sizeof(*this);
  for (const auto& by_family : sets) {
    for (const RuleSetTables& set : by_family) bytes += set.MemoryBytes();
  }
  return bytes;
}

FilterTables BuildFilterTables(const FilterIr& ir) {
  FilterTables tables;
  for (int direction = 0; direction < 2; ++direction) {
    BuildRuleSet(ir.rules[direction][kV4Index], 4, &tables.sets[direction][kV4Index]);
    BuildRuleSet(ir.rules[direction][kV6Index], 6, &tables.sets[direction][kV6Index]);
  }
  return tables;
}

uint32_t ClassOfV4(const RuleSetTables& tables, uint32_t address) {
  if (tables.host_count) {
    for (uint64_t i = HashV4(address) & tables.host_mask;; i = (i + 1) & tables.host_mask) {
      const HostSlotV4& slot = tables.hosts_v4[i];
      if (slot.klass == kNoClass) break;
      if (slot.address == address) return slot.klass;
    }
  }
  return tables.interval_class[IntervalOf(tables, tables.starts_v4, address, 32)];
}

uint32_t ClassOfV6(const RuleSetTables& tables, uint64_t high, uint64_t low) {
  if (tables.host_count) {
    for (uint64_t i = HashV6(high, low) & tables.host_mask;; i = (i + 1) & tables.host_mask) {
      const HostSlotV6& slot = tables.hosts_v6[i];
      if (slot.klass == kNoClass) break;
      if (slot.high == high && slot.low == low) return slot.klass;
    }
  }
  Uint128 address = Uint128{high} << 64 | low;
  return tables.interval_class[IntervalOf(tables, tables.starts_v6, address, 128)];
}

bool ClassAllows(const RuleSetTables& tables, uint32_t klass, uint8_t proto, uint16_t dst_port) {
  const PortClass& c = tables.classes[klass];
  if (c.AllowsWholeProtocol(proto)) return true;
  if (proto == kProtoTcp) return InRanges(tables, c.tcp_begin, c.tcp_end, dst_port);
  if (proto == kProtoUdp) return InRanges(tables, c.udp_begin, c.udp_end, dst_port);
  return false;
}

}  // namespace butterfly
