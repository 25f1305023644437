// The switch's configuration as orchestrators see it: vnics, security groups, rules, members.
// Plain data plus the invariants every API call must keep; owned by the control thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/net_types.h"
#include "core/protocol_numbers.h"
#include "core/result.h"

namespace butterfly {

inline constexpr uint32_t kMaxVni = (1u << 24) - 1;
inline constexpr int kAnyProtocol = -1;

enum class VnicType : uint8_t {
  kVhostUserServer = 0,
  kTap = 1,
  kBench = 2,
  kVhostUserClient = 3,
};
const char* VnicTypeName(VnicType type);

enum class Direction : uint8_t { kInbound = 0, kOutbound = 1 };

struct Rule {
  Direction direction = Direction::kInbound;
  int protocol = kAnyProtocol;  // -1 (any) or 0-255
  // Destination port range as sent (kept as sent so `dump` and the rule hash round-trip).
  std::optional<uint32_t> port_start;
  std::optional<uint32_t> port_end;
  // Exactly one of `cidr` and `remote_sg` is set.
  std::optional<Cidr> cidr;
  std::string remote_sg;

  bool HasPorts() const { return protocol == kProtoTcp || protocol == kProtoUdp; }
  // Checks the invariants the filter engine relies on; errors read "rule (...): ...".
  Status Validate() const;
  std::string Describe() const;
  bool operator==(const Rule&) const = default;
};

struct RuleHasher {
  size_t operator()(const Rule& rule) const;
};

class SecurityGroup {
 public:
  explicit SecurityGroup(std::string id) : id_(std::move(id)) {}

  const std::string& id() const { return id_; }
  // In the order they were added.
  const std::vector<Rule>& rules() const { return rules_; }
  // Sorted (IPv4 first), no duplicates.
  const std::set<IpAddress>& members() const { return members_; }
  // How many rules refer to each remote security group (their members), for dependency tracking.
  const std::map<std::string, int>& remote_sg_refs() const { return remote_sg_refs_; }

  bool HasRule(const Rule& rule) const { return rule_index_.contains(rule); }
  bool HasOutboundRule() const { return outbound_rules_ > 0; }
  // Returns false when the rule was already there (a no-op).
  bool AddRule(const Rule& rule);
  // Returns false when the rule was not there (a no-op).
  bool RemoveRule(const Rule& rule);
  bool AddMember(const IpAddress& member) { return members_.insert(member).second; }
  bool HasMember(const IpAddress& member) const { return members_.contains(member); }
  bool RemoveMember(const IpAddress& member) { return members_.erase(member) > 0; }
  // Same rules (in any order) and same members.
  bool SameContent(const SecurityGroup& other) const;

 private:
  std::string id_;
  std::vector<Rule> rules_;
  std::unordered_set<Rule, RuleHasher> rule_index_;
  std::set<IpAddress> members_;
  std::map<std::string, int> remote_sg_refs_;
  int outbound_rules_ = 0;
};

struct Vnic {
  std::string id;
  MacAddress mac;
  uint32_t vni = 0;
  std::vector<IpAddress> ips;                // as given, duplicates removed
  std::vector<std::string> security_groups;  // as given, duplicates removed
  bool ip_anti_spoof = false;
  std::string sniff_target_nic_id;
  bool bypass_filtering = false;
  VnicType type = VnicType::kVhostUserServer;
  // VHOST_USER_CLIENT: QEMU's socket. Other types: empty (the path is computed).
  std::string client_socket;
  bool packet_trace = false;
  std::string packet_trace_path;
  // BENCH only.
  std::string bench_type;
  std::string bench_dst_ip;
  std::string bench_dst_mac;

  bool operator==(const Vnic&) const = default;
};

// Ids name sockets, interfaces and files, and are typed on command lines: only characters that
// are safe in all of these (orchestrators use names and UUIDs), and never a leading '-' or '.'
// (an option, a hidden or relative file).
inline constexpr std::string_view kIdRule =
    "1-255 characters from A-Z a-z 0-9 _ - . :, starting with a letter, a digit or '_'";
inline constexpr size_t kMaxIdBytes = 255;
Status ValidateId(std::string_view what, std::string_view id);

class Model {
 public:
  // Sorted by id: every list the API returns comes in id order.
  const std::map<std::string, Vnic>& vnics() const { return vnics_; }
  const std::map<std::string, SecurityGroup>& security_groups() const { return sgs_; }

  const Vnic* FindVnic(const std::string& id) const;
  const SecurityGroup* FindSg(const std::string& id) const;
  SecurityGroup* FindSg(const std::string& id);

  void PutVnic(Vnic vnic);
  void RemoveVnic(const std::string& id);
  // Returns the group, created empty when missing.
  SecurityGroup& GetOrCreateSg(const std::string& id);
  void PutSg(SecurityGroup sg);
  void RemoveSg(const std::string& id);

  // Head-end replication peers of VNIs that have some (others flood to their multicast group).
  const std::map<uint32_t, std::vector<IpAddress>>& vni_peers() const { return vni_peers_; }
  void SetVniPeers(uint32_t vni, std::vector<IpAddress> peers);
  // Static remote MACs: (vni, mac) -> VTEP.
  const std::map<std::pair<uint32_t, MacAddress>, IpAddress>& static_fdb() const {
    return static_fdb_;
  }
  std::map<std::pair<uint32_t, MacAddress>, IpAddress>& static_fdb() { return static_fdb_; }

  // Vnics whose effective policy depends on the rules of `sg_id` (they list it).
  std::vector<std::string> VnicsUsingSg(const std::string& sg_id) const;
  // Vnics whose effective policy depends on the members of `sg_id` (one of their groups has a
  // rule that names it).
  std::vector<std::string> VnicsReferencingMembersOf(const std::string& sg_id) const;

 private:
  std::map<std::string, Vnic> vnics_;
  std::map<std::string, SecurityGroup> sgs_;
  std::map<uint32_t, std::vector<IpAddress>> vni_peers_;
  std::map<std::pair<uint32_t, MacAddress>, IpAddress> static_fdb_;
};

}  // namespace butterfly
