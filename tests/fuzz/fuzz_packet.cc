// Fuzz target: the packet path on hostile frames. The frame goes through the stages a worker runs
// on it: the parser (PacketKey) and the fragment table, antispoof, the flow hash, VXLAN decap
// (IPv4 or IPv6 underlay) and the parsing of the inner frame, and the VTEP responder (ARP, NDP).
// Input: one byte of settings (underlay family, ip_anti_spoof), then the frame.
#include <arpa/inet.h>

#include "fuzz_support.h"
#include "pipeline/antispoof.h"
#include "pipeline/fragment_table.h"
#include "pipeline/frame.h"
#include "pipeline/vnic_port.h"
#include "pipeline/vtep_responder.h"
#include "pipeline/vxlan_decap.h"
#include "plain_mbuf.h"

namespace butterfly {
namespace {

using fuzz::PlainMbuf;

constexpr MacBytes kVnicMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr MacBytes kUnderlayMac{0x02, 0x00, 0x00, 0xc6, 0x12, 0x01};
constexpr uint64_t kFragmentLifetime = 30;

UnderlayInfo Underlay(bool ipv6) {
  UnderlayInfo underlay;
  underlay.present = true;
  underlay.mac = kUnderlayMac;
  underlay.ipv6 = ipv6;
  if (ipv6) {
    underlay.vtep_ip = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  } else {
    underlay.vtep_ip = VtepOfIpv4(htonl(0xc6120001));  // 198.18.0.1
  }
  return underlay;
}

VnicSettings Settings(bool ip_anti_spoof) {
  VnicSettings settings;
  settings.vni = 42;
  settings.mac = kVnicMac;
  settings.ip_anti_spoof = ip_anti_spoof;
  settings.ipv4 = {htonl(0x0a000005)};  // 10.0.0.5
  settings.ipv6 = {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}};
  return settings;
}

// The parser, the fragment table and antispoof on a frame as a VM (or the decap) hands it over.
void CheckVnicSide(std::string_view frame, const VnicSettings& settings, Direction direction) {
  PlainMbuf mbuf(frame);
  PacketKey key;
  ParseStatus status = ParseFrame(mbuf.get(), &key);
  (void)InnerFlowHash(mbuf.Data(), mbuf.get()->data_len);
  if (status == ParseStatus::kOk) {
    uint16_t ether_type = EtherTypeOf(mbuf.get());
    FUZZ_CHECK(key.family == (ether_type == kEthTypeIpv4 ? 4 : 6));
    if (key.is_non_first_fragment()) {
      FUZZ_CHECK(key.src_port == 0 && key.dst_port == 0 && key.tcp_flags == 0,
                 "a non-first fragment carries no L4 header");
    }
    FragmentTable fragments(4, kFragmentLifetime);
    if (key.is_non_first_fragment()) {
      FUZZ_CHECK(!fragments.Allowed(key, 1, direction, 1), "nothing remembered yet");
    } else if (key.fragment & kFragmentMore) {
      // A first fragment that passed lets its later fragments through, for its vnic and
      // direction only, and for its lifetime only.
      fragments.Remember(key, 1, direction, 1);
      PacketKey later = key;
      later.fragment = kFragmentNonFirst;
      later.src_port = later.dst_port = 0;
      later.tcp_flags = 0;
      FUZZ_CHECK(fragments.Allowed(later, 1, direction, 2));
      FUZZ_CHECK(!fragments.Allowed(later, 2, direction, 2));
      Direction other =
          direction == Direction::kInbound ? Direction::kOutbound : Direction::kInbound;
      FUZZ_CHECK(!fragments.Allowed(later, 1, other, 2));
      FUZZ_CHECK(!fragments.Allowed(later, 1, direction, 2 + kFragmentLifetime));
    }
  }
  auto refused = CheckAntispoof(mbuf.get(), settings);
  if (frame.size() >= sizeof(EthernetHeader) &&
      std::memcmp(frame.data() + 6, settings.mac.data(), 6) != 0) {
    FUZZ_CHECK(refused.has_value(), "a frame from another MAC passed antispoof");
  }
}

void CheckDecap(std::string_view frame, const UnderlayInfo& underlay,
                const VnicSettings& settings) {
  PlainMbuf mbuf(frame);
  DecapResult result;
  DropReason reason;
  if (!VxlanDecap(mbuf.get(), underlay, &result, &reason)) {
    FUZZ_CHECK(mbuf.View() == frame, "a refused packet is left untouched");
    return;
  }
  FUZZ_CHECK(result.vni <= 0xffffff);
  rte_mbuf* inner = mbuf.get();
  FUZZ_CHECK(inner->data_len == inner->pkt_len && inner->data_len >= sizeof(EthernetHeader));
  size_t offset = inner->data_off - PlainMbuf::kHeadroom;
  FUZZ_CHECK(offset + inner->data_len <= frame.size(), "the inner frame lies inside the packet");
  FUZZ_CHECK(mbuf.View() == frame.substr(offset, inner->data_len));
  uint16_t outer_type = ntohs(reinterpret_cast<const EthernetHeader*>(frame.data())->ether_type);
  FUZZ_CHECK(outer_type == (underlay.ipv6 ? kEthTypeIpv6 : kEthTypeIpv4),
             "decapsulated a frame of ether type 0x%04x", outer_type);
  CheckVnicSide(mbuf.View(), settings, Direction::kInbound);
}

void CheckArp(std::string_view frame, const UnderlayInfo& underlay) {
  PlainMbuf mbuf(frame);
  ArpOutcome outcome = HandleUnderlayArp(mbuf.get(), underlay);
  if (outcome.learn) FUZZ_CHECK(!IsMulticastMac(outcome.sender_mac.data()));
  if (!outcome.reply) return;
  FUZZ_CHECK(mbuf.get()->data_len == frame.size());
  const auto* ethernet = reinterpret_cast<const EthernetHeader*>(mbuf.Data());
  const auto* arp = reinterpret_cast<const ArpHeader*>(ethernet + 1);
  const auto* asked = reinterpret_cast<const ArpHeader*>(frame.data() + sizeof(EthernetHeader));
  FUZZ_CHECK(ntohs(arp->opcode) == kArpReply && arp->sender_mac == underlay.mac &&
             arp->sender_ip == Ipv4OfVtep(underlay.vtep_ip) && arp->target_ip == asked->sender_ip &&
             arp->target_mac == asked->sender_mac && ethernet->dst == asked->sender_mac &&
             ethernet->src == underlay.mac);
}

void CheckNdp(std::string_view frame, const UnderlayInfo& underlay) {
  // Without room after the frame first (a read past it is reported), then with the room a pool's
  // mbuf has, where a solicitation shorter than the advertisement is answered.
  for (uint16_t tailroom : {uint16_t{0}, uint16_t{128}}) {
    PlainMbuf mbuf(frame, tailroom);
    ArpOutcome outcome = HandleUnderlayNdp(mbuf.get(), underlay);
    if (outcome.learn) FUZZ_CHECK(!IsMulticastMac(outcome.sender_mac.data()));
    if (!outcome.reply) continue;
    // The asker accepts the advertisement and learns this VTEP from it.
    rte_mbuf* reply = mbuf.get();
    FUZZ_CHECK(EtherTypeOf(reply) == kEthTypeIpv6 && IsNeighborDiscovery(reply));
    const auto* ip = rte_pktmbuf_mtod_offset(reply, const Ipv6Header*, sizeof(EthernetHeader));
    if (ip->dst == underlay.vtep_ip) continue;  // asked by ourselves (spoofed)
    UnderlayInfo asker = underlay;
    asker.vtep_ip = ip->dst;
    asker.mac = rte_pktmbuf_mtod(reply, const EthernetHeader*)->dst;
    PlainMbuf copy(mbuf.View());
    ArpOutcome heard = HandleUnderlayNdp(copy.get(), asker);
    FUZZ_CHECK(!heard.reply && heard.learn && heard.sender_ip == underlay.vtep_ip &&
                   heard.sender_mac == underlay.mac,
               "the asker does not accept the advertisement");
  }
}

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  if (size < 1 || size > 9001) return -1;
  uint8_t settings_byte = data[0];
  std::string_view frame(reinterpret_cast<const char*>(data + 1), size - 1);
  UnderlayInfo underlay = Underlay(settings_byte & 1);
  VnicSettings settings = Settings(settings_byte & 2);

  CheckVnicSide(frame, settings, Direction::kOutbound);
  CheckDecap(frame, underlay, settings);
  PlainMbuf probe(frame);
  uint16_t ether_type = EtherTypeOf(probe.get());
  if (underlay.ipv6) {
    if (ether_type == kEthTypeIpv6 && IsNeighborDiscovery(probe.get())) CheckNdp(frame, underlay);
  } else if (ether_type == kEthTypeArp) {
    CheckArp(frame, underlay);
  }
  return 0;
}
