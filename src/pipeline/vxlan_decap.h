// Stage: VXLAN decapsulation (RFC 7348) of what arrives on the underlay for this VTEP: outer
// Ethernet/IP/UDP/VXLAN checked and stripped, leaving the inner frame. The outer IP family is the
// underlay's (that of the VTEP address); over IPv4 the header checksum is checked, over IPv6 the
// UDP checksum is not (the inner frame carries its own).
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/counters.h"
#include "pipeline/forwarding_table.h"

namespace butterfly {

struct DecapResult {
  uint32_t vni = 0;
  VtepIp outer_src{};        // the sending VTEP
  MacBytes outer_src_mac{};  // its MAC, or the router's before it: the next hop back to it
};

// On success (true) the mbuf holds the inner frame and `*result` describes it; otherwise it is
// untouched and `*reason` says why. (An out-parameter: GCC assembled a returned optional on the
// stack with narrow stores and read it back wide, which stalled every packet.)
bool VxlanDecap(rte_mbuf* packet, const UnderlayInfo& underlay, DecapResult* result,
                DropReason* reason);

// The stage over a burst of underlay packets: fate[i] is kKeep, or why packets[i] is dropped (a
// VNI without a vnic here included). For a kept packet, tunnels[i] says where it came from and
// vnis[i] is its VNI's forwarding.
void VxlanDecapBurst(rte_mbuf* const* packets, uint16_t n, const ForwardingTable& table,
                     DecapResult* tunnels, const VniForwarding** vnis, DropReason* fate);

}  // namespace butterfly
