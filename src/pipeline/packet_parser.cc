#include "pipeline/packet_parser.h"

#include <algorithm>
#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace butterfly {
namespace {

// More would be an attack or a broken stack: RFC 8200 allows each at most once or twice.
constexpr int kMaxIpv6ExtHeaders = 8;

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// GCC compiles `*key = PacketKey{}` (and a 128-byte memset) into `rep stos`, whose start-up cost
// was more than half of the parser's time in the worker's profile: eight plain stores instead.
void Clear(PacketKey* key) {
#ifdef __SSE2__
  static_assert(sizeof(PacketKey) == 8 * sizeof(__m128i) && alignof(PacketKey) >= 16);
  __m128i zero = _mm_setzero_si128();
  auto* p = reinterpret_cast<__m128i*>(key);
  _mm_store_si128(p + 0, zero);
  _mm_store_si128(p + 1, zero);
  _mm_store_si128(p + 2, zero);
  _mm_store_si128(p + 3, zero);
  _mm_store_si128(p + 4, zero);
  _mm_store_si128(p + 5, zero);
  _mm_store_si128(p + 6, zero);
  _mm_store_si128(p + 7, zero);
#else
  *key = PacketKey{};
#endif
}

// Where the L3 header ends and what it says, for the outer packet and for an ICMP quote.
struct L3Info {
  size_t l4_offset = 0;
  size_t end = 0;  // one past the last byte of the packet (ethernet padding excluded)
  uint8_t proto = 0;
  uint8_t fragment = 0;
  uint32_t fragment_id = 0;
};

// `quoted`: an IP header inside an ICMP error, whose lengths describe the original packet and
// not what was quoted of it.
ParseStatus ParseIpv4(const uint8_t* p, size_t len, bool quoted, IpBytes* src, IpBytes* dst,
                      L3Info* info) {
  if (len < 20) return ParseStatus::kTruncated;
  if (p[0] >> 4 != 4) return ParseStatus::kBadHeader;
  size_t header_len = size_t{p[0] & 0x0fu} * 4;
  if (header_len < 20) return ParseStatus::kBadHeader;
  if (header_len > len) return ParseStatus::kTruncated;
  size_t total_len = Load16(p + 2);
  if (quoted) {
    info->end = len;
  } else {
    if (total_len < header_len) return ParseStatus::kBadHeader;
    if (total_len > len) return ParseStatus::kTruncated;
    info->end = total_len;
  }
  uint16_t frag = Load16(p + 6);
  info->fragment = (frag & 0x2000 ? kFragmentMore : 0) | (frag & 0x1fff ? kFragmentNonFirst : 0);
  info->fragment_id = Load16(p + 4);
  info->proto = p[9];
  info->l4_offset = header_len;
  src->fill(0);
  dst->fill(0);
  std::memcpy(src->data(), p + 12, 4);
  std::memcpy(dst->data(), p + 16, 4);
  return ParseStatus::kOk;
}

ParseStatus ParseIpv6(const uint8_t* p, size_t len, bool quoted, IpBytes* src, IpBytes* dst,
                      L3Info* info) {
  if (len < 40) return ParseStatus::kTruncated;
  if (p[0] >> 4 != 6) return ParseStatus::kBadHeader;
  size_t total_len = 40 + size_t{Load16(p + 4)};
  if (quoted) {
    info->end = len;
  } else {
    if (total_len > len) return ParseStatus::kTruncated;
    info->end = total_len;
  }
  std::memcpy(src->data(), p + 8, 16);
  std::memcpy(dst->data(), p + 24, 16);
  uint8_t next = p[6];
  size_t offset = 40;
  info->fragment = 0;
  info->fragment_id = 0;
  for (int headers = 0;; ++headers) {
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestOpts &&
        next != kIpv6Fragment && next != kIpv6Auth) {
      break;
    }
    if (headers == kMaxIpv6ExtHeaders) return ParseStatus::kTooManyExtHeaders;
    if (offset + 8 > info->end) return ParseStatus::kTruncated;
    const uint8_t* h = p + offset;
    size_t h_len;
    if (next == kIpv6Fragment) {
      h_len = 8;
      uint16_t off_flags = Load16(h + 2);
      info->fragment =
          (off_flags & 1 ? kFragmentMore : 0) | (off_flags >> 3 ? kFragmentNonFirst : 0);
      info->fragment_id = Load32(h + 4);
    } else if (next == kIpv6Auth) {
      h_len = (size_t{h[1]} + 2) * 4;
    } else {
      h_len = (size_t{h[1]} + 1) * 8;
    }
    next = h[0];
    offset += h_len;
    if (offset > info->end) return ParseStatus::kTruncated;
    // What follows a non-first fragment's header is the middle of the payload, not a header.
    if (info->fragment & kFragmentNonFirst) break;
  }
  info->proto = next;
  info->l4_offset = offset;
  return ParseStatus::kOk;
}

ParseStatus ParseL3(uint8_t family, const uint8_t* p, size_t len, bool quoted, IpBytes* src,
                    IpBytes* dst, L3Info* info) {
  return family == 4 ? ParseIpv4(p, len, quoted, src, dst, info)
                     : ParseIpv6(p, len, quoted, src, dst, info);
}

// The tuple an ICMP error quotes; false when the quote is too short to be useful.
bool ParseInner(uint8_t family, const uint8_t* p, size_t len, InnerTuple* inner) {
  L3Info info;
  if (ParseL3(family, p, len, /*quoted=*/true, &inner->src, &inner->dst, &info) !=
      ParseStatus::kOk) {
    return false;
  }
  inner->proto = info.proto;
  if (info.fragment & kFragmentNonFirst) return true;
  const uint8_t* l4 = p + info.l4_offset;
  size_t l4_len = info.end - info.l4_offset;
  if (info.proto == kProtoTcp || info.proto == kProtoUdp) {
    if (l4_len < 4) return false;  // RFC 792 quotes 8 bytes: the ports are always there
    inner->src_port = Load16(l4);
    inner->dst_port = Load16(l4 + 2);
  } else if (info.proto == (family == 4 ? kProtoIcmp : kProtoIcmpv6)) {
    if (l4_len < 8) return false;
    // An error about an echo: conntrack keys the flow on the id, on the requester's side.
    if (IsIcmpEcho(family, l4[0])) {
      bool request = l4[0] == (family == 4 ? 8 : 128);
      (request ? inner->src_port : inner->dst_port) = Load16(l4 + 4);
    }
  }
  return true;
}

// The window scale option among a SYN's TCP options, plus one; 0 when absent (or malformed).
// RFC 7323 caps the shift at 14, as Linux does.
uint8_t WindowScaleOption(const uint8_t* options, size_t len) {
  constexpr uint8_t kEnd = 0, kNop = 1, kWindowScale = 3;
  for (size_t i = 0; i < len;) {
    uint8_t kind = options[i];
    if (kind == kEnd) break;
    if (kind == kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= len || options[i + 1] < 2 || i + options[i + 1] > len) break;
    if (kind == kWindowScale && options[i + 1] == 3) {
      return static_cast<uint8_t>(std::min<uint8_t>(options[i + 2], 14) + 1);
    }
    i += options[i + 1];
  }
  return 0;
}

}  // namespace

bool IsIcmpError(uint8_t family, uint8_t icmp_type) {
  if (family == 4) return icmp_type == 3 || icmp_type == 11 || icmp_type == 12;
  return icmp_type >= 1 && icmp_type <= 4;
}

bool IsIcmpEcho(uint8_t family, uint8_t icmp_type) {
  if (family == 4) return icmp_type == 8 || icmp_type == 0;
  return icmp_type == 128 || icmp_type == 129;
}

ParseStatus ParsePacketKey(const uint8_t* l3, size_t len, uint16_t ethertype, PacketKey* key) {
  Clear(key);
  uint8_t family;
  if (ethertype == kEthTypeIpv4) {
    family = 4;
  } else if (ethertype == kEthTypeIpv6) {
    family = 6;
  } else {
    return ParseStatus::kNotIp;
  }
  L3Info info;
  if (ParseStatus status = ParseL3(family, l3, len, /*quoted=*/false, &key->src, &key->dst, &info);
      status != ParseStatus::kOk) {
    return status;
  }
  key->proto = info.proto;
  key->fragment = static_cast<uint8_t>(info.fragment);
  key->fragment_id = info.fragment_id;
  if (!(info.fragment & kFragmentNonFirst)) {
    const uint8_t* l4 = l3 + info.l4_offset;
    size_t l4_len = info.end - info.l4_offset;
    uint8_t icmp = family == 4 ? kProtoIcmp : kProtoIcmpv6;
    if (info.proto == kProtoTcp) {
      if (l4_len < 20) return ParseStatus::kTruncated;
      // Linux's conntrack calls a header shorter than 20 bytes, or longer than the segment,
      // invalid; a first fragment cutting the header short is the tiny-fragment attack.
      size_t header = static_cast<size_t>(l4[12] >> 4) * 4;
      if (header < 20) return ParseStatus::kBadHeader;
      if (header > l4_len) return ParseStatus::kTruncated;
      key->src_port = Load16(l4);
      key->dst_port = Load16(l4 + 2);
      key->tcp_seq = Load32(l4 + 4);
      key->tcp_ack = Load32(l4 + 8);
      key->tcp_flags = l4[13];
      key->tcp_window = Load16(l4 + 14);
      key->tcp_payload = static_cast<uint16_t>(l4_len - header);
      if (key->tcp_flags & kTcpSyn) {
        key->tcp_window_scale_plus_one = WindowScaleOption(l4 + 20, header - 20);
      }
    } else if (info.proto == kProtoUdp) {
      if (l4_len < 8) return ParseStatus::kTruncated;
      key->src_port = Load16(l4);
      key->dst_port = Load16(l4 + 2);
    } else if (info.proto == icmp) {
      if (l4_len < 8) return ParseStatus::kTruncated;
      key->icmp_type = l4[0];
      key->icmp_code = l4[1];
      if (IsIcmpEcho(family, key->icmp_type)) key->icmp_id = Load16(l4 + 4);
      if (IsIcmpError(family, key->icmp_type) && !info.fragment) {
        key->has_inner = ParseInner(family, l4 + 8, l4_len - 8, &key->inner) ? 1 : 0;
      }
    }
  }
  key->family = family;
  return ParseStatus::kOk;
}

}  // namespace butterfly
