#include "pipeline/vtep_responder.h"

#include <cstring>
#include <optional>

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
  uint32_t vtep_ip = Ipv4OfVtep(underlay.vtep_ip);
  bool for_us = arp->target_ip == vtep_ip;
  bool gratuitous = arp->sender_ip == arp->target_ip;
  if (arp->sender_ip != 0 && arp->sender_ip != vtep_ip && (for_us || gratuitous) &&
      !IsMulticastMac(arp->sender_mac.data())) {
    outcome.learn = true;
    outcome.sender_ip = VtepOfIpv4(arp->sender_ip);
    outcome.sender_mac = arp->sender_mac;
  }
  if (opcode == kArpRequest && for_us) {
    arp->opcode = htons(kArpReply);
    arp->target_mac = arp->sender_mac;
    arp->target_ip = arp->sender_ip;
    arp->sender_mac = underlay.mac;
    arp->sender_ip = vtep_ip;
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
  arp->sender_ip = Ipv4OfVtep(underlay.vtep_ip);
  arp->target_mac = {};
  arp->target_ip = target;
  return frame;
}

namespace {

constexpr uint32_t kNdOffset = sizeof(EthernetHeader) + sizeof(Ipv6Header);
// A neighbour discovery message with one link-layer address option, as this VTEP sends them.
constexpr uint32_t kNdLength = sizeof(NeighborDiscoveryMessage) + 8;
constexpr uint32_t kNdFlagSolicited = 0x40000000;
constexpr uint32_t kNdFlagOverride = 0x20000000;

uint16_t Icmpv6Checksum(const Ipv6Header& ip, const void* icmp, uint32_t length) {
  return ChecksumFinish(ChecksumAdd(icmp, length, Ipv6PseudoHeaderSum(ip, length, kProtoIcmpv6)));
}

// The MAC in the first link-layer address option of `type` among the options at `options`.
std::optional<MacBytes> LinkAddressOption(const uint8_t* options, uint32_t length, uint8_t type) {
  for (uint32_t at = 0; at + 8 <= length;) {
    uint32_t option_length = options[at + 1] * 8u;
    if (option_length == 0 || at + option_length > length) return std::nullopt;
    if (options[at] == type) {
      MacBytes mac;
      std::memcpy(mac.data(), options + at + 2, 6);
      return mac;
    }
    at += option_length;
  }
  return std::nullopt;
}

// ff02::1:ffXX:XXXX, the solicited-node group of `target` (RFC 4291).
VtepIp SolicitedNodeGroup(const VtepIp& target) {
  VtepIp group{0xff, 0x02, 0, 0,    0,    0,          0,          0,
               0,    0,    0, 0x01, 0xff, target[13], target[14], target[15]};
  return group;
}

// Writes an IPv6 + ICMPv6 neighbour discovery message with one link-layer address option (our
// MAC) at `bytes` (the Ethernet header included).
void WriteNd(uint8_t* bytes, const UnderlayInfo& underlay, const MacBytes& dst_mac,
             const VtepIp& dst, uint8_t type, uint32_t flags, const VtepIp& target,
             uint8_t option) {
  auto* ethernet = reinterpret_cast<EthernetHeader*>(bytes);
  ethernet->dst = dst_mac;
  ethernet->src = underlay.mac;
  ethernet->ether_type = htons(kEthTypeIpv6);
  auto* ip = reinterpret_cast<Ipv6Header*>(bytes + sizeof(EthernetHeader));
  ip->version_class_flow = htonl(6u << 28);
  ip->payload_length = htons(kNdLength);
  ip->next_header = kProtoIcmpv6;
  ip->hop_limit = 255;  // RFC 4861: receivers check that no router forwarded it
  ip->src = underlay.vtep_ip;
  ip->dst = dst;
  auto* nd = reinterpret_cast<NeighborDiscoveryMessage*>(bytes + kNdOffset);
  nd->icmp.type = type;
  nd->icmp.code = 0;
  nd->icmp.checksum = 0;
  nd->flags = htonl(flags);
  nd->target = target;
  uint8_t* link_option = bytes + kNdOffset + sizeof(NeighborDiscoveryMessage);
  link_option[0] = option;
  link_option[1] = 1;  // 8 bytes
  std::memcpy(link_option + 2, underlay.mac.data(), 6);
  nd->icmp.checksum = Icmpv6Checksum(*ip, nd, kNdLength);
}

}  // namespace

bool IsNeighborDiscovery(const rte_mbuf* frame) {
  if (frame->data_len < kNdOffset + sizeof(NeighborDiscoveryMessage)) return false;
  const auto* ip = rte_pktmbuf_mtod_offset(frame, const Ipv6Header*, sizeof(EthernetHeader));
  if (ip->next_header != kProtoIcmpv6) return false;
  uint8_t type = rte_pktmbuf_mtod_offset(frame, const uint8_t*, kNdOffset)[0];
  return type == kIcmpv6NeighborSolicitation || type == kIcmpv6NeighborAdvertisement;
}

ArpOutcome HandleUnderlayNdp(rte_mbuf* frame, const UnderlayInfo& underlay) {
  ArpOutcome outcome;
  const auto* ip = rte_pktmbuf_mtod_offset(frame, const Ipv6Header*, sizeof(EthernetHeader));
  uint32_t length = ntohs(ip->payload_length);
  if (ip->hop_limit != 255 || length < sizeof(NeighborDiscoveryMessage) ||
      kNdOffset + length > frame->data_len) {
    return outcome;
  }
  const auto* nd = rte_pktmbuf_mtod_offset(frame, const NeighborDiscoveryMessage*, kNdOffset);
  if (nd->icmp.code != 0 || Icmpv6Checksum(*ip, nd, length) != 0) return outcome;
  const uint8_t* options = reinterpret_cast<const uint8_t*>(nd + 1);
  uint32_t options_length = length - sizeof(NeighborDiscoveryMessage);
  if (nd->icmp.type == kIcmpv6NeighborAdvertisement) {
    // The target's MAC: its option, else the frame's source (RFC 4861 7.2.5 allows omitting it).
    auto mac = LinkAddressOption(options, options_length, kNdOptionTargetLinkAddress);
    MacBytes sender = mac ? *mac : rte_pktmbuf_mtod(frame, const EthernetHeader*)->src;
    // As with ARP: answers to us, and announcements to all nodes; not every exchange seen.
    bool to_us = ip->dst == underlay.vtep_ip || ip->dst[0] == 0xff;
    if (to_us && nd->target != underlay.vtep_ip && nd->target[0] != 0xff &&
        !IsMulticastMac(sender.data())) {
      outcome.learn = true;
      outcome.sender_ip = nd->target;
      outcome.sender_mac = sender;
    }
    return outcome;
  }
  if (nd->target != underlay.vtep_ip) return outcome;
  // A solicitation for us. From an address being checked for duplicates (source ::), the answer
  // goes to all nodes and nothing is learnt.
  bool probe = ip->src == VtepIp{};
  auto mac = LinkAddressOption(options, options_length, kNdOptionSourceLinkAddress);
  if (!probe && mac && !IsMulticastMac(mac->data())) {
    outcome.learn = true;
    outcome.sender_ip = ip->src;
    outcome.sender_mac = *mac;
  }
  MacBytes asker_mac = mac ? *mac : rte_pktmbuf_mtod(frame, const EthernetHeader*)->src;
  VtepIp asker = ip->src;
  // The advertisement replaces the solicitation in the same mbuf.
  uint32_t reply_length = kNdOffset + kNdLength;
  if (rte_pktmbuf_pkt_len(frame) < reply_length) {
    if (!rte_pktmbuf_append(frame, static_cast<uint16_t>(reply_length - frame->pkt_len))) {
      return outcome;
    }
  } else {
    rte_pktmbuf_trim(frame, static_cast<uint16_t>(frame->pkt_len - reply_length));
  }
  if (frame->data_len < reply_length) return outcome;  // a chained mbuf: not worth answering
  static const VtepIp kAllNodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  WriteNd(rte_pktmbuf_mtod(frame, uint8_t*), underlay,
          probe ? MulticastMacOfIpv6(kAllNodes.data()) : asker_mac, probe ? kAllNodes : asker,
          kIcmpv6NeighborAdvertisement, (probe ? 0 : kNdFlagSolicited) | kNdFlagOverride,
          underlay.vtep_ip, kNdOptionTargetLinkAddress);
  outcome.reply = true;
  return outcome;
}

rte_mbuf* BuildNeighborSolicitation(rte_mempool* pool, const UnderlayInfo& underlay,
                                    const VtepIp& target) {
  rte_mbuf* frame = rte_pktmbuf_alloc(pool);
  if (!frame) return nullptr;
  auto* bytes = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(frame, kNdOffset + kNdLength));
  if (!bytes) {
    rte_pktmbuf_free(frame);
    return nullptr;
  }
  VtepIp group = SolicitedNodeGroup(target);
  WriteNd(bytes, underlay, MulticastMacOfIpv6(group.data()), group, kIcmpv6NeighborSolicitation, 0,
          target, kNdOptionSourceLinkAddress);
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
  ip->protocol = kProtoIgmp;
  ip->src = Ipv4OfVtep(underlay.vtep_ip);
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

void HandleNeighborDiscoveryBurst(rte_mbuf* const* frames, uint16_t n, const UnderlayInfo& underlay,
                                  ArpOutcome* outcomes) {
  for (uint16_t i = 0; i < n; ++i) {
    outcomes[i] = underlay.ipv6 ? HandleUnderlayNdp(frames[i], underlay)
                                : HandleUnderlayArp(frames[i], underlay);
  }
}

}  // namespace butterfly
