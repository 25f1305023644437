#include "jit/infrastructure_traffic.h"

#include <algorithm>

namespace butterfly {
namespace {

constexpr uint8_t kUdp = 17;
constexpr uint8_t kIcmpv6 = 58;

bool IsLinkLocalV6(const IpBytes& ip) { return ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80; }
bool IsUnspecified(const IpBytes& ip) { return ip == IpBytes{}; }

bool IsUdp(const PacketKey& key, uint16_t src_port, uint16_t dst_port) {
  return key.proto == kUdp && !key.is_non_first_fragment() && key.src_port == src_port &&
         key.dst_port == dst_port;
}

bool IsNeighborDiscovery(const PacketKey& key) {
  return key.family == 6 && key.proto == kIcmpv6 && !key.is_fragment() && key.icmp_type >= 133 &&
         key.icmp_type <= 137;
}

}  // namespace

bool IsNeighborDiscoveryOrMld(const PacketKey& key) {
  if (key.family != 6 || key.proto != kIcmpv6 || key.is_fragment()) return false;
  uint8_t type = key.icmp_type;
  return (type >= 133 && type <= 137) || (type >= 130 && type <= 132) || type == 143;
}

bool IsExemptFromVm(const PacketKey& key) {
  if (key.family == 4) return IsUdp(key, 68, 67);
  bool link_local = IsLinkLocalV6(key.src);
  if (link_local && IsUdp(key, 546, 547)) return true;
  return (link_local || IsUnspecified(key.src)) && IsNeighborDiscoveryOrMld(key);
}

bool IsExemptToVm(const PacketKey& key) {
  if (key.family == 4) return IsUdp(key, 67, 68);
  return IsUdp(key, 547, 546) || IsNeighborDiscovery(key);
}

bool SourceIsVnicAddress(const std::vector<IpBytes>& vnic_ips, const IpBytes& source) {
  // A vnic has a handful of addresses: a scan beats a search until there are many.
  if (vnic_ips.size() <= 8) {
    for (const IpBytes& ip : vnic_ips) {
      if (ip == source) return true;
    }
    return false;
  }
  return std::binary_search(vnic_ips.begin(), vnic_ips.end(), source);
}

}  // namespace butterfly
