// What the control-side targets compare: the model as `butterfly dump` would print it (vnics,
// groups, peers, static MACs), and the check that the dataplane was told exactly that.
#pragma once

#include <string>

#include "api/journal_recorder.h"
#include "core/controller.h"
#include "fake_dataplane.h"
#include "fuzz_support.h"

namespace butterfly::fuzz {

inline std::string DumpModel(const Controller& controller) {
  std::string dump;
  for (const MessageV0_Request& request : SnapshotRequests(controller)) {
    dump += request.ShortDebugString();
    dump += '\n';
  }
  return dump;
}

inline bool SamePolicy(const VnicPolicy& a, const VnicPolicy& b) {
  if (a.vnic_id != b.vnic_id || a.bypass_filtering != b.bypass_filtering ||
      a.vnic_ips != b.vnic_ips || a.restrict_outbound != b.restrict_outbound ||
      a.rules.size() != b.rules.size()) {
    return false;
  }
  for (size_t i = 0; i < a.rules.size(); ++i) {
    const PolicyRule& x = a.rules[i];
    const PolicyRule& y = b.rules[i];
    if (x.direction != y.direction || x.protocol != y.protocol || x.port_first != y.port_first ||
        x.port_last != y.port_last || x.remotes != y.remotes) {
      return false;
    }
  }
  return true;
}

// The dataplane holds every vnic of the model as the model has it, and, once the pending
// policies are published, each vnic's policy as built from the model now.
inline void CheckDataplaneMatchesModel(Controller& controller, const FakeDataplane& dataplane) {
  controller.FlushPolicies();
  const Model& model = controller.model();
  FUZZ_CHECK(dataplane.vnics == model.vnics(), "the dataplane's vnics differ from the model's");
  for (const auto& [id, vnic] : model.vnics()) {
    auto policy = dataplane.policies.find(id);
    FUZZ_CHECK(policy != dataplane.policies.end(), "vnic %s has no policy in the dataplane",
               id.c_str());
    FUZZ_CHECK(SamePolicy(*policy->second, *BuildVnicPolicy(model, vnic)),
               "vnic %s: the dataplane enforces a stale policy", id.c_str());
  }
  FUZZ_CHECK(dataplane.peers == model.vni_peers());
  FUZZ_CHECK(dataplane.static_macs == model.static_fdb());
}

}  // namespace butterfly::fuzz
