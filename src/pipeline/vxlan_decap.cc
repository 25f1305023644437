#include "pipeline/vxlan_decap.h"

#include <rte_prefetch.h>

namespace butterfly {
namespace {

constexpr uint32_t kIpOffset = sizeof(EthernetHeader);

// Checks the outer IP header of a tunnel packet for this VTEP; on success sets where the UDP header
// starts, where the IP packet ends (Ethernet padding excluded) and the sending VTEP. False (with
// `*reason`) when it is not one. Out-parameters, not a returned struct: the worker reads the
// address back as words right away, and a struct assembled on the stack stalled those loads.
bool CheckIpv4(const rte_mbuf* packet, const UnderlayInfo& underlay, DropReason* reason,
               uint32_t* udp_offset, uint32_t* end, VtepIp* src) {
  uint32_t length = packet->data_len;
  if (length < kIpOffset + sizeof(Ipv4Header)) return false;
  // Not IPv4 (another protocol, a VLAN tag) whatever the bytes that follow look like.
  if (rte_pktmbuf_mtod(packet, const EthernetHeader*)->ether_type != htons(kEthTypeIpv4)) {
    return false;
  }
  const auto* ip = rte_pktmbuf_mtod_offset(packet, const Ipv4Header*, kIpOffset);
  if ((ip->version_ihl >> 4) != 4 || ip->protocol != kProtoUdp) return false;
  bool multicast = (ntohl(ip->dst) >> 28) == 0xe;
  if (ip->dst != Ipv4OfVtep(underlay.vtep_ip) && !multicast) return false;
  uint32_t header_length = (ip->version_ihl & 0x0f) * 4u;
  uint32_t total_length = ntohs(ip->total_length);
  *reason = DropReason::kMalformed;
  if (header_length < sizeof(Ipv4Header) || total_length < header_length ||
      kIpOffset + total_length > packet->pkt_len) {
    return false;
  }
  if ((ntohs(ip->fragment) & 0x3fff) != 0) return false;  // fragmented tunnel packets
  if (length < kIpOffset + header_length || ChecksumFinish(ChecksumAdd(ip, header_length)) != 0) {
    return false;
  }
  *udp_offset = kIpOffset + header_length;
  *end = kIpOffset + total_length;
  *src = VtepOfIpv4(ip->src);
  return true;
}

bool CheckIpv6(const rte_mbuf* packet, const UnderlayInfo& underlay, DropReason* reason,
               uint32_t* udp_offset, uint32_t* end, VtepIp* src) {
  if (packet->data_len < kIpOffset + sizeof(Ipv6Header)) return false;
  if (rte_pktmbuf_mtod(packet, const EthernetHeader*)->ether_type != htons(kEthTypeIpv6)) {
    return false;
  }
  const auto* ip = rte_pktmbuf_mtod_offset(packet, const Ipv6Header*, kIpOffset);
  // No extension headers: VTEPs send none (a fragment header would mean a fragmented tunnel
  // packet, which is dropped like its IPv4 counterpart).
  if ((ntohl(ip->version_class_flow) >> 28) != 6 || ip->next_header != kProtoUdp) return false;
  if (!SameVtep(ip->dst, underlay.vtep_ip) && ip->dst[0] != 0xff) return false;
  *end = kIpOffset + sizeof(Ipv6Header) + ntohs(ip->payload_length);
  *reason = DropReason::kMalformed;
  if (*end > packet->pkt_len) return false;
  *udp_offset = kIpOffset + sizeof(Ipv6Header);
  *src = ip->src;
  return true;
}

}  // namespace

bool VxlanDecap(rte_mbuf* packet, const UnderlayInfo& underlay, DecapResult* result,
                DropReason* reason) {
  *reason = DropReason::kNotVxlan;
  uint32_t udp_offset = 0;
  uint32_t end = 0;
  bool tunnel = underlay.ipv6
                    ? CheckIpv6(packet, underlay, reason, &udp_offset, &end, &result->outer_src)
                    : CheckIpv4(packet, underlay, reason, &udp_offset, &end, &result->outer_src);
  if (!tunnel) return false;
  *reason = DropReason::kMalformed;
  uint32_t inner_offset = udp_offset + sizeof(UdpHeader) + sizeof(VxlanHeader);
  if (packet->data_len < inner_offset || end < inner_offset) return false;
  const auto* udp = rte_pktmbuf_mtod_offset(packet, const UdpHeader*, udp_offset);
  if (ntohs(udp->dst_port) != underlay.vxlan_port) {
    *reason = DropReason::kNotVxlan;
    return false;
  }
  const auto* vxlan =
      rte_pktmbuf_mtod_offset(packet, const VxlanHeader*, udp_offset + sizeof(UdpHeader));
  if (!(ntohl(vxlan->flags) & kVxlanFlagVni)) {
    *reason = DropReason::kBadVxlan;
    return false;
  }
  uint32_t inner_length = end - inner_offset;
  if (inner_length < sizeof(EthernetHeader)) return false;  // kMalformed
  result->vni = ntohl(vxlan->vni) >> 8;
  result->outer_src_mac = rte_pktmbuf_mtod(packet, const EthernetHeader*)->src;
  // Ethernet padding after the IP packet, if any, goes with the outer headers.
  rte_pktmbuf_adj(packet, static_cast<uint16_t>(inner_offset));
  if (packet->pkt_len > inner_length) rte_pktmbuf_trim(packet, packet->pkt_len - inner_length);
  return true;
}

void VxlanDecapBurst(rte_mbuf* const* packets, uint16_t n, const ForwardingTable& table,
                     DecapResult* tunnels, const VniForwarding** vnis, DropReason* fate) {
  for (uint16_t i = 0; i < n; ++i) {
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(packets[i + 1], void*));
    if (!VxlanDecap(packets[i], table.underlay, &tunnels[i], &fate[i])) continue;
    vnis[i] = table.FindVni(tunnels[i].vni);
    fate[i] = vnis[i] ? kKeep : DropReason::kUnknownVni;
  }
}

}  // namespace butterfly
