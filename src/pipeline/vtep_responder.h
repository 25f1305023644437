// Stage: the VTEP's own traffic on the underlay. Answers ARP requests (IPv4 VTEP) or neighbour
// solicitations (IPv6 VTEP, RFC 4861) for the VTEP address, learns neighbours from them (so remote
// VTEPs on the same segment need no static configuration), and builds the ARP requests, neighbour
// solicitations and IGMP membership reports the workers send.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/forwarding_table.h"

namespace butterfly {

struct ArpOutcome {
  bool reply = false;  // the mbuf now holds the reply: transmit it
  bool learn = false;  // the sender is a neighbour: learn sender_ip -> sender_mac
  VtepIp sender_ip{};
  MacBytes sender_mac{};
};

// Handles an ARP frame received on the underlay; rewrites it in place into the reply when it asks
// for the VTEP.
ArpOutcome HandleUnderlayArp(rte_mbuf* frame, const UnderlayInfo& underlay);

// A broadcast ARP request for `target` (network order), or nullptr without buffers.
rte_mbuf* BuildArpRequest(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t target);

// Whether an underlay frame is ICMPv6 neighbour discovery (solicitation or advertisement).
bool IsNeighborDiscovery(const rte_mbuf* frame);
// Handles a neighbour solicitation or advertisement received on an IPv6 underlay (checked: hop
// limit 255, ICMPv6 checksum); rewrites a solicitation for the VTEP address in place into the
// advertisement that answers it.
ArpOutcome HandleUnderlayNdp(rte_mbuf* frame, const UnderlayInfo& underlay);
// A neighbour solicitation for `target`, to its solicited-node group, or nullptr without buffers.
rte_mbuf* BuildNeighborSolicitation(rte_mempool* pool, const UnderlayInfo& underlay,
                                    const VtepIp& target);

// The stage over the underlay's ARP (IPv4 VTEP) or neighbour discovery (IPv6 VTEP) frames of a
// burst: outcomes[i] says what became of frames[i].
void HandleNeighborDiscoveryBurst(rte_mbuf* const* frames, uint16_t n, const UnderlayInfo& underlay,
                                  ArpOutcome* outcomes);

// An IGMPv2 membership report for `group` (network order), or nullptr without buffers.
rte_mbuf* BuildIgmpReport(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t group);

}  // namespace butterfly
