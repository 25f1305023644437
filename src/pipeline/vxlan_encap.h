// Stage: VXLAN encapsulation (RFC 7348) over IPv4: outer headers prepended in the mbuf's
// headroom, the UDP source port taken from the inner flow's hash (ECMP entropy), the outer IPv4
// checksum computed (the UDP checksum is zero, as RFC 7348 recommends over IPv4).
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>

#include "pipeline/counters.h"
#include "pipeline/forwarding_table.h"

namespace butterfly {

// Frames longer than this (inner Ethernet header included) do not fit the tunnel.
inline uint32_t MaxInnerFrame(const UnderlayInfo& underlay) {
  return underlay.mtu - (kVxlanIpv4Overhead - sizeof(EthernetHeader));
}

// Encapsulates `frame` for `vni` towards `vtep` (network order) reached through `next_hop`.
// Returns why it could not (too big, no headroom); the frame is then unchanged.
std::optional<DropReason> VxlanEncap(rte_mbuf* frame, uint32_t vni, uint32_t vtep,
                                     const MacBytes& next_hop, const UnderlayInfo& underlay,
                                     uint16_t ip_id);

}  // namespace butterfly
