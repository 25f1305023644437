// Applies API operations to the model, all-or-nothing and idempotent (an add of what exists with
// the same content and a delete of what is missing succeed and change nothing, so a client may
// repeat a call whose answer it lost), and tells the dataplane what changed. Owned and called by
// the control thread only.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/dataplane.h"
#include "core/model.h"
#include "core/result.h"

namespace butterfly {

// The fields of a nic_update; unset fields keep their value.
struct VnicUpdate {
  std::string id;
  std::optional<bool> ip_anti_spoof;
  std::optional<std::vector<IpAddress>> ips;
  std::optional<std::vector<std::string>> security_groups;
  std::optional<bool> packet_trace;
  std::optional<std::string> packet_trace_path;
};

class Controller {
 public:
  Controller(std::string socket_dir, Dataplane& dataplane);

  const Model& model() const { return model_; }
  const std::string& socket_dir() const { return socket_dir_; }

  // The socket path (vhost-user) or interface name (TAP) of a vnic.
  std::string PathOf(const Vnic& vnic) const;

  // Creates the vnic, or updates it in place when it exists with other content (no-op when the
  // content is the same). Returns the vnic's path.
  Result<std::string> AddVnic(Vnic vnic);
  // AddVnic, then the import of the vnic's tracked flows (nic_add with fw_data: a live-migrated
  // VM keeps its established connections). All or nothing: when the import fails, a vnic this
  // call created goes away again and one it updated gets its previous content back.
  Result<std::string> AddVnicWithFlows(Vnic vnic, const std::string& flows);
  Status UpdateVnic(const VnicUpdate& update);
  // Missing: success.
  Status RemoveVnic(const std::string& id);

  // Creates or fully replaces a group (no-op when the content is the same).
  Status PutSecurityGroup(const SecurityGroup& sg);
  // Missing: success. Vnics keep referring to it (it counts as empty).
  Status RemoveSecurityGroup(const std::string& id);
  // Ok when `id` exists or one more security group fits under kMaxSecurityGroups.
  Status RoomForNewSg(const std::string& id) const;
  // Duplicate: success. Missing group: created.
  Status AddRule(const std::string& sg_id, const Rule& rule);
  // Missing group or rule: success.
  Status RemoveRule(const std::string& sg_id, const Rule& rule);
  Status AddMember(const std::string& sg_id, const IpAddress& member);
  Status RemoveMember(const std::string& sg_id, const IpAddress& member);

  // Head-end replication peers of a VNI (IPv4 VTEPs); none: back to its multicast group.
  Status SetVniPeers(uint32_t vni, const std::vector<IpAddress>& peers);
  // A static remote MAC; learning never overrides it. Re-adding replaces its VTEP.
  Status AddStaticMac(uint32_t vni, const MacAddress& mac, const IpAddress& vtep);
  // Missing: success.
  Status RemoveStaticMac(uint32_t vni, const MacAddress& mac);

  // What the dataplane says, for the API's reads (status, dp_stats, nic_details, nic_stats,
  // nic_export, fdb_list): the API reaches the dataplane through these only.
  std::string DataplaneDescription() const { return dataplane_.Describe(); }
  VnicLink Link(const Vnic& vnic) const { return dataplane_.Link(vnic); }
  VnicCounters Counters(const Vnic& vnic) const { return dataplane_.Counters(vnic); }
  std::optional<DataplaneStats> Stats() const { return dataplane_.Stats(); }
  std::vector<LearnedMac> LearnedMacs() const { return dataplane_.LearnedMacs(); }
  std::optional<IpFamily> VtepFamily() const { return dataplane_.VtepFamily(); }
  Result<std::string> ExportFlows(const Vnic& vnic) { return dataplane_.ExportFlows(vnic); }

  using Clock = std::chrono::steady_clock;
  // During a burst of changes, each vnic's policy is rebuilt at most once per window.
  static constexpr std::chrono::milliseconds kPublishWindow{5};

  // Hands the effective policy of every vnic touched since the last publication to the
  // dataplane. Called after each API frame: an isolated change is published at once, so it is
  // enforced before its answer leaves; within kPublishWindow of the previous publication it is
  // deferred to PublishDue(), so a burst of 10,000 rule changes does not rebuild a 10,000-rule
  // policy 10,000 times. Changes that may take something away are never left deferred past
  // their answer (FlushRestrictions).
  void PublishPolicies(Clock::time_point now = Clock::now());
  // When a deferred publication must happen (the control loop calls PublishPolicies then), or
  // nothing when none is pending.
  std::optional<Clock::time_point> PublishDue() const;
  // Publishes every pending policy now, whatever the window.
  void FlushPolicies();
  // FlushPolicies, when a pending change may forbid what was allowed (a rule, member, group,
  // address or group of a vnic removed, an outbound rule added). The dispatcher calls it before
  // a group's answers leave: a removed rule cuts its flows before the answer says it is removed,
  // while a burst of rule additions keeps its deferral.
  void FlushRestrictions();

 private:
  Status ValidateVnic(const Vnic& vnic) const;
  void MarkDirty(const std::vector<std::string>& vnic_ids);
  void MarkSgDependentsDirty(const std::string& sg_id);

  std::string socket_dir_;
  Dataplane& dataplane_;
  Model model_;
  std::set<std::string> dirty_vnics_;
  bool restriction_pending_ = false;  // among dirty_vnics_' changes, one that may forbid
  Clock::time_point last_publication_{};
};

}  // namespace butterfly
