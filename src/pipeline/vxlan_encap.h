// Stage: VXLAN encapsulation (RFC 7348): outer headers prepended in the mbuf's headroom, the UDP
// source port taken from the inner flow's hash (ECMP entropy). Over IPv4 the outer header
// checksum is computed and the UDP checksum is zero, as RFC 7348 recommends; over IPv6 (the
// underlay's family follows the VTEP address) the UDP checksum covers the whole packet, as
// receivers such as Linux require by default, and the flow label carries the hash too.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>

#include "pipeline/counters.h"
#include "pipeline/forwarding_table.h"

namespace butterfly {

inline uint32_t VxlanOverhead(const UnderlayInfo& underlay) {
  return static_cast<uint32_t>(underlay.ipv6 ? kVxlanIpv6Overhead : kVxlanIpv4Overhead);
}

// Frames longer than this (inner Ethernet header included) do not fit the tunnel.
inline uint32_t MaxInnerFrame(const UnderlayInfo& underlay) {
  return underlay.mtu - (VxlanOverhead(underlay) - sizeof(EthernetHeader));
}

// Encapsulates `frame` for `vni` towards `vtep` reached through `next_hop`. Returns why it could
// not (too big, no headroom); the frame is then unchanged.
std::optional<DropReason> VxlanEncap(rte_mbuf* frame, uint32_t vni, const VtepIp& vtep,
                                     const MacBytes& next_hop, const UnderlayInfo& underlay,
                                     uint16_t ip_id);

// Where the encapsulation stage sends a frame: the VNI, the remote VTEP (in the published table)
// and the underlay next hop's MAC.
struct EncapTarget {
  uint32_t vni = 0;
  MacBytes next_hop{};
  const VtepIp* vtep = nullptr;
};

// The stage over a burst: frames[i] encapsulated towards targets[i]; fate[i] is kKeep, or why
// it could not be. `ip_id` is the next outer IPv4 identification, advanced per frame.
void VxlanEncapBurst(rte_mbuf* const* frames, uint16_t n, const EncapTarget* targets,
                     const UnderlayInfo& underlay, uint16_t* ip_id, DropReason* fate);

}  // namespace butterfly
