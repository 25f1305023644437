#include "core/policy.h"

#include <atomic>
#include <unordered_set>

namespace butterfly {
namespace {

std::atomic<uint64_t> g_next_generation{1};

PolicyRule ToPolicyRule(const Model& model, const Rule& rule) {
  PolicyRule out;
  out.direction = rule.direction;
  out.protocol = rule.protocol;
  if (rule.HasPorts()) {
    out.port_first = static_cast<uint16_t>(rule.port_start.value_or(0));
    out.port_last = static_cast<uint16_t>(rule.port_end.value_or(65535));
  }
  if (rule.cidr) {
    out.remotes.push_back(*rule.cidr);
  } else if (const SecurityGroup* remote = model.FindSg(rule.remote_sg)) {
    out.remotes.reserve(remote->members().size());
    for (const IpAddress& member : remote->members()) {
      out.remotes.push_back(Cidr{member, member.bit_width()});
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<const VnicPolicy> BuildVnicPolicy(const Model& model, const Vnic& vnic) {
  auto policy = std::make_shared<VnicPolicy>();
  policy->vnic_id = vnic.id;
  policy->generation = g_next_generation.fetch_add(1);
  policy->bypass_filtering = vnic.bypass_filtering;
  policy->vnic_ips = vnic.ips;
  // Two groups may hold the same rule: the union keeps it once.
  std::unordered_set<Rule, RuleHasher> seen;
  for (const std::string& sg_id : vnic.security_groups) {
    const SecurityGroup* sg = model.FindSg(sg_id);
    if (!sg) continue;
    if (sg->HasOutboundRule()) policy->restrict_outbound = true;
    for (const Rule& rule : sg->rules()) {
      if (seen.insert(rule).second) policy->rules.push_back(ToPolicyRule(model, rule));
    }
  }
  return policy;
}

}  // namespace butterfly
