// The data a compiled filter indexes instead of growing code with the rule count. For one
// direction and one address family, a remote address maps to a class (the union of what the
// rules covering that address allow: protocols on every port, tcp and udp port ranges), through
// an exact-match hash of host addresses and a sorted array of elementary address intervals.
// Built once per policy on the control side; read-only afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "jit/rule_ir.h"

namespace butterfly {

using Uint128 = unsigned __int128;

inline constexpr uint32_t kNoClass = 0;

// What one class allows. `whole_protocols` has the bits of the protocols allowed on every port
// (all 256 for a rule of protocol "all"); tcp and udp ranges index FilterClassTable::range_*.
struct PortClass {
  uint64_t whole_protocols[4] = {};
  uint32_t tcp_begin = 0, tcp_end = 0;
  uint32_t udp_begin = 0, udp_end = 0;

  bool AllowsEverything() const {
    return ~whole_protocols[0] == 0 && ~whole_protocols[1] == 0 && ~whole_protocols[2] == 0 &&
           ~whole_protocols[3] == 0;
  }
  bool AllowsWholeProtocol(uint8_t proto) const {
    return (whole_protocols[proto >> 6] >> (proto & 63)) & 1;
  }
};

struct HostSlotV4 {
  uint32_t address = 0;       // host order
  uint32_t klass = kNoClass;  // kNoClass: empty slot
};

struct HostSlotV6 {
  uint64_t high = 0, low = 0;  // host order halves
  uint32_t klass = kNoClass;
};

// One direction, one family.
struct RuleSetTables {
  uint8_t family = 4;
  bool empty = true;  // no rule: nothing matches
  // Index 0 is kNoClass (allows nothing).
  std::vector<PortClass> classes;
  // Port ranges of all classes, sorted and disjoint within a class.
  std::vector<uint16_t> range_first, range_last;
  // Exact-match addresses (a /32 or /128 prefix, e.g. a security group member); their class
  // already includes the shorter prefixes that cover them. Power-of-two size, at most half full.
  std::vector<HostSlotV4> hosts_v4;
  std::vector<HostSlotV6> hosts_v6;
  uint64_t host_mask = 0;
  size_t host_count = 0;
  // Every other address: interval i is [starts[i], starts[i+1]); starts[0] is 0.
  std::vector<uint32_t> starts_v4;
  std::vector<Uint128> starts_v6;
  std::vector<uint32_t> interval_class;
  // An index over the starts, so a lookup searches a handful of them whatever their number:
  // starts[1..] share their first `index_shared_bits` bits (`index_prefix`); the next
  // `index_bits` bits of an address with that prefix select a bucket, and bucket_first[b] is the
  // interval holding the bucket's first address. Empty when there are few starts.
  std::vector<uint32_t> bucket_first;
  int index_shared_bits = 0;
  int index_bits = 0;
  Uint128 index_prefix = 0;

  size_t MemoryBytes() const;
};

struct FilterTables {
  RuleSetTables sets[2][2];  // [direction][family]
  size_t MemoryBytes() const;
};

FilterTables BuildFilterTables(const FilterIr& ir);

uint32_t ClassOfV4(const RuleSetTables& tables, uint32_t address);
uint32_t ClassOfV6(const RuleSetTables& tables, uint64_t high, uint64_t low);
bool ClassAllows(const RuleSetTables& tables, uint32_t klass, uint8_t proto, uint16_t dst_port);

// Reads an address of `key` as an integer (host order).
uint32_t AddressV4(const IpBytes& ip);
uint64_t AddressHigh(const IpBytes& ip);
uint64_t AddressLow(const IpBytes& ip);

}  // namespace butterfly
