// The one seam between the control plane and the switch. The control thread owns the model and
// calls these methods as it changes; the dataplane (src/pipeline) and the filter engine (src/jit)
// implement them. Every method is called from the control thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/policy.h"
#include "core/result.h"

namespace butterfly {

// What the dataplane can say of one vnic right now.
struct VnicLink {
  // "disabled" (no dataplane), "waiting" (port ready, nothing attached), "connected", "down".
  std::string state;
  std::string detail;
};

struct VnicCounters {
  uint64_t bytes_in = 0;   // from the VM
  uint64_t bytes_out = 0;  // to the VM
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  // Drops by reason, with stable reason names ("filter", "antispoof", "no_route", ...).
  std::vector<std::pair<std::string, uint64_t>> drops;
};

// Per worker and per stage counters, for performance engineers (butterfly stats).
struct StageStats {
  std::string name;
  uint64_t packets = 0;
  uint64_t drops = 0;
  uint64_t cycles = 0;
  uint64_t calls = 0;
};

struct WorkerStats {
  unsigned id = 0;
  unsigned lcore = 0;
  unsigned vnics = 0;
  uint64_t loops = 0;
  uint64_t busy_loops = 0;
  uint64_t sleeps = 0;
  uint64_t busy_cycles = 0;
  uint64_t idle_cycles = 0;
  std::vector<StageStats> stages;
  std::vector<std::pair<std::string, uint64_t>> drops;
};

struct DataplaneStats {
  uint64_t tsc_hz = 0;
  std::vector<WorkerStats> workers;
  // Filter engine and conntrack.
  std::vector<std::pair<std::string, uint64_t>> filter;
};

// A remote MAC the dataplane learned from decapsulated traffic.
struct LearnedMac {
  uint32_t vni = 0;
  MacAddress mac;
  IpAddress vtep;
  uint32_t idle_seconds = 0;
};

class Dataplane {
 public:
  virtual ~Dataplane() = default;

  // One line for logs and `status`: what runs, or why nothing does.
  virtual std::string Describe() const = 0;
  // False when no packet can flow (vnics are recorded but not connected).
  virtual bool Forwarding() const = 0;

  // Creates the vnic's port at `path` (a socket path or an interface name). On failure nothing is
  // left behind and the error says why.
  virtual Status AddVnic(const Vnic& vnic, const std::string& path) = 0;
  // Applies a changed vnic; the port stays up when only settings changed (the VM keeps its link).
  virtual Status UpdateVnic(const Vnic& before, const Vnic& after, const std::string& path) = 0;
  virtual void RemoveVnic(const Vnic& vnic) = 0;
  // The vnic's effective policy changed (rules, members, groups, IPs, bypass). Until the first
  // call for a vnic, its traffic is dropped.
  virtual void SetPolicy(std::shared_ptr<const VnicPolicy> policy) = 0;

  virtual VnicLink Link(const Vnic& vnic) const = 0;
  virtual VnicCounters Counters(const Vnic& vnic) const = 0;
  // Nothing when there are no workers.
  virtual std::optional<DataplaneStats> Stats() const { return std::nullopt; }

  // Broadcast and unknown traffic of `vni` goes to these VTEPs (head-end replication); none: to
  // the VNI's multicast group.
  virtual void SetVniPeers(uint32_t vni, const std::vector<IpAddress>& peers) {
    (void)vni;
    (void)peers;
  }
  // A static remote MAC (vtep set) or its removal (vtep empty).
  virtual void SetStaticMac(uint32_t vni, const MacAddress& mac, std::optional<IpAddress> vtep) {
    (void)vni;
    (void)mac;
    (void)vtep;
  }
  virtual std::vector<LearnedMac> LearnedMacs() const { return {}; }
  // The family of the VTEP address (-i), which every remote VTEP shares; nothing without one.
  virtual std::optional<IpFamily> VtepFamily() const { return std::nullopt; }

  // The vnic's tracked flows (nic_export), and their import into a vnic (nic_add with fw_data):
  // a live-migrated VM keeps its established connections.
  virtual Result<std::string> ExportFlows(const Vnic& vnic) {
    (void)vnic;
    return std::string();
  }
  virtual Status ImportFlows(const Vnic& vnic, const std::string& flows) {
    (void)vnic;
    (void)flows;
    return Fail("this dataplane keeps no flows to import into");
  }
};

// Used until a dataplane is built in or when it cannot start: records nothing, forwards nothing,
// and says so. It never claims a vnic is connected.
class DisabledDataplane final : public Dataplane {
 public:
  explicit DisabledDataplane(std::string reason) : reason_(std::move(reason)) {}
  std::string Describe() const override { return "disabled: " + reason_; }
  bool Forwarding() const override { return false; }
  Status AddVnic(const Vnic&, const std::string&) override { return Ok(); }
  Status UpdateVnic(const Vnic&, const Vnic&, const std::string&) override { return Ok(); }
  void RemoveVnic(const Vnic&) override {}
  void SetPolicy(std::shared_ptr<const VnicPolicy>) override {}
  VnicLink Link(const Vnic&) const override { return {"disabled", reason_}; }
  VnicCounters Counters(const Vnic&) const override { return {}; }

 private:
  std::string reason_;
};

}  // namespace butterfly
