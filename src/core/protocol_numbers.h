// The numbers the wire protocols assign (IANA's registries): ether types, IP protocol numbers, TCP
// flags. Defined once here, the lowest layer, for the rule model, the JIT and its interpreter,
// the packet parser, conntrack and the stages alike.
#pragma once

#include <cstdint>

namespace butterfly {

// Ether types, host order.
inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeArp = 0x0806;
inline constexpr uint16_t kEthTypeRarp = 0x8035;
inline constexpr uint16_t kEthTypeVlan = 0x8100;
inline constexpr uint16_t kEthTypeIpv6 = 0x86dd;

// IP protocol numbers: the IPv4 protocol field, the IPv6 next header, a rule's protocol.
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIgmp = 2;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;
// The IPv6 extension headers (next header values too) the parser walks past.
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6Auth = 51;
inline constexpr uint8_t kIpv6DestOpts = 60;

// TCP flags: bits of the header's 14th byte.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
inline constexpr uint8_t kTcpUrg = 0x20;

}  // namespace butterfly
