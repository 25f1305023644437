// Builds Ethernet frames byte by byte (network order) for the stage tests: Ethernet, ARP, IPv4,
// IPv6, UDP, VXLAN, ICMPv6 neighbour discovery. Checksums are computed here with a sum of the
// test's own (RFC 1071), not with the helpers of the code under test, so that a test that checks
// one checks it independently.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace butterfly::testing {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;
using Ipv6Address = std::array<uint8_t, 16>;

inline Mac MacOf(const std::string& text) {
  Mac mac{};
  if (std::sscanf(text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                  &mac[4], &mac[5]) != 6) {
    throw std::invalid_argument("not a MAC: " + text);
  }
  return mac;
}
// Network order.
inline uint32_t Ipv4Of(const std::string& text) {
  uint32_t address;
  if (inet_pton(AF_INET, text.c_str(), &address) != 1) throw std::invalid_argument(text);
  return address;
}
inline Ipv6Address Ipv6Of(const std::string& text) {
  Ipv6Address address{};
  if (inet_pton(AF_INET6, text.c_str(), address.data()) != 1) throw std::invalid_argument(text);
  return address;
}

inline Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& part : parts) {
    for (uint8_t b : part) all.push_back(b);  // (vector::insert: a GCC 12 -Warray-bounds)
  }
  return all;
}
template <size_t N>
Bytes BytesOf(const std::array<uint8_t, N>& array) {
  return Bytes(array.begin(), array.end());
}
inline Bytes BytesOfIpv4(uint32_t network_order) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&network_order);
  return Bytes(bytes, bytes + 4);
}

inline uint16_t Get16(const Bytes& bytes, size_t at) {
  return static_cast<uint16_t>(bytes.at(at) << 8 | bytes.at(at + 1));
}
inline uint32_t Get32(const Bytes& bytes, size_t at) {
  return uint32_t{Get16(bytes, at)} << 16 | Get16(bytes, at + 2);
}
inline void Put16(Bytes* bytes, size_t at, uint16_t value) {
  bytes->at(at) = static_cast<uint8_t>(value >> 8);
  bytes->at(at + 1) = static_cast<uint8_t>(value);
}
inline void Put32(Bytes* bytes, size_t at, uint32_t value) {
  Put16(bytes, at, static_cast<uint16_t>(value >> 16));
  Put16(bytes, at + 2, static_cast<uint16_t>(value));
}
inline Bytes Slice(const Bytes& bytes, size_t at, size_t length) {
  if (at + length > bytes.size()) throw std::out_of_range("slice past the end");
  return Bytes(bytes.begin() + at, bytes.begin() + at + length);
}

// The folded one's-complement sum (RFC 1071) of `bytes`, an odd last byte padded with zero,
// added to `initial` (a sum of 16-bit words).
inline uint16_t OnesComplementSum(const Bytes& bytes, uint64_t initial = 0) {
  uint64_t sum = initial;
  for (size_t i = 0; i < bytes.size(); i += 2) {
    sum += uint64_t{bytes[i]} << 8 | (i + 1 < bytes.size() ? bytes[i + 1] : 0);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
// The IPv6 pseudo-header (RFC 8200 8.1) as a sum of 16-bit words.
inline uint64_t Ipv6PseudoHeaderWords(const Bytes& ipv6_header, uint32_t upper_length,
                                      uint8_t next_header) {
  uint64_t sum = 0;
  for (size_t at = 8; at < 40; at += 2) sum += Get16(ipv6_header, at);
  return sum + (upper_length >> 16) + (upper_length & 0xffff) + next_header;
}
// A header or message whose checksum field is filled sums to all ones.
inline bool ChecksumValid(const Bytes& bytes) { return OnesComplementSum(bytes) == 0xffff; }
// The upper-layer checksum (UDP, ICMPv6) of the IPv6 packet `ip` (no extension headers) is valid.
inline bool Ipv6UpperChecksumValid(const Bytes& ip) {
  Bytes upper = Slice(ip, 40, Get16(ip, 4));
  return OnesComplementSum(upper, Ipv6PseudoHeaderWords(ip, Get16(ip, 4), ip.at(6))) == 0xffff;
}

inline Bytes EthernetFrame(const Mac& dst, const Mac& src, uint16_t ether_type,
                           const Bytes& payload) {
  Bytes type(2);
  Put16(&type, 0, ether_type);
  return Cat({BytesOf(dst), BytesOf(src), type, payload});
}

// An IPv4 packet with a valid header checksum; `options` (a multiple of 4 bytes) lengthen the
// header.
inline Bytes Ipv4Packet(uint32_t src, uint32_t dst, uint8_t protocol, const Bytes& payload,
                        uint16_t fragment = 0, const Bytes& options = {}, uint8_t ttl = 64) {
  Bytes header(20);
  size_t header_length = 20 + options.size();
  header[0] = static_cast<uint8_t>(0x40 | header_length / 4);
  Put16(&header, 2, static_cast<uint16_t>(header_length + payload.size()));
  Put16(&header, 4, 0x1234);
  Put16(&header, 6, fragment);
  header[8] = ttl;
  header[9] = protocol;
  Put32(&header, 12, ntohl(src));
  Put32(&header, 16, ntohl(dst));
  header = Cat({header, options});
  Put16(&header, 10, static_cast<uint16_t>(~OnesComplementSum(header)));
  return Cat({header, payload});
}

inline Bytes Ipv6Packet(const Ipv6Address& src, const Ipv6Address& dst, uint8_t next_header,
                        const Bytes& payload, uint8_t hop_limit = 64) {
  Bytes header(8);
  header[0] = 0x60;
  Put16(&header, 4, static_cast<uint16_t>(payload.size()));
  header[6] = next_header;
  header[7] = hop_limit;
  return Cat({header, BytesOf(src), BytesOf(dst), payload});
}

// UDP with no checksum.
inline Bytes UdpDatagram(uint16_t src_port, uint16_t dst_port, const Bytes& payload) {
  Bytes header(8);
  Put16(&header, 0, src_port);
  Put16(&header, 2, dst_port);
  Put16(&header, 4, static_cast<uint16_t>(8 + payload.size()));
  return Cat({header, payload});
}

// A VXLAN header (RFC 7348): flags byte (0x08: the I flag), reserved, VNI, reserved.
inline Bytes VxlanBytes(uint32_t vni, uint8_t flags = 0x08) {
  Bytes header(8);
  header[0] = flags;
  Put32(&header, 4, vni << 8);
  return header;
}

inline Bytes ArpBytes(uint16_t opcode, const Mac& sender_mac, uint32_t sender_ip,
                      const Mac& target_mac, uint32_t target_ip) {
  Bytes fixed = {0, 1, 0x08, 0x00, 6, 4, 0, 0};
  Put16(&fixed, 6, opcode);
  return Cat({fixed, BytesOf(sender_mac), BytesOfIpv4(sender_ip), BytesOf(target_mac),
              BytesOfIpv4(target_ip)});
}

// An ND link-layer address option (RFC 4861 4.6.1): 1 source, 2 target.
inline Bytes LinkAddressOption(uint8_t type, const Mac& mac) {
  return Cat({{type, 1}, BytesOf(mac)});
}
// A neighbour solicitation (135) or advertisement (136), checksum left zero.
inline Bytes NdMessage(uint8_t type, uint32_t flags, const Ipv6Address& target,
                       const Bytes& options = {}) {
  Bytes fixed(8);
  fixed[0] = type;
  Put32(&fixed, 4, flags);
  return Cat({fixed, BytesOf(target), options});
}
// An IPv6 packet carrying `icmp` (checksum field zero) with its ICMPv6 checksum filled.
inline Bytes Icmpv6Packet(const Ipv6Address& src, const Ipv6Address& dst, Bytes icmp,
                          uint8_t hop_limit = 255) {
  Bytes ip = Ipv6Packet(src, dst, 58, icmp, hop_limit);
  uint16_t sum = OnesComplementSum(icmp, Ipv6PseudoHeaderWords(ip, icmp.size(), 58));
  Put16(&ip, 40 + 2, static_cast<uint16_t>(~sum));
  return ip;
}

}  // namespace butterfly::testing
