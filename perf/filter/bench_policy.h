// The rule sets and packets the filter benchmark measures: inbound rules of mixed protocols, half
// IPv4 and half IPv6, most of them single remote hosts (security group members) and the rest
// prefixes; packets half allowed (drawn from a rule) and half random in the same address ranges.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/policy.h"
#include "jit/packet_key.h"

namespace butterfly::bench {

struct BenchSet {
  VnicPolicy policy;
  std::vector<PacketKey> packets;
};

inline IpBytes RandomAddress(std::mt19937_64& rng, bool v4) {
  IpBytes bytes{};
  if (v4) {
    bytes[0] = 10;  // 10.0.0.0/8
    for (int i = 1; i < 4; ++i) bytes[i] = static_cast<uint8_t>(rng());
  } else {
    const uint8_t prefix[4] = {0x20, 0x01, 0x0d, 0xb8};  // 2001:db8::/32
    for (int i = 0; i < 16; ++i) bytes[i] = i < 4 ? prefix[i] : static_cast<uint8_t>(rng());
  }
  return bytes;
}

inline BenchSet MakeBenchSet(int rule_count, int packet_count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](int n) { return static_cast<int>(rng() % n); };
  BenchSet set;
  set.policy.vnic_id = "bench";
  set.policy.generation = 1;
  set.policy.restrict_outbound = true;
  for (int i = 0; i < rule_count; ++i) {
    bool v4 = i % 2 == 0;
    PolicyRule rule;
    rule.direction = Direction::kInbound;
    int p = uniform(100);
    rule.protocol = p < 45   ? kProtoTcp
                    : p < 70 ? kProtoUdp
                    : p < 80 ? (v4 ? kProtoIcmp : kProtoIcmpv6)
                    : p < 90 ? kAnyProtocol
                             : 47;
    if (rule.protocol == kProtoTcp || rule.protocol == kProtoUdp) {
      int shape = uniform(10);
      uint16_t port = static_cast<uint16_t>(1 + uniform(65000));
      if (shape < 6) {
        rule.port_first = rule.port_last = port;
      } else if (shape < 9) {
        rule.port_first = port;
        rule.port_last = static_cast<uint16_t>(std::min(65535, port + uniform(1000)));
      }
    }
    IpAddress address;
    address.family = v4 ? IpFamily::kV4 : IpFamily::kV6;
    address.bytes = RandomAddress(rng, v4);
    int width = v4 ? 32 : 128;
    int length = uniform(10) < 6 ? width : v4 ? 20 + uniform(9) : 64 + uniform(61);
    rule.remotes.push_back(Cidr{address.Masked(length), length});
    set.policy.rules.push_back(rule);
  }
  for (int i = 0; i < packet_count; ++i) {
    PacketKey key;
    bool from_rule = uniform(2) == 0 && rule_count > 0;
    const PolicyRule& rule = set.policy.rules[rule_count ? uniform(rule_count) : 0];
    bool v4 = from_rule ? rule.remotes[0].address.is_v4() : uniform(2) == 0;
    key.family = v4 ? 4 : 6;
    key.src = RandomAddress(rng, v4);
    key.dst = RandomAddress(rng, v4);
    key.proto = static_cast<uint8_t>(uniform(2) ? kProtoTcp : kProtoUdp);
    key.src_port = static_cast<uint16_t>(1024 + uniform(60000));
    key.dst_port = static_cast<uint16_t>(1 + uniform(65000));
    key.tcp_flags = kTcpSyn;
    if (from_rule) {
      const Cidr& remote = rule.remotes[0];
      // An address inside the rule's prefix.
      for (int bit = remote.prefix_length; bit < remote.address.bit_width(); ++bit) {
        if (rng() & 1)
          key.src[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
        else
          key.src[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
      }
      for (int bit = 0; bit < remote.prefix_length; ++bit) {
        uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
        key.src[bit / 8] = static_cast<uint8_t>((key.src[bit / 8] & ~mask) |
                                                (remote.address.bytes[bit / 8] & mask));
      }
      if (rule.protocol != kAnyProtocol) key.proto = static_cast<uint8_t>(rule.protocol);
      key.dst_port =
          static_cast<uint16_t>(rule.port_first + uniform(rule.port_last - rule.port_first + 1));
    }
    if (key.proto != kProtoTcp && key.proto != kProtoUdp)
      key.src_port = key.dst_port = key.tcp_flags = 0;
    set.packets.push_back(key);
  }
  return set;
}

}  // namespace butterfly::bench
