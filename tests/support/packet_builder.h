// Builds test packets: raw IPv4/IPv6 bytes for the parser, and PacketKeys directly for the filter
// and conntrack (Katran's style: tests read as tables of packets and expected verdicts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/net_types.h"
#include "jit/packet_key.h"

namespace butterfly::testing {

inline IpBytes Ip(const std::string& text) {
  auto ip = IpAddress::Parse(text);
  if (!ip) throw std::invalid_argument(ip.error());
  return ip->bytes;
}

inline uint8_t FamilyOf(const std::string& text) {
  return text.find(':') == std::string::npos ? 4 : 6;
}

// A PacketKey as the parser would produce it.
struct Key {
  PacketKey key;

  static Key Tcp(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                 uint8_t flags = kTcpSyn) {
    Key k = Base(src, dst, 6);
    k.key.src_port = sport;
    k.key.dst_port = dport;
    k.key.tcp_flags = flags;
    return k;
  }
  static Key Udp(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
    Key k = Base(src, dst, 17);
    k.key.src_port = sport;
    k.key.dst_port = dport;
    return k;
  }
  static Key Icmp(const std::string& src, const std::string& dst, uint8_t type, uint16_t id = 0) {
    Key k = Base(src, dst, FamilyOf(src) == 4 ? 1 : 58);
    k.key.icmp_type = type;
    k.key.icmp_id = id;
    return k;
  }
  static Key Proto(const std::string& src, const std::string& dst, uint8_t proto) {
    return Base(src, dst, proto);
  }
  static Key Base(const std::string& src, const std::string& dst, uint8_t proto) {
    Key k;
    k.key.family = FamilyOf(src);
    k.key.src = Ip(src);
    k.key.dst = Ip(dst);
    k.key.proto = proto;
    return k;
  }
  // The same tuple seen from the other side.
  Key Reply(uint8_t flags) const {
    Key k = *this;
    std::swap(k.key.src, k.key.dst);
    std::swap(k.key.src_port, k.key.dst_port);
    k.key.tcp_flags = flags;
    if (k.key.icmp_type == 8) k.key.icmp_type = 0;
    if (k.key.icmp_type == 128) k.key.icmp_type = 129;
    return k;
  }
  Key Flags(uint8_t flags) const {
    Key k = *this;
    k.key.tcp_flags = flags;
    return k;
  }
  // A TCP segment of this tuple: flags, sequence, ack, window (unscaled) and payload bytes.
  Key Segment(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t window = 65535,
              uint16_t payload = 0) const {
    Key k = *this;
    k.key.tcp_flags = flags;
    k.key.tcp_seq = seq;
    k.key.tcp_ack = ack;
    k.key.tcp_window = window;
    k.key.tcp_payload = payload;
    return k;
  }
  Key Fragment(uint8_t bits, uint32_t id) const {
    Key k = *this;
    k.key.fragment = bits;
    k.key.fragment_id = id;
    if (bits & kFragmentNonFirst) k.key.src_port = k.key.dst_port = 0, k.key.tcp_flags = 0;
    return k;
  }
  operator const PacketKey&() const { return key; }  // NOLINT
};

// Raw packet bytes, network order, checksums left zero (the parser does not check them).
class RawPacket {
 public:
  static std::vector<uint8_t> Ipv4(const std::string& src, const std::string& dst, uint8_t proto,
                                   const std::vector<uint8_t>& payload, uint16_t frag = 0,
                                   uint16_t id = 0x1234) {
    std::vector<uint8_t> p(20);
    p[0] = 0x45;
    Put16(&p, 2, static_cast<uint16_t>(20 + payload.size()));
    Put16(&p, 4, id);
    Put16(&p, 6, frag);
    p[8] = 64;
    p[9] = proto;
    IpBytes s = Ip(src), d = Ip(dst);
    std::copy(s.begin(), s.begin() + 4, p.begin() + 12);
    std::copy(d.begin(), d.begin() + 4, p.begin() + 16);
    Append(&p, payload);
    return p;
  }
  // `ext` is a chain of extension headers (each with its next-header byte set by the caller);
  // `first_next` is the next-header value of the fixed header.
  static std::vector<uint8_t> Ipv6(const std::string& src, const std::string& dst,
                                   uint8_t first_next, const std::vector<uint8_t>& ext,
                                   const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> p(40);
    p[0] = 0x60;
    Put16(&p, 4, static_cast<uint16_t>(ext.size() + payload.size()));
    p[6] = first_next;
    p[7] = 64;
    IpBytes s = Ip(src), d = Ip(dst);
    std::copy(s.begin(), s.end(), p.begin() + 8);
    std::copy(d.begin(), d.end(), p.begin() + 24);
    Append(&p, ext);
    Append(&p, payload);
    return p;
  }
  static std::vector<uint8_t> Tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    std::vector<uint8_t> t(20);
    Put16(&t, 0, sport);
    Put16(&t, 2, dport);
    t[12] = 5 << 4;
    t[13] = flags;
    return t;
  }
  static std::vector<uint8_t> Udp(uint16_t sport, uint16_t dport) {
    std::vector<uint8_t> u(8);
    Put16(&u, 0, sport);
    Put16(&u, 2, dport);
    Put16(&u, 4, 8);
    return u;
  }
  static std::vector<uint8_t> Icmp(uint8_t type, uint8_t code, uint16_t id,
                                   const std::vector<uint8_t>& quote = {}) {
    std::vector<uint8_t> i(8);
    i[0] = type;
    i[1] = code;
    Put16(&i, 4, id);
    Append(&i, quote);
    return i;
  }
  // vector::insert trips GCC 12's -Warray-bounds (a false positive) when inlined here.
  static void Append(std::vector<uint8_t>* to, const std::vector<uint8_t>& bytes) {
    to->reserve(to->size() + bytes.size());
    for (uint8_t b : bytes) to->push_back(b);
  }
  static void Put16(std::vector<uint8_t>* p, size_t at, uint16_t v) {
    (*p)[at] = static_cast<uint8_t>(v >> 8);
    (*p)[at + 1] = static_cast<uint8_t>(v);
  }
};

}  // namespace butterfly::testing
