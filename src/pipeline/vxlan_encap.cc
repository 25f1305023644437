#include "pipeline/vxlan_encap.h"

#include <rte_ip.h>

#include "pipeline/frame.h"

namespace butterfly {
namespace {

void FillIpv4(uint8_t* at, uint32_t inner_length, const VtepIp& vtep, const UnderlayInfo& underlay,
              uint16_t ip_id) {
  auto* ip = reinterpret_cast<Ipv4Header*>(at);
  ip->version_ihl = 0x45;
  ip->tos = 0;
  ip->total_length =
      htons(static_cast<uint16_t>(inner_length + kVxlanIpv4Overhead - sizeof(EthernetHeader)));
  ip->id = htons(ip_id);
  ip->fragment = htons(kIpv4DontFragment);
  ip->ttl = 64;
  ip->protocol = kProtoUdp;
  ip->src = Ipv4OfVtep(underlay.vtep_ip);
  ip->dst = Ipv4OfVtep(vtep);
  ip->checksum = 0;
  ip->checksum = Ipv4HeaderChecksum(*ip);
}

void FillIpv6(uint8_t* at, uint32_t udp_length, const VtepIp& vtep, const UnderlayInfo& underlay,
              uint32_t hash) {
  auto* ip = reinterpret_cast<Ipv6Header*>(at);
  ip->version_class_flow = htonl(6u << 28 | (hash & 0xfffff));
  ip->payload_length = htons(static_cast<uint16_t>(udp_length));
  ip->next_header = kProtoUdp;
  ip->hop_limit = 64;
  ip->src = underlay.vtep_ip;
  ip->dst = vtep;
}

}  // namespace

std::optional<DropReason> VxlanEncap(rte_mbuf* frame, uint32_t vni, const VtepIp& vtep,
                                     const MacBytes& next_hop, const UnderlayInfo& underlay,
                                     uint16_t ip_id) {
  uint32_t inner_length = frame->pkt_len;
  if (inner_length > MaxInnerFrame(underlay)) return DropReason::kMtu;
  uint32_t hash = InnerFlowHash(rte_pktmbuf_mtod(frame, const uint8_t*), frame->data_len);
  uint32_t overhead = VxlanOverhead(underlay);
  auto* outer = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(frame, overhead));
  if (!outer) return DropReason::kNoBuffer;

  auto* ethernet = reinterpret_cast<EthernetHeader*>(outer);
  ethernet->dst = next_hop;
  ethernet->src = underlay.mac;
  ethernet->ether_type = htons(underlay.ipv6 ? kEthTypeIpv6 : kEthTypeIpv4);

  uint32_t ip_length = underlay.ipv6 ? sizeof(Ipv6Header) : sizeof(Ipv4Header);
  uint32_t udp_length = inner_length + sizeof(UdpHeader) + sizeof(VxlanHeader);
  auto* udp = reinterpret_cast<UdpHeader*>(outer + sizeof(EthernetHeader) + ip_length);
  // The dynamic range 49152-65535, as RFC 7348 recommends.
  udp->src_port = htons(static_cast<uint16_t>(49152 + (hash % 16384)));
  udp->dst_port = htons(underlay.vxlan_port);
  udp->length = htons(static_cast<uint16_t>(udp_length));
  udp->checksum = 0;

  auto* vxlan = reinterpret_cast<VxlanHeader*>(udp + 1);
  vxlan->flags = htonl(kVxlanFlagVni);
  vxlan->vni = htonl(vni << 8);

  if (!underlay.ipv6) {
    FillIpv4(outer + sizeof(EthernetHeader), inner_length, vtep, underlay, ip_id);
    return std::nullopt;
  }
  auto* ip = outer + sizeof(EthernetHeader);
  FillIpv6(ip, udp_length, vtep, underlay, hash);
  // Over the pseudo-header, the UDP and VXLAN headers and the inner frame, whatever its segments.
  uint32_t sum = Ipv6PseudoHeaderSum(*reinterpret_cast<Ipv6Header*>(ip), udp_length, kProtoUdp);
  uint32_t udp_offset = sizeof(EthernetHeader) + sizeof(Ipv6Header);
  uint16_t payload_sum = 0;
  if (rte_raw_cksum_mbuf(frame, udp_offset, udp_length, &payload_sum) != 0) {
    return DropReason::kMalformed;  // cannot happen: the lengths come from the mbuf
  }
  // rte_raw_cksum_mbuf sums 16-bit words in host order, ChecksumAdd in network order: a
  // one's-complement sum of byte-swapped words is the byte-swapped sum.
  sum += rte_be_to_cpu_16(payload_sum);
  uint16_t checksum = ChecksumFinish(sum);
  udp->checksum = checksum == 0 ? 0xffff : checksum;  // 0 would mean "no checksum" (RFC 768)
  return std::nullopt;
}

void VxlanEncapBurst(rte_mbuf* const* frames, uint16_t n, const EncapTarget* targets,
                     const UnderlayInfo& underlay, uint16_t* ip_id, DropReason* fate) {
  uint16_t next_ip_id = *ip_id;
  for (uint16_t i = 0; i < n; ++i) {
    const EncapTarget& target = targets[i];
    std::optional<DropReason> reason =
        VxlanEncap(frames[i], target.vni, *target.vtep, target.next_hop, underlay, next_ip_id++);
    fate[i] = reason ? *reason : kKeep;
  }
  *ip_id = next_ip_id;
}

}  // namespace butterfly
