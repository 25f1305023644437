// DPDK's own classifier (rte_acl) built from the same rules, as the peer the JIT is measured
// against. Inbound rules only (the benchmark's direction): protocol, remote (source) address,
// destination port. IPv4 and IPv6 need separate contexts: their field layouts differ.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/policy.h"
#include "jit/packet_key.h"

struct rte_acl_ctx;

namespace butterfly::bench {

// The bytes rte_acl reads, in network order, grouped in 4-byte words after the first byte.
struct AclInputV4 {
  uint8_t proto;
  uint8_t pad[3];
  uint32_t remote;
  uint16_t src_port;
  uint16_t dst_port;
};
struct AclInputV6 {
  uint8_t proto;
  uint8_t pad[3];
  uint32_t remote[4];
  uint16_t src_port;
  uint16_t dst_port;
};

class AclClassifier {
 public:
  // Throws std::runtime_error when rte_acl refuses the rules.
  AclClassifier(const VnicPolicy& policy, const std::string& name);
  ~AclClassifier();
  AclClassifier(const AclClassifier&) = delete;
  AclClassifier& operator=(const AclClassifier&) = delete;

  static AclInputV4 InputV4(const PacketKey& key);
  static AclInputV6 InputV6(const PacketKey& key);
  // results[i] != 0 when a rule allows input i. At most 64 inputs per call.
  void ClassifyV4(const uint8_t** inputs, uint32_t* results, uint32_t n) const;
  void ClassifyV6(const uint8_t** inputs, uint32_t* results, uint32_t n) const;
  double build_ms() const { return build_ms_; }

 private:
  rte_acl_ctx* v4_ = nullptr;  // null: no IPv4 rule, nothing matches
  rte_acl_ctx* v6_ = nullptr;
  double build_ms_ = 0;
};

}  // namespace butterfly::bench
