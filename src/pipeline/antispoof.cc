#include "pipeline/antispoof.h"

#include <cstring>

#include "pipeline/frame.h"

namespace butterfly {
namespace {

std::optional<DropReason> CheckArp(const rte_mbuf* frame, const VnicSettings& vnic) {
  if (frame->data_len < sizeof(EthernetHeader) + sizeof(ArpHeader)) return DropReason::kMalformed;
  if (!vnic.ip_anti_spoof) return std::nullopt;
  const auto* arp = rte_pktmbuf_mtod_offset(frame, const ArpHeader*, sizeof(EthernetHeader));
  if (arp->sender_mac != vnic.mac) return DropReason::kAntispoof;
  // 0.0.0.0 is an address probe (RFC 5227): it claims nothing.
  if (arp->sender_ip != 0 && !vnic.HasIpv4(arp->sender_ip)) return DropReason::kAntispoof;
  return std::nullopt;
}

bool IsLinkLocal(const uint8_t* address) {
  return address[0] == 0xfe && (address[1] & 0xc0) == 0x80;
}

std::optional<DropReason> CheckNeighborDiscovery(const rte_mbuf* frame, const VnicSettings& vnic) {
  if (!vnic.ip_anti_spoof) return std::nullopt;
  uint32_t length = frame->data_len;
  constexpr uint32_t kIcmpOffset = sizeof(EthernetHeader) + sizeof(Ipv6Header);
  if (length < kIcmpOffset + sizeof(Icmpv6Header)) return std::nullopt;
  const auto* ip = rte_pktmbuf_mtod_offset(frame, const Ipv6Header*, sizeof(EthernetHeader));
  if (ip->next_header != kProtoIcmpv6) return std::nullopt;  // ND carries no extension headers
  const auto* icmp = rte_pktmbuf_mtod_offset(frame, const Icmpv6Header*, kIcmpOffset);
  uint32_t options_offset;
  if (icmp->type == kIcmpv6NeighborSolicitation || icmp->type == kIcmpv6NeighborAdvertisement) {
    if (length < kIcmpOffset + sizeof(NeighborDiscoveryMessage)) return DropReason::kMalformed;
    const auto* nd = rte_pktmbuf_mtod_offset(frame, const NeighborDiscoveryMessage*, kIcmpOffset);
    if (icmp->type == kIcmpv6NeighborAdvertisement && !IsLinkLocal(nd->target.data()) &&
        !vnic.HasIpv6(nd->target.data())) {
      return DropReason::kAntispoof;  // advertising an address that is not the vnic's
    }
    options_offset = kIcmpOffset + sizeof(NeighborDiscoveryMessage);
  } else if (icmp->type == kIcmpv6RouterSolicitation) {
    options_offset = kIcmpOffset + 8;
  } else {
    return std::nullopt;
  }
  // Link-layer address options must carry the vnic's MAC.
  const uint8_t* bytes = rte_pktmbuf_mtod(frame, const uint8_t*);
  while (options_offset + 8 <= length) {
    uint8_t type = bytes[options_offset];
    uint32_t option_length = bytes[options_offset + 1] * 8u;
    if (option_length == 0 || options_offset + option_length > length)
      return DropReason::kMalformed;
    if ((type == kNdOptionSourceLinkAddress || type == kNdOptionTargetLinkAddress) &&
        std::memcmp(bytes + options_offset + 2, vnic.mac.data(), 6) != 0) {
      return DropReason::kAntispoof;
    }
    options_offset += option_length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<DropReason> CheckAntispoof(const rte_mbuf* frame, const VnicSettings& vnic) {
  if (frame->data_len < sizeof(EthernetHeader)) return DropReason::kMalformed;
  const EthernetHeader* ethernet = EthernetOf(frame);
  // Two loads, not the libc memcmp call std::array's != becomes (per packet, in the profile).
  uint32_t src_head, mac_head;
  uint16_t src_tail, mac_tail;
  std::memcpy(&src_head, ethernet->src.data(), 4);
  std::memcpy(&src_tail, ethernet->src.data() + 4, 2);
  std::memcpy(&mac_head, vnic.mac.data(), 4);
  std::memcpy(&mac_tail, vnic.mac.data() + 4, 2);
  if ((src_head ^ mac_head) | (src_tail ^ mac_tail)) return DropReason::kAntispoof;
  switch (ntohs(ethernet->ether_type)) {
    case kEthTypeRarp:
      return DropReason::kAntispoof;
    case kEthTypeArp:
      return CheckArp(frame, vnic);
    case kEthTypeIpv6:
      return CheckNeighborDiscovery(frame, vnic);
    default:
      return std::nullopt;
  }
}

void AntispoofBurst(rte_mbuf* const* frames, uint16_t n, const VnicSettings& vnic,
                    DropReason* fate) {
  for (uint16_t i = 0; i < n; ++i) {
    std::optional<DropReason> reason = CheckAntispoof(frames[i], vnic);
    fate[i] = reason ? *reason : kKeep;
  }
}

}  // namespace butterfly
