#include "pipeline/counters.h"

namespace butterfly {

const char* DropReasonName(DropReason reason) {
  static constexpr const char* kNames[kDropReasonCount] = {
      "filter",      "antispoof",      "no_route",      "mtu",       "malformed",
      "queue_full",  "conntrack_full", "no_policy",     "not_vxlan", "bad_vxlan",
      "unknown_vni", "no_neighbor",    "not_connected", "no_buffer", "fragment"};
  auto index = static_cast<size_t>(reason);
  return index < kDropReasonCount ? kNames[index] : "?";
}

const char* StageName(Stage stage) {
  static constexpr const char* kNames[kStageCount] = {
      "underlay_rx", "vxlan_decap", "vnic_rx", "antispoof",      "filter_egress", "l2_lookup",
      "vxlan_encap", "underlay_tx", "handoff", "filter_ingress", "vnic_tx",       "vtep"};
  auto index = static_cast<size_t>(stage);
  return index < kStageCount ? kNames[index] : "?";
}

}  // namespace butterfly
