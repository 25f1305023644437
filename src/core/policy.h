// The effective policy of one vnic: what the filter engine compiles. Built by the control thread
// from the model (the union of the rules of all the vnic's security groups, members expanded),
// immutable once built, and handed to the dataplane as a shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/net_types.h"

namespace butterfly {

struct PolicyRule {
  Direction direction = Direction::kInbound;
  int protocol = kAnyProtocol;  // -1 (any) or 0-255
  // Destination port range, meaningful for tcp and udp only (0-65535 otherwise).
  uint16_t port_first = 0;
  uint16_t port_last = 65535;
  // The remote address must fall in one of these: one prefix for a cidr rule, one host prefix per
  // member for a members-of-SG rule (none when that group is missing or empty: matches nothing).
  std::vector<Cidr> remotes;
};

struct VnicPolicy {
  std::string vnic_id;
  // Increases with every policy built by this process, so a conntrack entry can tell whether it
  // was admitted under the policy now in force.
  uint64_t generation = 0;
  bool bypass_filtering = false;
  // IP packets from the VM must carry one of these as source (DHCP client traffic excepted).
  std::vector<IpAddress> vnic_ips;
  // False while none of the vnic's groups has an outbound rule: the VM may then open any flow.
  bool restrict_outbound = false;
  std::vector<PolicyRule> rules;
};

// Builds the effective policy of `vnic`. Groups that do not exist count as empty.
std::shared_ptr<const VnicPolicy> BuildVnicPolicy(const Model& model, const Vnic& vnic);

}  // namespace butterfly
