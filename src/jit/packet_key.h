// The parsed packet the filter and conntrack consume (pipeline/packet_parser.h fills it): fixed
// layout, the fields the per-packet decision reads in the first cache line, the rest (ICMP error
// inner tuple) in the second; the JIT's code loads its fields at these offsets.
// Addresses are network order; an IPv4 address sits in the first 4 bytes of its 16 and the other
// 12 bytes are zero, so IPv4 and IPv6 compare the same way. Ports and ids are host order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/protocol_numbers.h"

namespace butterfly {

using IpBytes = std::array<uint8_t, 16>;

// <0, 0 or >0 as `a` sorts before, with or after `b` byte by byte (std::array's order), compared
// as two big-endian words: std::array's < is a libc memcmp call, paid per packet where it is used.
inline int CompareAddresses(const IpBytes& a, const IpBytes& b) {
  uint64_t a_words[2], b_words[2];
  std::memcpy(a_words, a.data(), 16);
  std::memcpy(b_words, b.data(), 16);
  for (int i = 0; i < 2; ++i) {
    if (a_words[i] == b_words[i]) continue;
    return __builtin_bswap64(a_words[i]) < __builtin_bswap64(b_words[i]) ? -1 : 1;
  }
  return 0;
}

// PacketKey::fragment bits.
inline constexpr uint8_t kFragmentMore = 0x01;      // more fragments follow (MF)
inline constexpr uint8_t kFragmentNonFirst = 0x02;  // offset != 0: no L4 header in this packet

// The tuple of the packet an ICMP error quotes (as that packet travelled: src is its sender).
struct InnerTuple {
  IpBytes src{};
  IpBytes dst{};
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t pad[3]{};
};

struct alignas(64) PacketKey {
  IpBytes src{};
  IpBytes dst{};
  uint16_t src_port = 0;  // tcp/udp only
  uint16_t dst_port = 0;  // tcp/udp only
  uint8_t family = 0;     // 4 or 6 (IpFamily values); 0 when not parsed
  uint8_t proto = 0;      // IP protocol (IPv6: the upper-layer header after extension headers)
  uint8_t tcp_flags = 0;
  uint8_t fragment = 0;      // kFragment* bits
  uint32_t fragment_id = 0;  // IPv4 identification or IPv6 fragment header id
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t icmp_id = 0;   // echo request/reply identifier
  uint8_t has_inner = 0;  // 1 when `inner` holds the tuple quoted by an ICMP error
  // TCP only: what window tracking needs. The window scale option of a SYN, plus one (0: the SYN
  // had none).
  uint8_t tcp_window_scale_plus_one = 0;
  uint16_t tcp_payload = 0;  // bytes after the TCP header (of this fragment, when fragmented)
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint16_t tcp_window = 0;  // as sent: unscaled
  uint8_t pad[2]{};
  InnerTuple inner;

  bool is_v4() const { return family == 4; }
  bool is_fragment() const { return fragment != 0; }
  bool is_non_first_fragment() const { return fragment & kFragmentNonFirst; }
};
static_assert(offsetof(PacketKey, inner) == 64, "hot fields fit the first cache line");
static_assert(offsetof(PacketKey, tcp_seq) == 52 && offsetof(PacketKey, tcp_window) == 60);
static_assert(sizeof(PacketKey) == 128);

}  // namespace butterfly
