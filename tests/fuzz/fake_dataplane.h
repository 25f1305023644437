// The dataplane behind its interface, for the control-side targets: it keeps what the controller
// told it (vnics, policies, peers, static MACs) so a target can check that the controller keeps
// it in line with the model, refuses some vnics (as a real port that cannot be created), and keeps
// each vnic's flows in a real conntrack table (nic_add fw_data, nic_export).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/dataplane.h"
#include "pipeline/conntrack.h"

namespace butterfly::fuzz {

class FakeDataplane final : public Dataplane {
 public:
  // A vnic of this VNI cannot be created or moved to: the way a port creation fails.
  static constexpr uint32_t kRefusedVni = 666;

  std::string Describe() const override { return "fake"; }
  bool Forwarding() const override { return true; }
  Status AddVnic(const Vnic& vnic, const std::string&) override {
    if (vnic.vni == kRefusedVni) return Fail("fake: vni 666 refused");
    if (vnics.contains(vnic.id)) return Fail("fake: vnic " + vnic.id + " added twice");
    vnics.emplace(vnic.id, vnic);
    ConntrackConfig config;
    config.max_entries = 8;
    flows[vnic.id] = std::make_unique<Conntrack>(config);
    return Ok();
  }
  Status UpdateVnic(const Vnic& before, const Vnic& after, const std::string&) override {
    if (after.vni == kRefusedVni) return Fail("fake: vni 666 refused");
    auto found = vnics.find(before.id);
    if (found == vnics.end() || !(found->second == before) || before.id != after.id) {
      return Fail("fake: update of a vnic not as added");
    }
    found->second = after;
    return Ok();
  }
  void RemoveVnic(const Vnic& vnic) override {
    vnics.erase(vnic.id);
    flows.erase(vnic.id);
    policies.erase(vnic.id);
  }
  void SetPolicy(std::shared_ptr<const VnicPolicy> policy) override {
    policies[policy->vnic_id] = std::move(policy);
  }
  VnicLink Link(const Vnic&) const override { return {"connected", ""}; }
  VnicCounters Counters(const Vnic&) const override { return {}; }
  void SetVniPeers(uint32_t vni, const std::vector<IpAddress>& list) override {
    if (list.empty()) {
      peers.erase(vni);
    } else {
      peers[vni] = list;
    }
  }
  void SetStaticMac(uint32_t vni, const MacAddress& mac, std::optional<IpAddress> vtep) override {
    if (vtep) {
      static_macs.insert_or_assign({vni, mac}, *vtep);
    } else {
      static_macs.erase({vni, mac});
    }
  }
  std::optional<IpFamily> VtepFamily() const override { return IpFamily::kV4; }
  Result<std::string> ExportFlows(const Vnic& vnic) override {
    auto found = flows.find(vnic.id);
    if (found == flows.end()) return Error{"fake: no such vnic"};
    return found->second->Export(0, kNow);
  }
  Status ImportFlows(const Vnic& vnic, const std::string& bytes) override {
    auto found = flows.find(vnic.id);
    if (found == flows.end()) return Fail("fake: no such vnic");
    return found->second->Import(bytes, 0, kNow);
  }

  static constexpr uint64_t kNow = 1000;
  std::map<std::string, Vnic> vnics;
  std::map<std::string, std::unique_ptr<Conntrack>> flows;
  std::map<std::string, std::shared_ptr<const VnicPolicy>> policies;
  std::map<uint32_t, std::vector<IpAddress>> peers;
  std::map<std::pair<uint32_t, MacAddress>, IpAddress> static_macs;
};

}  // namespace butterfly::fuzz
