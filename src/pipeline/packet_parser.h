// The packet parser: an IP packet (IPv4, or IPv6 and its extension headers) into the PacketKey the
// filter and conntrack read. Plain memory, no DPDK: ParseFrame (pipeline/frame.h) calls it on an
// mbuf's frame, tests and the fuzz target on bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/protocol_numbers.h"
#include "jit/packet_key.h"

namespace butterfly {

// Why ParsePacketKey refused a packet. Numbers are stable (counters are keyed on them).
enum class ParseStatus : uint8_t {
  kOk = 0,
  kNotIp = 1,      // ethertype is neither IPv4 nor IPv6
  kTruncated = 2,  // a header runs past the buffer
  kBadHeader = 3,  // version, header length or total length inconsistent
  kTooManyExtHeaders = 4,
};

// ICMP/ICMPv6 types the filter gives a meaning to.
bool IsIcmpError(uint8_t family, uint8_t icmp_type);
bool IsIcmpEcho(uint8_t family, uint8_t icmp_type);

// Parses the L3 header at `l3` (`len` bytes, starting at the IP header) and what follows into
// `key`. Never reads past `len`. A packet whose ICMP error quote is cut short still parses (the
// quote is then ignored: has_inner stays 0).
ParseStatus ParsePacketKey(const uint8_t* l3, size_t len, uint16_t ethertype, PacketKey* key);

}  // namespace butterfly
