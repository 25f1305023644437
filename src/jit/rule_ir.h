// The rule IR: a vnic's effective policy normalized for the filter implementations. Rules are
// split by direction and address family, rules with the same protocol and port range are merged
// into one with the union of their remote prefixes, and prefixes covered by another of the same
// rule are dropped. The interpreter walks it; the JIT compiler lowers it to code and tables.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/policy.h"
#include "core/result.h"
#include "jit/packet_key.h"

namespace butterfly {

// Address families as array indexes: IR rule sets and tables are kept per family.
enum FamilyIndex : int { kV4Index = 0, kV6Index = 1 };
inline int FamilyIndexOf(uint8_t family) { return family == 4 ? kV4Index : kV6Index; }
inline int DirectionIndex(Direction direction) { return static_cast<int>(direction); }

struct IpPrefix {
  IpBytes address{};   // bits past `length` are zero
  uint8_t length = 0;  // 0-32 (IPv4) or 0-128 (IPv6)

  bool Contains(const IpBytes& ip) const;
  bool Contains(const IpPrefix& other) const;
  auto operator<=>(const IpPrefix&) const = default;
};

struct IrRule {
  int protocol = kAnyProtocol;  // -1 (any) or 0-255
  uint16_t port_first = 0;      // destination port range; 0-65535 unless tcp or udp
  uint16_t port_last = 65535;
  std::vector<IpPrefix> remotes;  // sorted, none contains another, never empty

  bool HasPorts() const { return protocol == kProtoTcp || protocol == kProtoUdp; }
  bool MatchesProtocolAndPort(uint8_t proto, uint16_t dst_port) const {
    if (protocol != kAnyProtocol && protocol != proto) return false;
    return !HasPorts() || (dst_port >= port_first && dst_port <= port_last);
  }
};

struct FilterIr {
  std::string vnic_id;
  uint64_t generation = 0;
  bool bypass_filtering = false;
  // Outbound flows need no rule while none of the vnic's groups has an outbound rule.
  bool outbound_open = true;
  // The vnic's own addresses per family, sorted: an IP packet from the VM must carry one.
  std::array<std::vector<IpBytes>, 2> vnic_ips;
  // [direction][family], sorted by (protocol, ports).
  std::array<std::array<std::vector<IrRule>, 2>, 2> rules;

  const std::vector<IrRule>& RulesFor(Direction direction, uint8_t family) const {
    return rules[DirectionIndex(direction)][FamilyIndexOf(family)];
  }
  size_t RuleCount() const;
  size_t PrefixCount() const;
};

// Normalizes `policy`. Fails, with the rule named in the message, on anything the filter cannot
// enforce exactly (a protocol out of range, a port range on a protocol without ports, a prefix
// length past the address width, host bits set in a prefix): better refused than mis-compiled.
Result<std::shared_ptr<const FilterIr>> BuildFilterIr(const VnicPolicy& policy);

}  // namespace butterfly
