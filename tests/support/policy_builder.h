// Builds VnicPolicy values for tests without going through the model.
#pragma once

#include <atomic>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/policy.h"

namespace butterfly::testing {

inline Cidr MakeCidr(const std::string& text) {
  auto cidr = Cidr::Parse(text);
  if (!cidr) throw std::invalid_argument(cidr.error());
  return *cidr;
}

class PolicyBuilder {
 public:
  explicit PolicyBuilder(std::string vnic_id = "vnic") { policy_.vnic_id = std::move(vnic_id); }

  PolicyBuilder& VnicIp(const std::string& ip) {
    policy_.vnic_ips.push_back(*IpAddress::Parse(ip));
    return *this;
  }
  PolicyBuilder& Inbound(int protocol, uint16_t first, uint16_t last,
                         std::initializer_list<const char*> remotes) {
    return Add(Direction::kInbound, protocol, first, last, remotes);
  }
  PolicyBuilder& Outbound(int protocol, uint16_t first, uint16_t last,
                          std::initializer_list<const char*> remotes) {
    policy_.restrict_outbound = true;
    return Add(Direction::kOutbound, protocol, first, last, remotes);
  }
  PolicyBuilder& Add(Direction direction, int protocol, uint16_t first, uint16_t last,
                     std::initializer_list<const char*> remotes) {
    PolicyRule rule;
    rule.direction = direction;
    rule.protocol = protocol;
    rule.port_first = first;
    rule.port_last = last;
    for (const char* remote : remotes) rule.remotes.push_back(MakeCidr(remote));
    policy_.rules.push_back(rule);
    return *this;
  }
  PolicyBuilder& RestrictOutbound() {
    policy_.restrict_outbound = true;
    return *this;
  }
  PolicyBuilder& Bypass() {
    policy_.bypass_filtering = true;
    return *this;
  }
  VnicPolicy& policy() { return policy_; }
  std::shared_ptr<const VnicPolicy> Build() {
    static std::atomic<uint64_t> generation{1000};
    auto built = std::make_shared<VnicPolicy>(policy_);
    built->generation = generation.fetch_add(1);
    return built;
  }

 private:
  VnicPolicy policy_;
};

}  // namespace butterfly::testing
