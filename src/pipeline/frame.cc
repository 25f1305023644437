#include "pipeline/frame.h"

#include <rte_hash_crc.h>

#include <cstring>

namespace butterfly {
namespace {

// rte_hash_crc over bytes at any address: the headers of a frame sit at odd offsets, where
// rte_hash_crc's 8- and 4-byte loads are misaligned (undefined behaviour; UBSan stops the daemon
// on them). The same CRC, each word copied out first (the compiler makes that a plain load).
uint32_t HashBytes(const uint8_t* data, uint32_t length, uint32_t hash) {
  for (; length >= 8; data += 8, length -= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    hash = rte_hash_crc_8byte(word, hash);
  }
  if (length & 4) {
    uint32_t word;
    std::memcpy(&word, data, 4);
    hash = rte_hash_crc_4byte(word, hash);
    data += 4;
  }
  if (length & 2) {
    uint16_t word;
    std::memcpy(&word, data, 2);
    hash = rte_hash_crc_2byte(word, hash);
    data += 2;
  }
  if (length & 1) hash = rte_hash_crc_1byte(*data, hash);
  return hash;
}

}  // namespace

ParseStatus ParseFrame(const rte_mbuf* mbuf, PacketKey* key) {
  uint16_t ether_type = EtherTypeOf(mbuf);
  if (ether_type != kEthTypeIpv4 && ether_type != kEthTypeIpv6) return ParseStatus::kNotIp;
  const uint8_t* l3 = rte_pktmbuf_mtod_offset(mbuf, const uint8_t*, sizeof(EthernetHeader));
  return ParsePacketKey(l3, mbuf->data_len - sizeof(EthernetHeader), ether_type, key);
}

uint32_t InnerFlowHash(const uint8_t* frame, uint32_t length) {
  if (length < sizeof(EthernetHeader)) return 0;
  uint16_t ether_type = ntohs(reinterpret_cast<const EthernetHeader*>(frame)->ether_type);
  const uint8_t* l3 = frame + sizeof(EthernetHeader);
  uint32_t l3_length = length - sizeof(EthernetHeader);
  uint32_t hash = 0;
  uint8_t proto = 0;
  const uint8_t* l4 = nullptr;
  if (ether_type == kEthTypeIpv4 && l3_length >= sizeof(Ipv4Header)) {
    const auto* ip = reinterpret_cast<const Ipv4Header*>(l3);
    hash = HashBytes(reinterpret_cast<const uint8_t*>(&ip->src), 8, 0);
    proto = ip->protocol;
    uint32_t header = (ip->version_ihl & 0x0f) * 4u;
    bool first_fragment = (ntohs(ip->fragment) & 0x1fff) == 0;
    if (first_fragment && l3_length >= header + 4) l4 = l3 + header;
  } else if (ether_type == kEthTypeIpv6 && l3_length >= sizeof(Ipv6Header)) {
    const auto* ip = reinterpret_cast<const Ipv6Header*>(l3);
    hash = HashBytes(ip->src.data(), 32, 0);
    proto = ip->next_header;
    if (l3_length >= sizeof(Ipv6Header) + 4) l4 = l3 + sizeof(Ipv6Header);
  } else {
    return HashBytes(frame, 12, 0);  // the two MACs
  }
  hash = rte_hash_crc_1byte(proto, hash);
  if (l4 && (proto == kProtoTcp || proto == kProtoUdp)) hash = HashBytes(l4, 4, hash);
  return hash;
}

}  // namespace butterfly
