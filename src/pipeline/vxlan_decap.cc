#include "pipeline/vxlan_decap.h"

namespace butterfly {

std::optional<DecapResult> VxlanDecap(rte_mbuf* packet, const UnderlayInfo& underlay,
                                      DropReason* reason) {
  constexpr uint32_t kIpOffset = sizeof(EthernetHeader);
  uint32_t length = packet->data_len;
  *reason = DropReason::kNotVxlan;
  if (length < kIpOffset + sizeof(Ipv4Header)) return std::nullopt;
  const auto* ip = rte_pktmbuf_mtod_offset(packet, const Ipv4Header*, kIpOffset);
  if ((ip->version_ihl >> 4) != 4 || ip->protocol != kIpProtoUdp) return std::nullopt;
  bool multicast = (ntohl(ip->dst) >> 28) == 0xe;
  if (ip->dst != underlay.vtep_ip && !multicast) return std::nullopt;
  uint32_t header_length = (ip->version_ihl & 0x0f) * 4u;
  uint32_t total_length = ntohs(ip->total_length);
  *reason = DropReason::kMalformed;
  if (header_length < sizeof(Ipv4Header) || total_length < header_length ||
      kIpOffset + total_length > packet->pkt_len) {
    return std::nullopt;
  }
  if ((ntohs(ip->fragment) & 0x3fff) != 0) return std::nullopt;  // fragmented tunnel packets
  uint32_t udp_offset = kIpOffset + header_length;
  if (length < udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader) ||
      ChecksumFinish(ChecksumAdd(ip, header_length)) != 0) {
    return std::nullopt;
  }
  const auto* udp = rte_pktmbuf_mtod_offset(packet, const UdpHeader*, udp_offset);
  if (ntohs(udp->dst_port) != underlay.vxlan_port) {
    *reason = DropReason::kNotVxlan;
    return std::nullopt;
  }
  const auto* vxlan =
      rte_pktmbuf_mtod_offset(packet, const VxlanHeader*, udp_offset + sizeof(UdpHeader));
  if (!(ntohl(vxlan->flags) & kVxlanFlagVni)) {
    *reason = DropReason::kBadVxlan;
    return std::nullopt;
  }
  uint32_t inner_offset = udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader);
  uint32_t inner_length = kIpOffset + total_length - inner_offset;
  if (inner_length < sizeof(EthernetHeader)) return std::nullopt;  // kMalformed
  DecapResult result{ntohl(vxlan->vni) >> 8, ip->src,
                     rte_pktmbuf_mtod(packet, const EthernetHeader*)->src};
  // Ethernet padding after the IP packet, if any, goes with the outer headers.
  rte_pktmbuf_adj(packet, static_cast<uint16_t>(inner_offset));
  if (packet->pkt_len > inner_length) rte_pktmbuf_trim(packet, packet->pkt_len - inner_length);
  return result;
}

}  // namespace butterfly
