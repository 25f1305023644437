// Stage: VXLAN decapsulation (RFC 7348) of what arrives on the underlay for this VTEP: outer
// Ethernet/IPv4/UDP/VXLAN checked and stripped, leaving the inner frame.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>

#include "pipeline/counters.h"
#include "pipeline/forwarding_table.h"

namespace butterfly {

struct DecapResult {
  uint32_t vni = 0;
  uint32_t outer_src = 0;    // the sending VTEP, network order
  MacBytes outer_src_mac{};  // its MAC, or the router's before it: the next hop back to it
};

// On success the mbuf holds the inner frame; otherwise it is untouched and `*reason` says why.
std::optional<DecapResult> VxlanDecap(rte_mbuf* packet, const UnderlayInfo& underlay,
                                      DropReason* reason);

}  // namespace butterfly
