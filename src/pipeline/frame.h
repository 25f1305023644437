// Small helpers over Ethernet frames held in mbufs: header access, parsing into the filter's
// PacketKey, and the inner-flow hash that picks a VXLAN source port.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "core/packet_headers.h"
#include "pipeline/packet_parser.h"

namespace butterfly {

// Metadata kept in each mbuf's private area (the pool is created with room for it).
struct MbufMeta {
  uint32_t vnic_index;    // the destination vnic, for a handoff between workers
  uint32_t opener_index;  // the vnic its flows are charged to (Worker::Pending::opener)
};

inline MbufMeta* MetaOf(rte_mbuf* mbuf) { return static_cast<MbufMeta*>(rte_mbuf_to_priv(mbuf)); }

inline const EthernetHeader* EthernetOf(const rte_mbuf* mbuf) {
  return rte_pktmbuf_mtod(mbuf, const EthernetHeader*);
}

// The ether type in host order (0 when the frame is shorter than an Ethernet header).
inline uint16_t EtherTypeOf(const rte_mbuf* mbuf) {
  if (mbuf->data_len < sizeof(EthernetHeader)) return 0;
  return ntohs(EthernetOf(mbuf)->ether_type);
}

// Parses the IP packet of an Ethernet frame into `key` (headers must be in the first segment).
ParseStatus ParseFrame(const rte_mbuf* mbuf, PacketKey* key);

// A hash of the frame's flow (addresses, protocol, ports; MACs for non-IP) that is the same for
// every packet of the flow: the VXLAN source port, so ECMP keeps a flow on one path.
uint32_t InnerFlowHash(const uint8_t* frame, uint32_t length);

}  // namespace butterfly
