// Stage: what a VM may send. Always: its own source MAC, never RARP.
// With ip_anti_spoof: ARP sender MAC/IP and IPv6 neighbour discovery (source link-layer option,
// advertised target) must be the vnic's. The source IP of IP packets is the filter's business.
#pragma once

#include <rte_mbuf.h>

#include <optional>

#include "pipeline/counters.h"
#include "pipeline/vnic_port.h"

namespace butterfly {

// Nothing when the frame may go on; otherwise why it is dropped.
std::optional<DropReason> CheckAntispoof(const rte_mbuf* frame, const VnicSettings& vnic);
// The stage over a burst of `vnic`'s frames: fate[i] is kKeep, or why frames[i] is dropped.
void AntispoofBurst(rte_mbuf* const* frames, uint16_t n, const VnicSettings& vnic,
                    DropReason* fate);

}  // namespace butterfly
