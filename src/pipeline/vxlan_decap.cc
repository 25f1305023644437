#include "pipeline/vxlan_decap.h"

namespace butterfly {
namespace {

constexpr uint32_t kIpOffset = sizeof(EthernetHeader);

// Where the UDP header starts and where the IP packet ends, once the outer IP header is checked;
// nullopt (with `*reason`) when the packet is not a tunnel packet for this VTEP.
struct OuterIp {
  uint32_t udp_offset;
  uint32_t end;  // offset one past the IP packet (Ethernet padding excluded)
  VtepIp src;
};

std::optional<OuterIp> CheckIpv4(const rte_mbuf* packet, const UnderlayInfo& underlay,
                                 DropReason* reason) {
  uint32_t length = packet->data_len;
  if (length < kIpOffset + sizeof(Ipv4Header)) return std::nullopt;
  const auto* ip = rte_pktmbuf_mtod_offset(packet, const Ipv4Header*, kIpOffset);
  if ((ip->version_ihl >> 4) != 4 || ip->protocol != kIpProtoUdp) return std::nullopt;
  bool multicast = (ntohl(ip->dst) >> 28) == 0xe;
  if (ip->dst != Ipv4OfVtep(underlay.vtep_ip) && !multicast) return std::nullopt;
  uint32_t header_length = (ip->version_ihl & 0x0f) * 4u;
  uint32_t total_length = ntohs(ip->total_length);
  *reason = DropReason::kMalformed;
  if (header_length < sizeof(Ipv4Header) || total_length < header_length ||
      kIpOffset + total_length > packet->pkt_len) {
    return std::nullopt;
  }
  if ((ntohs(ip->fragment) & 0x3fff) != 0) return std::nullopt;  // fragmented tunnel packets
  if (length < kIpOffset + header_length || ChecksumFinish(ChecksumAdd(ip, header_length)) != 0) {
    return std::nullopt;
  }
  return OuterIp{kIpOffset + header_length, kIpOffset + total_length, VtepOfIpv4(ip->src)};
}

std::optional<OuterIp> CheckIpv6(const rte_mbuf* packet, const UnderlayInfo& underlay,
                                 DropReason* reason) {
  if (packet->data_len < kIpOffset + sizeof(Ipv6Header)) return std::nullopt;
  const auto* ip = rte_pktmbuf_mtod_offset(packet, const Ipv6Header*, kIpOffset);
  // No extension headers: VTEPs send none (a fragment header would mean a fragmented tunnel
  // packet, which is dropped like its IPv4 counterpart).
  if ((ntohl(ip->version_class_flow) >> 28) != 6 || ip->next_header != kIpProtoUdp) {
    return std::nullopt;
  }
  if (ip->dst != underlay.vtep_ip && ip->dst[0] != 0xff) return std::nullopt;
  uint32_t end = kIpOffset + sizeof(Ipv6Header) + ntohs(ip->payload_length);
  *reason = DropReason::kMalformed;
  if (end > packet->pkt_len) return std::nullopt;
  return OuterIp{kIpOffset + static_cast<uint32_t>(sizeof(Ipv6Header)), end, ip->src};
}

}  // namespace

std::optional<DecapResult> VxlanDecap(rte_mbuf* packet, const UnderlayInfo& underlay,
                                      DropReason* reason) {
  *reason = DropReason::kNotVxlan;
  auto outer =
      underlay.ipv6 ? CheckIpv6(packet, underlay, reason) : CheckIpv4(packet, underlay, reason);
  if (!outer) return std::nullopt;
  *reason = DropReason::kMalformed;
  if (packet->data_len < outer->udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader) ||
      outer->end < outer->udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader)) {
    return std::nullopt;
  }
  const auto* udp = rte_pktmbuf_mtod_offset(packet, const UdpHeader*, outer->udp_offset);
  if (ntohs(udp->dst_port) != underlay.vxlan_port) {
    *reason = DropReason::kNotVxlan;
    return std::nullopt;
  }
  const auto* vxlan =
      rte_pktmbuf_mtod_offset(packet, const VxlanHeader*, outer->udp_offset + sizeof(UdpHeader));
  if (!(ntohl(vxlan->flags) & kVxlanFlagVni)) {
    *reason = DropReason::kBadVxlan;
    return std::nullopt;
  }
  uint32_t inner_offset = outer->udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader);
  uint32_t inner_length = outer->end - inner_offset;
  if (inner_length < sizeof(EthernetHeader)) return std::nullopt;  // kMalformed
  DecapResult result{ntohl(vxlan->vni) >> 8, outer->src,
                     rte_pktmbuf_mtod(packet, const EthernetHeader*)->src};
  // Ethernet padding after the IP packet, if any, goes with the outer headers.
  rte_pktmbuf_adj(packet, static_cast<uint16_t>(inner_offset));
  if (packet->pkt_len > inner_length) rte_pktmbuf_trim(packet, packet->pkt_len - inner_length);
  return result;
}

}  // namespace butterfly
