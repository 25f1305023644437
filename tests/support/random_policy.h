// Random policies and packets for differential tests: rules of every protocol, port ranges,
// prefixes of every length in both families, member-like host sets; packets drawn at random and
// at the edges of what the rules say (prefix boundaries, port range ends, neighbouring values).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "core/policy.h"
#include "jit/packet_key.h"

namespace butterfly::testing {

class RandomPolicyGenerator {
 public:
  explicit RandomPolicyGenerator(uint64_t seed) : rng_(seed) {}

  std::shared_ptr<const VnicPolicy> Policy(int rule_count) {
    auto policy = std::make_shared<VnicPolicy>();
    policy->vnic_id = "random";
    policy->generation = ++generation_;
    policy->restrict_outbound = Chance(0.7);
    // A small pool of base addresses makes prefixes nest and overlap, as real policies do.
    pool_v4_.clear();
    pool_v6_.clear();
    for (int i = 0; i < 6; ++i) {
      pool_v4_.push_back(RandomBytes(4));
      pool_v6_.push_back(RandomBytes(6));
    }
    for (int i = 0; i < rule_count; ++i) policy->rules.push_back(Rule());
    return policy;
  }

  // A packet: mostly near what the policy mentions, sometimes anywhere.
  PacketKey Packet(const VnicPolicy& policy) {
    PacketKey key;
    bool v4 = Chance(0.5);
    key.family = v4 ? 4 : 6;
    const PolicyRule* rule =
        policy.rules.empty() ? nullptr : &policy.rules[Below(policy.rules.size())];
    IpBytes remote = RandomBytes(key.family);
    if (rule && !rule->remotes.empty() && Chance(0.8)) {
      const Cidr& cidr = rule->remotes[Below(rule->remotes.size())];
      if (cidr.address.is_v4() == v4) remote = NearPrefix(cidr);
    }
    IpBytes local = RandomBytes(key.family);
    bool inbound = Chance(0.5);
    key.src = inbound ? remote : local;
    key.dst = inbound ? local : remote;
    key.proto = PacketProtocol(rule, v4);
    if (key.proto == 6 || key.proto == 17) {
      key.src_port = static_cast<uint16_t>(Below(65536));
      key.dst_port = rule ? NearPorts(*rule) : static_cast<uint16_t>(Below(65536));
      if (key.proto == 6) key.tcp_flags = static_cast<uint8_t>(Below(256));
    }
    return key;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  IpBytes RandomBytes(int family_or_len) {
    IpBytes bytes{};
    int len = family_or_len == 4 ? 4 : 16;
    for (int i = 0; i < len; ++i) bytes[i] = static_cast<uint8_t>(Below(256));
    return bytes;
  }

  IpAddress Address(bool v4) {
    IpAddress ip;
    ip.family = v4 ? IpFamily::kV4 : IpFamily::kV6;
    const auto& pool = v4 ? pool_v4_ : pool_v6_;
    ip.bytes = Chance(0.7) ? pool[Below(pool.size())] : RandomBytes(v4 ? 4 : 16);
    // Flip a few low bits so pool-based addresses differ past a random depth.
    int width = v4 ? 32 : 128;
    for (int flips = static_cast<int>(Below(3)); flips > 0; --flips) {
      int bit = static_cast<int>(Below(width));
      ip.bytes[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    return ip;
  }

  PolicyRule Rule() {
    PolicyRule rule;
    rule.direction = Chance(0.5) ? Direction::kInbound : Direction::kOutbound;
    static const int kProtocols[] = {kAnyProtocol, kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpv6,
                                     47,           132,       0,         255};
    rule.protocol = kProtocols[Below(std::size(kProtocols))];
    if (rule.protocol == kProtoTcp || rule.protocol == kProtoUdp) {
      int shape = static_cast<int>(Below(4));
      uint16_t a = static_cast<uint16_t>(Below(65536)), b = static_cast<uint16_t>(Below(65536));
      if (shape == 0) {
        rule.port_first = rule.port_last = a;  // one port
      } else if (shape == 1) {
        rule.port_first = 0, rule.port_last = 65535;
      } else {
        rule.port_first = std::min(a, b), rule.port_last = std::max(a, b);
        if (shape == 3)
          rule.port_last = static_cast<uint16_t>(std::min<int>(rule.port_first + Below(64), 65535));
      }
    }
    // A cidr, a member set (hosts), or an empty member set.
    int kind = static_cast<int>(Below(10));
    int count = kind < 6 ? 1 : kind < 9 ? 1 + static_cast<int>(Below(40)) : 0;
    for (int i = 0; i < count; ++i) {
      bool v4 = Chance(0.5);
      IpAddress ip = Address(v4);
      int width = v4 ? 32 : 128;
      int length = kind < 6 ? static_cast<int>(Below(width + 1)) : width;
      rule.remotes.push_back(Cidr{ip.Masked(length), length});
    }
    return rule;
  }

  IpBytes NearPrefix(const Cidr& cidr) {
    int width = cidr.address.bit_width();
    IpBytes bytes = cidr.address.bytes;
    int host_bits = width - cidr.prefix_length;
    int choice = static_cast<int>(Below(5));
    if (choice == 0) return bytes;     // first address
    if (choice == 1 || choice == 2) {  // last address, or one past it
      for (int bit = cidr.prefix_length; bit < width; ++bit)
        bytes[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
      if (choice == 2) Step(&bytes, width, +1);
      return bytes;
    }
    if (choice == 3) {  // one before the first
      Step(&bytes, width, -1);
      return bytes;
    }
    for (int bit = cidr.prefix_length; bit < width; ++bit) {  // anywhere inside
      if (host_bits > 0 && Chance(0.5)) bytes[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    return bytes;
  }

  static void Step(IpBytes* bytes, int width, int delta) {
    for (int i = width / 8 - 1; i >= 0; --i) {
      uint8_t before = (*bytes)[i];
      (*bytes)[i] = static_cast<uint8_t>(before + delta);
      if ((delta > 0 && before != 0xff) || (delta < 0 && before != 0)) return;
    }
  }

  uint8_t PacketProtocol(const PolicyRule* rule, bool v4) {
    if (rule && rule->protocol != kAnyProtocol && Chance(0.7))
      return static_cast<uint8_t>(rule->protocol);
    static const uint8_t kCommon[] = {6, 17, 1, 58, 47, 0, 255, 132};
    if (Chance(0.8)) return kCommon[Below(std::size(kCommon))];
    (void)v4;
    return static_cast<uint8_t>(Below(256));
  }

  uint16_t NearPorts(const PolicyRule& rule) {
    int choice = static_cast<int>(Below(6));
    int value;
    switch (choice) {
      case 0:
        value = rule.port_first;
        break;
      case 1:
        value = rule.port_last;
        break;
      case 2:
        value = rule.port_first - 1;
        break;
      case 3:
        value = rule.port_last + 1;
        break;
      default:
        value = static_cast<int>(Below(65536));
        break;
    }
    return static_cast<uint16_t>(value & 0xffff);
  }

  std::mt19937_64 rng_;
  uint64_t generation_ = 0;
  std::vector<IpBytes> pool_v4_, pool_v6_;
};

}  // namespace butterfly::testing
