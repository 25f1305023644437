// Stage: the VTEP's own traffic on the underlay. Answers ARP requests for the VTEP address, learns
// neighbours from ARP (so remote VTEPs on the same segment need no static configuration), and
// builds the ARP requests and IGMP membership reports the workers send.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/forwarding_table.h"

namespace butterfly {

struct ArpOutcome {
  bool reply = false;      // the mbuf now holds the reply: transmit it
  bool learn = false;      // the sender is a neighbour: learn sender_ip -> sender_mac
  uint32_t sender_ip = 0;  // network order
  MacBytes sender_mac{};
};

// Handles an ARP frame received on the underlay; rewrites it in place into the reply when it asks
// for the VTEP.
ArpOutcome HandleUnderlayArp(rte_mbuf* frame, const UnderlayInfo& underlay);

// A broadcast ARP request for `target` (network order), or nullptr without buffers.
rte_mbuf* BuildArpRequest(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t target);

// An IGMPv2 membership report for `group` (network order), or nullptr without buffers.
rte_mbuf* BuildIgmpReport(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t group);

}  // namespace butterfly
