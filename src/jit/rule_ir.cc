#include "jit/rule_ir.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace butterfly {
namespace {

bool PrefixBitsEqual(const IpBytes& a, const IpBytes& b, int length) {
  int full_bytes = length / 8;
  for (int i = 0; i < full_bytes; ++i) {
    if (a[i] != b[i]) return false;
  }
  int rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full_bytes] & mask) == (b[full_bytes] & mask);
}

std::string DescribeRule(const PolicyRule& rule) {
  std::string text = rule.direction == Direction::kInbound ? "inbound" : "outbound";
  text += rule.protocol == kAnyProtocol ? " all" : " protocol " + std::to_string(rule.protocol);
  text += " ports " + std::to_string(rule.port_first) + "-" + std::to_string(rule.port_last);
  return text;
}

Status CheckRule(const PolicyRule& rule) {
  auto fail = [&rule](const std::string& why) {
    return Fail("rule (" + DescribeRule(rule) + ") cannot be compiled: " + why);
  };
  if (rule.protocol < kAnyProtocol || rule.protocol > 255) {
    return fail("protocol is not -1 (all) or 0-255");
  }
  if (rule.port_first > rule.port_last) return fail("port range is empty");
  bool has_ports = rule.protocol == kProtoTcp || rule.protocol == kProtoUdp;
  if (!has_ports && (rule.port_first != 0 || rule.port_last != 65535)) {
    return fail("a port range only applies to tcp and udp");
  }
  for (const Cidr& remote : rule.remotes) {
    if (remote.prefix_length < 0 || remote.prefix_length > remote.address.bit_width()) {
      return fail("prefix length " + std::to_string(remote.prefix_length) +
                  " is out of range for the address family");
    }
    if (remote.address.Masked(remote.prefix_length) != remote.address) {
      return fail("prefix " + remote.address.ToString() + "/" +
                  std::to_string(remote.prefix_length) + " has bits set past its length");
    }
  }
  return Ok();
}

// Sorts and drops the prefixes another of the list already covers.
std::vector<IpPrefix> MergePrefixes(std::vector<IpPrefix> prefixes) {
  // Shorter first among equal addresses, so a covering prefix precedes what it covers.
  std::sort(prefixes.begin(), prefixes.end(), [](const IpPrefix& a, const IpPrefix& b) {
    return std::tie(a.address, a.length) < std::tie(b.address, b.length);
  });
  std::vector<IpPrefix> merged;
  for (const IpPrefix& prefix : prefixes) {
    // Sorted by address, a prefix covering this one is the last kept one or none: kept prefixes
    // are disjoint, and a covering one starts at or before this one.
    if (!merged.empty() && merged.back().Contains(prefix)) continue;
    merged.push_back(prefix);
  }
  return merged;
}

}  // namespace

bool IpPrefix::Contains(const IpBytes& ip) const { return PrefixBitsEqual(address, ip, length); }

bool IpPrefix::Contains(const IpPrefix& other) const {
  return other.length >= length && PrefixBitsEqual(address, other.address, length);
}

size_t FilterIr::RuleCount() const {
  size_t count = 0;
  for (const auto& by_family : rules) {
    for (const auto& list : by_family) count += list.size();
  }
  return count;
}

size_t FilterIr::PrefixCount() const {
  size_t count = 0;
  for (const auto& by_family : rules) {
    for (const auto& list : by_family) {
      for (const IrRule& rule : list) count += rule.remotes.size();
    }
  }
  return count;
}

Result<std::shared_ptr<const FilterIr>> BuildFilterIr(const VnicPolicy& policy) {
  auto ir = std::make_shared<FilterIr>();
  ir->vnic_id = policy.vnic_id;
  ir->generation = policy.generation;
  ir->bypass_filtering = policy.bypass_filtering;
  ir->outbound_open = !policy.restrict_outbound;
  for (const IpAddress& ip : policy.vnic_ips) {
    ir->vnic_ips[ip.is_v4() ? kV4Index : kV6Index].push_back(ip.bytes);
  }
  for (auto& ips : ir->vnic_ips) {
    std::sort(ips.begin(), ips.end());
    ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  }

  using Key = std::tuple<int, int, int, uint16_t, uint16_t>;  // dir, family, proto, ports
  std::map<Key, std::vector<IpPrefix>> grouped;
  for (const PolicyRule& rule : policy.rules) {
    if (Status valid = CheckRule(rule); !valid) return Fail(valid.error());
    bool has_ports = rule.protocol == kProtoTcp || rule.protocol == kProtoUdp;
    uint16_t first = has_ports ? rule.port_first : 0;
    uint16_t last = has_ports ? rule.port_last : 65535;
    for (const Cidr& remote : rule.remotes) {
      int family = remote.address.is_v4() ? kV4Index : kV6Index;
      Key key{DirectionIndex(rule.direction), family, rule.protocol, first, last};
      grouped[key].push_back(
          IpPrefix{remote.address.bytes, static_cast<uint8_t>(remote.prefix_length)});
    }
  }
  for (auto& [key, prefixes] : grouped) {
    auto [direction, family, protocol, first, last] = key;
    IrRule rule;
    rule.protocol = protocol;
    rule.port_first = first;
    rule.port_last = last;
    rule.remotes = MergePrefixes(std::move(prefixes));
    ir->rules[direction][family].push_back(std::move(rule));
  }
  return std::shared_ptr<const FilterIr>(std::move(ir));
}

}  // namespace butterfly
