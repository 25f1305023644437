// Wire headers the switch reads and writes (Ethernet, ARP, IPv4, IPv6, UDP, VXLAN, ICMPv6 ND),
// packed, fields in network order. Plain structs so that stages and tests share one definition
// without depending on DPDK.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/protocol_numbers.h"

namespace butterfly {

inline constexpr uint8_t kIcmpv6RouterSolicitation = 133;
inline constexpr uint8_t kIcmpv6RouterAdvertisement = 134;
inline constexpr uint8_t kIcmpv6NeighborSolicitation = 135;
inline constexpr uint8_t kIcmpv6NeighborAdvertisement = 136;
inline constexpr uint8_t kNdOptionSourceLinkAddress = 1;
inline constexpr uint8_t kNdOptionTargetLinkAddress = 2;

using MacBytes = std::array<uint8_t, 6>;

#pragma pack(push, 1)
struct EthernetHeader {
  MacBytes dst;
  MacBytes src;
  uint16_t ether_type;  // network order
};
static_assert(sizeof(EthernetHeader) == 14);

struct ArpHeader {
  uint16_t hardware_type;  // 1: Ethernet
  uint16_t protocol_type;  // 0x0800
  uint8_t hardware_size;   // 6
  uint8_t protocol_size;   // 4
  uint16_t opcode;         // 1 request, 2 reply
  MacBytes sender_mac;
  uint32_t sender_ip;
  MacBytes target_mac;
  uint32_t target_ip;
};
static_assert(sizeof(ArpHeader) == 28);
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

struct Ipv4Header {
  uint8_t version_ihl;
  uint8_t tos;
  uint16_t total_length;
  uint16_t id;
  uint16_t fragment;  // flags and offset
  uint8_t ttl;
  uint8_t protocol;
  uint16_t checksum;
  uint32_t src;
  uint32_t dst;
};
static_assert(sizeof(Ipv4Header) == 20);
inline constexpr uint16_t kIpv4DontFragment = 0x4000;

struct Ipv6Header {
  uint32_t version_class_flow;
  uint16_t payload_length;
  uint8_t next_header;
  uint8_t hop_limit;
  std::array<uint8_t, 16> src;
  std::array<uint8_t, 16> dst;
};
static_assert(sizeof(Ipv6Header) == 40);

struct UdpHeader {
  uint16_t src_port;
  uint16_t dst_port;
  uint16_t length;
  uint16_t checksum;
};
static_assert(sizeof(UdpHeader) == 8);

// RFC 7348: flags (I bit 0x08 must be set), 24 reserved bits, VNI, 8 reserved bits.
struct VxlanHeader {
  uint32_t flags;  // network order; 0x08000000 with the I bit
  uint32_t vni;    // network order; VNI << 8
};
static_assert(sizeof(VxlanHeader) == 8);
inline constexpr uint32_t kVxlanFlagVni = 0x08000000;

struct Icmpv6Header {
  uint8_t type;
  uint8_t code;
  uint16_t checksum;
};

// Neighbour solicitation and advertisement (RFC 4861): ICMPv6 header, flags, target address,
// then options.
struct NeighborDiscoveryMessage {
  Icmpv6Header icmp;
  uint32_t flags;
  std::array<uint8_t, 16> target;
};
static_assert(sizeof(NeighborDiscoveryMessage) == 24);

struct IgmpV2Report {
  uint8_t type;  // 0x16: v2 membership report
  uint8_t max_response_time;
  uint16_t checksum;
  uint32_t group;
};
#pragma pack(pop)

// The whole VXLAN over IPv4 encapsulation: what encap prepends and decap strips.
inline constexpr size_t kVxlanIpv4Overhead =
    sizeof(EthernetHeader) + sizeof(Ipv4Header) + sizeof(UdpHeader) + sizeof(VxlanHeader);
static_assert(kVxlanIpv4Overhead == 50);
inline constexpr size_t kVxlanIpv6Overhead =
    sizeof(EthernetHeader) + sizeof(Ipv6Header) + sizeof(UdpHeader) + sizeof(VxlanHeader);

inline bool IsMulticastMac(const uint8_t* mac) { return mac[0] & 1; }
inline bool IsBroadcastMac(const uint8_t* mac) {
  return (mac[0] & mac[1] & mac[2] & mac[3] & mac[4] & mac[5]) == 0xff;
}

// One's-complement sum of `len` bytes, folded later by ChecksumFinish; `sum` carries on.
inline uint32_t ChecksumAdd(const void* data, size_t len, uint32_t sum = 0) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  for (; len >= 2; bytes += 2, len -= 2) sum += uint32_t{bytes[0]} << 8 | bytes[1];
  if (len) sum += uint32_t{bytes[0]} << 8;
  return sum;
}
// Returns the checksum in network order.
inline uint16_t ChecksumFinish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum & 0xffff));
}
inline uint16_t Ipv4HeaderChecksum(const Ipv4Header& header) {
  Ipv4Header copy = header;
  copy.checksum = 0;
  return ChecksumFinish(ChecksumAdd(&copy, sizeof(copy)));
}
// The pseudo-header part of an IPv6 upper-layer checksum (RFC 8200 §8.1).
inline uint32_t Ipv6PseudoHeaderSum(const Ipv6Header& ip, uint32_t upper_length, uint8_t next) {
  uint32_t sum = ChecksumAdd(ip.src.data(), 16);
  sum = ChecksumAdd(ip.dst.data(), 16, sum);
  sum += upper_length >> 16;
  sum += upper_length & 0xffff;
  sum += next;
  return sum;
}

// IPv4 multicast group -> Ethernet address (RFC 1112: 01:00:5e + low 23 bits).
inline MacBytes MulticastMacOfIpv4(uint32_t group_host_order) {
  return {0x01,
          0x00,
          0x5e,
          static_cast<uint8_t>((group_host_order >> 16) & 0x7f),
          static_cast<uint8_t>(group_host_order >> 8),
          static_cast<uint8_t>(group_host_order)};
}
// IPv6 multicast group -> Ethernet address (RFC 2464: 33:33 + low 32 bits).
inline MacBytes MulticastMacOfIpv6(const uint8_t* group) {
  return {0x33, 0x33, group[12], group[13], group[14], group[15]};
}

}  // namespace butterfly
