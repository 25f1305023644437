// Traffic a vnic needs whatever its security groups say, so that DHCP and IPv6 work with any
// group: DHCP and DHCPv6 between client and server, IPv6 neighbour discovery and MLD. Whether the
// frames themselves are honest (ND targets, link-layer options) is the antispoof stage's business.
#pragma once

#include <vector>

#include "core/model.h"
#include "jit/packet_key.h"

namespace butterfly {

// Passes whatever the rules, antispoof included: DHCP client requests (UDP 68->67 from any
// source, DHCPv6 546->547 from link-local), ND and MLD from a link-local or unspecified source.
bool IsExemptFromVm(const PacketKey& key);

// Passes whatever the rules once the source address is known to be the vnic's: ND and MLD.
bool IsNeighborDiscoveryOrMld(const PacketKey& key);

// Passes whatever the rules: DHCP replies (UDP 67->68, 547->546) and ND (ICMPv6 133-137).
bool IsExemptToVm(const PacketKey& key);

// True when `source` is one of `vnic_ips` (the vnic's addresses of the packet's family, sorted).
bool SourceIsVnicAddress(const std::vector<IpBytes>& vnic_ips, const IpBytes& source);

}  // namespace butterfly
