#include "pipeline/vxlan_encap.h"

#include "pipeline/frame.h"

namespace butterfly {

std::optional<DropReason> VxlanEncap(rte_mbuf* frame, uint32_t vni, uint32_t vtep,
                                     const MacBytes& next_hop, const UnderlayInfo& underlay,
                                     uint16_t ip_id) {
  uint32_t inner_length = frame->pkt_len;
  if (inner_length > MaxInnerFrame(underlay)) return DropReason::kMtu;
  uint32_t hash = InnerFlowHash(rte_pktmbuf_mtod(frame, const uint8_t*), frame->data_len);
  auto* outer = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(frame, kVxlanIpv4Overhead));
  if (!outer) return DropReason::kNoBuffer;

  auto* ethernet = reinterpret_cast<EthernetHeader*>(outer);
  ethernet->dst = next_hop;
  ethernet->src = underlay.mac;
  ethernet->ether_type = htons(kEthTypeIpv4);

  auto* ip = reinterpret_cast<Ipv4Header*>(outer + sizeof(EthernetHeader));
  ip->version_ihl = 0x45;
  ip->tos = 0;
  ip->total_length =
      htons(static_cast<uint16_t>(inner_length + kVxlanIpv4Overhead - sizeof(EthernetHeader)));
  ip->id = htons(ip_id);
  ip->fragment = htons(kIpv4DontFragment);
  ip->ttl = 64;
  ip->protocol = kIpProtoUdp;
  ip->src = underlay.vtep_ip;
  ip->dst = vtep;
  ip->checksum = 0;
  ip->checksum = Ipv4HeaderChecksum(*ip);

  auto* udp = reinterpret_cast<UdpHeader*>(outer + sizeof(EthernetHeader) + sizeof(Ipv4Header));
  // The dynamic range 49152-65535, as RFC 7348 recommends.
  udp->src_port = htons(static_cast<uint16_t>(49152 + (hash % 16384)));
  udp->dst_port = htons(underlay.vxlan_port);
  udp->length =
      htons(static_cast<uint16_t>(inner_length + sizeof(UdpHeader) + sizeof(VxlanHeader)));
  udp->checksum = 0;

  auto* vxlan = reinterpret_cast<VxlanHeader*>(udp + 1);
  vxlan->flags = htonl(kVxlanFlagVni);
  vxlan->vni = htonl(vni << 8);
  return std::nullopt;
}

}  // namespace butterfly
