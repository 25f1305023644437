// Traffic a vnic needs whatever its security groups say, so that DHCP and IPv6 work with any
// group: DHCP and DHCPv6 between client and server, IPv6 neighbour discovery and MLD. Whether the
// frames themselves are honest (ND targets, link-layer options) is the antispoof stage's business.
// Inline: every packet goes through these checks.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "jit/packet_key.h"

namespace butterfly {

namespace infrastructure_detail {

inline bool IsLinkLocalV6(const IpBytes& ip) { return ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80; }
inline bool IsUnspecified(const IpBytes& ip) { return ip == IpBytes{}; }
inline bool IsUdp(const PacketKey& key, uint16_t src_port, uint16_t dst_port) {
  return key.proto == kProtoUdp && !key.is_non_first_fragment() && key.src_port == src_port &&
         key.dst_port == dst_port;
}

}  // namespace infrastructure_detail

// ND and MLD: passes whatever the rules once the source address is known to be the vnic's.
inline bool IsNeighborDiscoveryOrMld(const PacketKey& key) {
  if (key.family != 6 || key.proto != kProtoIcmpv6 || key.is_fragment()) {
    return false;
  }
  uint8_t type = key.icmp_type;
  return (type >= 133 && type <= 137) || (type >= 130 && type <= 132) || type == 143;
}

// Passes whatever the rules, antispoof included: DHCP client requests (UDP 68->67 from any
// source, DHCPv6 546->547 from link-local), ND and MLD from a link-local or unspecified source.
inline bool IsExemptFromVm(const PacketKey& key) {
  using namespace infrastructure_detail;
  if (key.proto != kProtoUdp && key.proto != kProtoIcmpv6) return false;
  if (key.family == 4) return IsUdp(key, 68, 67);
  bool link_local = IsLinkLocalV6(key.src);
  if (link_local && IsUdp(key, 546, 547)) return true;
  return (link_local || IsUnspecified(key.src)) && IsNeighborDiscoveryOrMld(key);
}

// Passes whatever the rules: DHCP replies (UDP 67->68, 547->546) and ND (ICMPv6 133-137).
inline bool IsExemptToVm(const PacketKey& key) {
  using namespace infrastructure_detail;
  if (key.proto != kProtoUdp && key.proto != kProtoIcmpv6) return false;
  if (key.family == 4) return IsUdp(key, 67, 68);
  if (IsUdp(key, 547, 546)) return true;
  return key.proto == kProtoIcmpv6 && !key.is_fragment() && key.icmp_type >= 133 &&
         key.icmp_type <= 137;
}

// True when `source` is one of `vnic_ips` (the vnic's addresses of the packet's family, sorted).
inline bool SourceIsVnicAddress(const std::vector<IpBytes>& vnic_ips, const IpBytes& source) {
  // A vnic has a handful of addresses: a scan beats a search until there are many. Compared as
  // two words (std::array's == became a libc memcmp call per address, per packet).
  if (vnic_ips.size() <= 8) {
    uint64_t source_words[2];
    std::memcpy(source_words, source.data(), 16);
    for (const IpBytes& ip : vnic_ips) {
      uint64_t words[2];
      std::memcpy(words, ip.data(), 16);
      if (((words[0] ^ source_words[0]) | (words[1] ^ source_words[1])) == 0) return true;
    }
    return false;
  }
  // The order rule_ir.cc sorted them in (std::array's), without a memcmp call per step; a lambda,
  // as a function pointer would be called rather than inlined at each step.
  return std::binary_search(
      vnic_ips.begin(), vnic_ips.end(), source,
      [](const IpBytes& a, const IpBytes& b) { return CompareAddresses(a, b) < 0; });
}

}  // namespace butterfly
