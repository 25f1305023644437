#include "core/controller.h"

#include <algorithm>

#include "core/api_limits.h"
#include "core/log.h"
#include "core/policy.h"

namespace butterfly {
namespace {

// Linux interface names are at most IFNAMSIZ - 1 bytes.
constexpr size_t kMaxInterfaceName = 15;
// sizeof(sockaddr_un::sun_path) - 1.
constexpr size_t kMaxSocketPath = 107;

template <typename T>
std::vector<T> WithoutDuplicates(const std::vector<T>& items) {
  std::vector<T> out;
  for (const T& item : items) {
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  return out;
}

Status ValidateVnicIps(const std::vector<IpAddress>& ips) {
  for (const IpAddress& ip : ips) {
    if (ip.IsUnspecified() || ip.IsMulticast()) {
      return Fail("ip '" + ip.ToString() + "' is not a unicast address");
    }
  }
  return Ok();
}

Status ValidateSgIds(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (auto valid = ValidateId("security group", id); !valid) return valid;
  }
  return Ok();
}

}  // namespace

Controller::Controller(std::string socket_dir, Dataplane& dataplane)
    : socket_dir_(std::move(socket_dir)), dataplane_(dataplane) {
  while (socket_dir_.size() > 1 && socket_dir_.back() == '/') socket_dir_.pop_back();
}

std::string Controller::PathOf(const Vnic& vnic) const {
  switch (vnic.type) {
    case VnicType::kTap:
      return vnic.id;
    case VnicType::kVhostUserClient:
      return vnic.client_socket;
    case VnicType::kBench:
      return "";
    case VnicType::kVhostUserServer:
      break;
  }
  return socket_dir_ + "/qemu-vhost-" + vnic.id;
}

Status Controller::ValidateVnic(const Vnic& vnic) const {
  if (auto valid = ValidateId("nic", vnic.id); !valid) return valid;
  auto fail = [&vnic](const std::string& why) { return Fail("nic " + vnic.id + ": " + why); };
  if (vnic.mac.IsMulticast() || vnic.mac.IsZero()) {
    return fail("mac '" + vnic.mac.ToString() + "' is not a unicast MAC address");
  }
  if (vnic.vni > kMaxVni) {
    return fail("vni " + std::to_string(vnic.vni) + " is not below 2^24 (16777216)");
  }
  if (vnic.ips.size() > kMaxIpsPerVnic) {
    return fail(std::to_string(vnic.ips.size()) + " IPs: a vnic has at most " +
                std::to_string(kMaxIpsPerVnic));
  }
  if (vnic.security_groups.size() > kMaxSgsPerVnic) {
    return fail(std::to_string(vnic.security_groups.size()) +
                " security groups: a vnic has at most " + std::to_string(kMaxSgsPerVnic));
  }
  if (auto valid = ValidateVnicIps(vnic.ips); !valid) return fail(valid.error());
  if (auto valid = ValidateSgIds(vnic.security_groups); !valid) return fail(valid.error());
  if (!vnic.sniff_target_nic_id.empty()) {
    if (auto valid = ValidateId("sniff target nic", vnic.sniff_target_nic_id); !valid) {
      return fail(valid.error());
    }
  }
  switch (vnic.type) {
    case VnicType::kTap:
      if (vnic.id.size() > kMaxInterfaceName) {
        return fail(
            "a tap vnic is an interface named after its id, and interface names are at "
            "most 15 bytes");
      }
      break;
    case VnicType::kVhostUserServer:
      if (PathOf(vnic).size() > kMaxSocketPath) {
        return fail("socket path '" + PathOf(vnic) + "' is longer than 107 bytes");
      }
      break;
    case VnicType::kVhostUserClient:
      if (vnic.client_socket.empty() || vnic.client_socket[0] != '/') {
        return fail("a vhost-user client vnic needs the absolute path of QEMU's socket in 'path'");
      }
      if (vnic.client_socket.size() > kMaxSocketPath) {
        return fail("socket path '" + vnic.client_socket + "' is longer than 107 bytes");
      }
      break;
    case VnicType::kBench: {
      if (vnic.bench_type != "ICMP_SND_LIKE" && vnic.bench_type != "ICMP_RCV_LIKE") {
        return fail("btype '" + vnic.bench_type + "' is not ICMP_SND_LIKE or ICMP_RCV_LIKE");
      }
      if (!vnic.bench_dst_ip.empty()) {
        if (auto ip = IpAddress::Parse(vnic.bench_dst_ip); !ip) return fail("dip " + ip.error());
      }
      if (!vnic.bench_dst_mac.empty()) {
        if (auto mac = MacAddress::Parse(vnic.bench_dst_mac); !mac) {
          return fail("dmac " + mac.error());
        }
      }
      break;
    }
  }
  return Ok();
}

Result<std::string> Controller::AddVnic(Vnic vnic) {
  vnic.ips = WithoutDuplicates(vnic.ips);
  vnic.security_groups = WithoutDuplicates(vnic.security_groups);
  if (auto valid = ValidateVnic(vnic); !valid) return Error{valid.error()};
  std::string path = PathOf(vnic);

  if (const Vnic* existing = model_.FindVnic(vnic.id)) {
    if (*existing == vnic) return path;  // same content: the VM stays connected
    restriction_pending_ = true;         // an update: maybe fewer groups or addresses
    Vnic before = *existing;
    // Same kind of port at the same place: updated in place, the VM keeps its link.
    if (before.type == vnic.type && PathOf(before) == path) {
      if (auto updated = dataplane_.UpdateVnic(before, vnic, path); !updated) {
        return Fail("nic " + vnic.id + ": " + updated.error());
      }
    } else {
      // Another kind of port, or another socket: tear the old one down and build the new one, or
      // put the old one back.
      dataplane_.RemoveVnic(before);
      if (auto added = dataplane_.AddVnic(vnic, path); !added) {
        if (!dataplane_.AddVnic(before, PathOf(before))) {
          LOG_ERROR("nic %s: could not restore its previous port", before.id.c_str());
        }
        return Fail("nic " + vnic.id + ": " + added.error());
      }
    }
    LOG_INFO("nic %s updated (%s, vni %u)", vnic.id.c_str(), VnicTypeName(vnic.type), vnic.vni);
  } else {
    if (model_.vnics().size() >= kMaxVnics) {
      return Fail("nic " + vnic.id + ": there are " + std::to_string(kMaxVnics) +
                  " vnics already, the most one butterflyd serves");
    }
    if (auto added = dataplane_.AddVnic(vnic, path); !added) {
      return Fail("nic " + vnic.id + ": " + added.error());
    }
    LOG_INFO("nic %s added (%s, vni %u, mac %s) at %s", vnic.id.c_str(), VnicTypeName(vnic.type),
             vnic.vni, vnic.mac.ToString().c_str(), path.c_str());
  }
  dirty_vnics_.insert(vnic.id);
  model_.PutVnic(std::move(vnic));
  return path;
}

Result<std::string> Controller::AddVnicWithFlows(Vnic vnic, const std::string& flows) {
  std::string id = vnic.id;
  std::optional<Vnic> previous;
  if (const Vnic* existing = model_.FindVnic(id)) previous = *existing;
  auto path = AddVnic(std::move(vnic));
  if (!path) return path;
  if (auto imported = dataplane_.ImportFlows(*model_.FindVnic(id), flows); !imported) {
    if (!previous) {
      (void)RemoveVnic(id);
    } else if (auto restored = AddVnic(*previous); !restored) {
      LOG_ERROR("nic %s: could not restore it after a failed import: %s", id.c_str(),
                restored.error().c_str());
    }
    return Fail("nic " + id + ": fw_data: " + imported.error());
  }
  return path;
}

Status Controller::UpdateVnic(const VnicUpdate& update) {
  const Vnic* existing = model_.FindVnic(update.id);
  if (!existing) return Fail("nic " + update.id + ": no such nic");
  Vnic after = *existing;
  if (update.ip_anti_spoof) after.ip_anti_spoof = *update.ip_anti_spoof;
  if (update.ips) after.ips = WithoutDuplicates(*update.ips);
  if (update.security_groups) after.security_groups = WithoutDuplicates(*update.security_groups);
  if (update.packet_trace) after.packet_trace = *update.packet_trace;
  if (update.packet_trace_path) after.packet_trace_path = *update.packet_trace_path;
  if (after == *existing) return Ok();
  if (auto valid = ValidateVnic(after); !valid) return valid;
  if (auto updated = dataplane_.UpdateVnic(*existing, after, PathOf(after)); !updated) {
    return Fail("nic " + update.id + ": " + updated.error());
  }
  LOG_INFO("nic %s updated", update.id.c_str());
  dirty_vnics_.insert(update.id);
  restriction_pending_ = true;  // maybe fewer groups or addresses
  model_.PutVnic(std::move(after));
  return Ok();
}

Status Controller::RemoveVnic(const std::string& id) {
  const Vnic* existing = model_.FindVnic(id);
  if (!existing) return Ok();
  dataplane_.RemoveVnic(*existing);
  model_.RemoveVnic(id);
  dirty_vnics_.erase(id);
  LOG_INFO("nic %s removed", id.c_str());
  return Ok();
}

Status Controller::PutSecurityGroup(const SecurityGroup& sg) {
  if (auto valid = ValidateId("security group", sg.id()); !valid) return valid;
  for (const Rule& rule : sg.rules()) {
    if (auto valid = rule.Validate(); !valid) return Fail("sg " + sg.id() + ": " + valid.error());
  }
  for (const IpAddress& member : sg.members()) {
    if (member.IsUnspecified() || member.IsMulticast()) {
      return Fail("sg " + sg.id() + ": member '" + member.ToString() +
                  "' is not a unicast address");
    }
  }
  if (sg.rules().size() > kMaxRulesPerSg) {
    return Fail("sg " + sg.id() + ": " + std::to_string(sg.rules().size()) +
                " rules: a security group has at most " + std::to_string(kMaxRulesPerSg));
  }
  if (sg.members().size() > kMaxMembersPerSg) {
    return Fail("sg " + sg.id() + ": " + std::to_string(sg.members().size()) +
                " members: a security group has at most " + std::to_string(kMaxMembersPerSg));
  }
  const SecurityGroup* existing = model_.FindSg(sg.id());
  if (existing && existing->SameContent(sg)) return Ok();
  if (!existing) {
    if (auto room = RoomForNewSg(sg.id()); !room) return room;
  }
  model_.PutSg(sg);
  MarkSgDependentsDirty(sg.id());
  LOG_INFO("sg %s %s (%zu rules, %zu members)", sg.id().c_str(), existing ? "replaced" : "added",
           sg.rules().size(), sg.members().size());
  return Ok();
}

Status Controller::RoomForNewSg(const std::string& id) const {
  if (model_.FindSg(id) || model_.security_groups().size() < kMaxSecurityGroups) return Ok();
  return Fail("sg " + id + ": there are " + std::to_string(kMaxSecurityGroups) +
              " security groups already, the most one butterflyd keeps");
}

Status Controller::RemoveSecurityGroup(const std::string& id) {
  if (!model_.FindSg(id)) return Ok();
  MarkSgDependentsDirty(id);
  model_.RemoveSg(id);
  LOG_INFO("sg %s removed", id.c_str());
  return Ok();
}

Status Controller::AddRule(const std::string& sg_id, const Rule& rule) {
  if (auto valid = ValidateId("security group", sg_id); !valid) return valid;
  if (auto valid = rule.Validate(); !valid) return Fail("sg " + sg_id + ": " + valid.error());
  if (auto room = RoomForNewSg(sg_id); !room) return room;
  if (const SecurityGroup* sg = model_.FindSg(sg_id);
      sg && sg->rules().size() >= kMaxRulesPerSg && !sg->HasRule(rule)) {
    return Fail("sg " + sg_id + ": has " + std::to_string(kMaxRulesPerSg) +
                " rules already, the most a security group has");
  }
  if (model_.GetOrCreateSg(sg_id).AddRule(rule)) {
    MarkDirty(model_.VnicsUsingSg(sg_id));
    // A vnic's first outbound rule closes the rest of its outbound traffic.
    if (rule.direction == Direction::kOutbound) restriction_pending_ = true;
    LOG_DEBUG("sg %s: rule added: %s", sg_id.c_str(), rule.Describe().c_str());
  }
  return Ok();
}

Status Controller::RemoveRule(const std::string& sg_id, const Rule& rule) {
  if (auto valid = ValidateId("security group", sg_id); !valid) return valid;
  if (auto valid = rule.Validate(); !valid) return Fail("sg " + sg_id + ": " + valid.error());
  SecurityGroup* sg = model_.FindSg(sg_id);
  if (sg && sg->RemoveRule(rule)) {
    MarkDirty(model_.VnicsUsingSg(sg_id));
    restriction_pending_ = true;
    LOG_DEBUG("sg %s: rule removed: %s", sg_id.c_str(), rule.Describe().c_str());
  }
  return Ok();
}

Status Controller::AddMember(const std::string& sg_id, const IpAddress& member) {
  if (auto valid = ValidateId("security group", sg_id); !valid) return valid;
  if (member.IsUnspecified() || member.IsMulticast()) {
    return Fail("sg " + sg_id + ": member '" + member.ToString() + "' is not a unicast address");
  }
  if (auto room = RoomForNewSg(sg_id); !room) return room;
  if (const SecurityGroup* sg = model_.FindSg(sg_id);
      sg && sg->members().size() >= kMaxMembersPerSg && !sg->HasMember(member)) {
    return Fail("sg " + sg_id + ": has " + std::to_string(kMaxMembersPerSg) +
                " members already, the most a security group has");
  }
  if (model_.GetOrCreateSg(sg_id).AddMember(member)) {
    MarkDirty(model_.VnicsReferencingMembersOf(sg_id));
  }
  return Ok();
}

Status Controller::RemoveMember(const std::string& sg_id, const IpAddress& member) {
  if (auto valid = ValidateId("security group", sg_id); !valid) return valid;
  SecurityGroup* sg = model_.FindSg(sg_id);
  if (sg && sg->RemoveMember(member)) {
    MarkDirty(model_.VnicsReferencingMembersOf(sg_id));
    restriction_pending_ = true;
  }
  return Ok();
}

namespace {

// `family`: that of this host's VTEP address, which tunnels use at both ends (none: no underlay).
Status ValidateVtep(const std::string& what, const IpAddress& vtep,
                    std::optional<IpFamily> family) {
  if (family && vtep.family != *family) {
    return Fail(what + " " + vtep.ToString() + " is " + (vtep.is_v4() ? "IPv4" : "IPv6") +
                ", but this host's VTEP address (-i) is " +
                (*family == IpFamily::kV4 ? "IPv4" : "IPv6") +
                ": the two ends of a tunnel share a family");
  }
  if (vtep.IsUnspecified() || vtep.IsMulticast()) {
    return Fail(what + " " + vtep.ToString() + " is not a unicast address");
  }
  return Ok();
}

Status ValidateVni(uint32_t vni) {
  if (vni > kMaxVni) return Fail("vni " + std::to_string(vni) + " is not below 2^24 (16777216)");
  return Ok();
}

}  // namespace

Status Controller::SetVniPeers(uint32_t vni, const std::vector<IpAddress>& peers) {
  if (auto valid = ValidateVni(vni); !valid) return valid;
  std::vector<IpAddress> unique = WithoutDuplicates(peers);
  for (const IpAddress& peer : unique) {
    if (auto valid =
            ValidateVtep("vni " + std::to_string(vni) + ": peer", peer, dataplane_.VtepFamily());
        !valid) {
      return valid;
    }
  }
  auto current = model_.vni_peers().find(vni);
  if ((current == model_.vni_peers().end() && unique.empty()) ||
      (current != model_.vni_peers().end() && current->second == unique)) {
    return Ok();
  }
  dataplane_.SetVniPeers(vni, unique);
  std::string without_peers = dataplane_.VtepFamily() == IpFamily::kV6
                                  ? "floods to no remote VTEP (an IPv6 underlay has no group)"
                                  : "floods to its multicast group";
  LOG_INFO("vni %u: %s", vni,
           unique.empty() ? without_peers.c_str()
                          : ("floods to " + std::to_string(unique.size()) + " peer(s)").c_str());
  model_.SetVniPeers(vni, std::move(unique));
  return Ok();
}

Status Controller::AddStaticMac(uint32_t vni, const MacAddress& mac, const IpAddress& vtep) {
  std::string where = "fdb vni " + std::to_string(vni) + " mac " + mac.ToString();
  if (auto valid = ValidateVni(vni); !valid) return valid;
  if (mac.IsMulticast() || mac.IsZero()) return Fail(where + ": not a unicast MAC address");
  if (auto valid = ValidateVtep(where + ": vtep", vtep, dataplane_.VtepFamily()); !valid) {
    return valid;
  }
  for (const auto& [id, vnic] : model_.vnics()) {
    if (vnic.vni == vni && vnic.mac == mac) {
      return Fail(where + ": that is local nic " + id + "'s MAC");
    }
  }
  auto& entries = model_.static_fdb();
  auto it = entries.find({vni, mac});
  if (it != entries.end() && it->second == vtep) return Ok();
  dataplane_.SetStaticMac(vni, mac, vtep);
  entries[{vni, mac}] = vtep;
  return Ok();
}

Status Controller::RemoveStaticMac(uint32_t vni, const MacAddress& mac) {
  if (auto valid = ValidateVni(vni); !valid) return valid;
  auto& entries = model_.static_fdb();
  if (entries.erase({vni, mac}) > 0) dataplane_.SetStaticMac(vni, mac, std::nullopt);
  return Ok();
}

void Controller::MarkDirty(const std::vector<std::string>& vnic_ids) {
  dirty_vnics_.insert(vnic_ids.begin(), vnic_ids.end());
}

void Controller::MarkSgDependentsDirty(const std::string& sg_id) {
  // Replaced or removed: whatever it allowed may be gone.
  MarkDirty(model_.VnicsUsingSg(sg_id));
  MarkDirty(model_.VnicsReferencingMembersOf(sg_id));
  restriction_pending_ = true;
}

void Controller::PublishPolicies(Clock::time_point now) {
  if (dirty_vnics_.empty() || now - last_publication_ < kPublishWindow) return;
  last_publication_ = now;
  FlushPolicies();
}

void Controller::FlushPolicies() {
  for (const std::string& id : dirty_vnics_) {
    if (const Vnic* vnic = model_.FindVnic(id)) {
      dataplane_.SetPolicy(BuildVnicPolicy(model_, *vnic));
    }
  }
  dirty_vnics_.clear();
  restriction_pending_ = false;
}

void Controller::FlushRestrictions() {
  if (restriction_pending_) FlushPolicies();
}

std::optional<Controller::Clock::time_point> Controller::PublishDue() const {
  if (dirty_vnics_.empty()) return std::nullopt;
  return last_publication_ + kPublishWindow;
}

}  // namespace butterfly
