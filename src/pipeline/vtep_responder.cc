#include "pipeline/vtep_responder.h"

#include <cstring>

#include "pipeline/frame.h"

namespace butterfly {

ArpOutcome HandleUnderlayArp(rte_mbuf* frame, const UnderlayInfo& underlay) {
  ArpOutcome outcome;
  if (frame->data_len < sizeof(EthernetHeader) + sizeof(ArpHeader)) return outcome;
  auto* ethernet = rte_pktmbuf_mtod(frame, EthernetHeader*);
  auto* arp = reinterpret_cast<ArpHeader*>(ethernet + 1);
  if (ntohs(arp->hardware_type) != 1 || ntohs(arp->protocol_type) != kEthTypeIpv4 ||
      arp->hardware_size != 6 || arp->protocol_size != 4) {
    return outcome;
  }
  uint16_t opcode = ntohs(arp->opcode);
  // Learn from requests and replies aimed at us (and gratuitous ones), never from ourselves.
  bool for_us = arp->target_ip == underlay.vtep_ip;
  bool gratuitous = arp->sender_ip == arp->target_ip;
  if (arp->sender_ip != 0 && arp->sender_ip != underlay.vtep_ip && (for_us || gratuitous) &&
      !IsMulticastMac(arp->sender_mac.data())) {
    outcome.learn = true;
    outcome.sender_ip = arp->sender_ip;
    outcome.sender_mac = arp->sender_mac;
  }
  if (opcode == kArpRequest && for_us) {
    arp->opcode = htons(kArpReply);
    arp->target_mac = arp->sender_mac;
    arp->target_ip = arp->sender_ip;
    arp->sender_mac = underlay.mac;
    arp->sender_ip = underlay.vtep_ip;
    ethernet->dst = arp->target_mac;
    ethernet->src = underlay.mac;
    outcome.reply = true;
  }
  return outcome;
}

rte_mbuf* BuildArpRequest(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t target) {
  rte_mbuf* frame = rte_pktmbuf_alloc(pool);
  if (!frame) return nullptr;
  auto* ethernet = reinterpret_cast<EthernetHeader*>(
      rte_pktmbuf_append(frame, sizeof(EthernetHeader) + sizeof(ArpHeader)));
  ethernet->dst = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  ethernet->src = underlay.mac;
  ethernet->ether_type = htons(kEthTypeArp);
  auto* arp = reinterpret_cast<ArpHeader*>(ethernet + 1);
  arp->hardware_type = htons(1);
  arp->protocol_type = htons(kEthTypeIpv4);
  arp->hardware_size = 6;
  arp->protocol_size = 4;
  arp->opcode = htons(kArpRequest);
  arp->sender_mac = underlay.mac;
  arp->sender_ip = underlay.vtep_ip;
  arp->target_mac = {};
  arp->target_ip = target;
  return frame;
}

rte_mbuf* BuildIgmpReport(rte_mempool* pool, const UnderlayInfo& underlay, uint32_t group) {
  rte_mbuf* frame = rte_pktmbuf_alloc(pool);
  if (!frame) return nullptr;
  constexpr uint32_t kRouterAlertLength = 4;
  uint32_t length =
      sizeof(EthernetHeader) + sizeof(Ipv4Header) + kRouterAlertLength + sizeof(IgmpV2Report);
  auto* bytes =
      reinterpret_cast<uint8_t*>(rte_pktmbuf_append(frame, static_cast<uint16_t>(length)));
  auto* ethernet = reinterpret_cast<EthernetHeader*>(bytes);
  ethernet->dst = MulticastMacOfIpv4(ntohl(group));
  ethernet->src = underlay.mac;
  ethernet->ether_type = htons(kEthTypeIpv4);
  auto* ip = reinterpret_cast<Ipv4Header*>(bytes + sizeof(EthernetHeader));
  ip->version_ihl = 0x46;  // with the Router Alert option IGMP requires (RFC 2236)
  ip->tos = 0xc0;
  ip->total_length = htons(static_cast<uint16_t>(length - sizeof(EthernetHeader)));
  ip->id = 0;
  ip->fragment = 0;
  ip->ttl = 1;
  ip->protocol = kIpProtoIgmp;
  ip->src = underlay.vtep_ip;
  ip->dst = group;
  uint8_t* router_alert = reinterpret_cast<uint8_t*>(ip + 1);
  router_alert[0] = 0x94;
  router_alert[1] = 0x04;
  router_alert[2] = 0;
  router_alert[3] = 0;
  ip->checksum = 0;
  ip->checksum = ChecksumFinish(ChecksumAdd(ip, sizeof(Ipv4Header) + kRouterAlertLength));
  auto* igmp = reinterpret_cast<IgmpV2Report*>(router_alert + kRouterAlertLength);
  igmp->type = 0x16;
  igmp->max_response_time = 0;
  igmp->group = group;
  igmp->checksum = 0;
  igmp->checksum = ChecksumFinish(ChecksumAdd(igmp, sizeof(IgmpV2Report)));
  return frame;
}

}  // namespace butterfly
