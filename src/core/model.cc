#include "core/model.h"

#include <algorithm>
#include <functional>

#include "core/text.h"

namespace butterfly {

const char* VnicTypeName(VnicType type) {
  switch (type) {
    case VnicType::kVhostUserServer:
      return "vhost";
    case VnicType::kTap:
      return "tap";
    case VnicType::kBench:
      return "bench";
    case VnicType::kVhostUserClient:
      return "vhost-client";
  }
  return "?";
}

std::string Rule::Describe() const {
  std::string text = direction == Direction::kInbound ? "inbound " : "outbound ";
  text += protocol == kAnyProtocol ? "all" : "protocol " + std::to_string(protocol);
  if (port_start || port_end) {
    text += " ports " + (port_start ? std::to_string(*port_start) : "?") + "-" +
            (port_end ? std::to_string(*port_end) : "?");
  }
  if (cidr) text += (direction == Direction::kInbound ? " from " : " to ") + cidr->ToString();
  if (!remote_sg.empty()) {
    text += (direction == Direction::kInbound ? " from" : " to") + std::string(" members of sg ") +
            remote_sg;
  }
  return text;
}

Status Rule::Validate() const {
  auto fail = [this](const std::string& why) { return Fail("rule (" + Describe() + "): " + why); };
  if (protocol < kAnyProtocol || protocol > 255) {
    return fail("protocol " + std::to_string(protocol) + " is not -1 (all) or 0-255");
  }
  if (HasPorts()) {
    if (!port_start || !port_end) {
      return fail("tcp and udp rules need port_start and port_end");
    }
    if (*port_start > 65535 || *port_end > 65535) return fail("ports must be 0-65535");
    if (*port_start > *port_end) return fail("port_start is greater than port_end");
  } else if (port_start || port_end) {
    // Only "every port" is harmless on a protocol without ports; anything narrower would be a
    // rule the filter cannot honour.
    if (!(port_start.value_or(0) == 0 && port_end.value_or(65535) == 65535)) {
      return fail("ports only apply to tcp (6) and udp (17)");
    }
  }
  if (cidr && !remote_sg.empty()) return fail("set either a cidr or a security group, not both");
  if (!cidr && remote_sg.empty()) return fail("needs a cidr or a security group");
  if (!remote_sg.empty()) {
    if (auto valid = ValidateId("security group", remote_sg); !valid) return fail(valid.error());
  }
  return Ok();
}

size_t RuleHasher::operator()(const Rule& rule) const {
  size_t h = std::hash<int>()(rule.protocol * 2 + static_cast<int>(rule.direction));
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(rule.port_start.value_or(1u << 20));
  mix(rule.port_end.value_or(1u << 21));
  if (rule.cidr) {
    for (uint8_t b : rule.cidr->address.bytes) mix(b);
    mix(static_cast<size_t>(rule.cidr->prefix_length) << 8 |
        static_cast<int>(rule.cidr->address.family));
  }
  mix(std::hash<std::string>()(rule.remote_sg));
  return h;
}

bool SecurityGroup::AddRule(const Rule& rule) {
  if (!rule_index_.insert(rule).second) return false;
  rules_.push_back(rule);
  if (!rule.remote_sg.empty()) ++remote_sg_refs_[rule.remote_sg];
  if (rule.direction == Direction::kOutbound) ++outbound_rules_;
  return true;
}

bool SecurityGroup::RemoveRule(const Rule& rule) {
  if (rule_index_.erase(rule) == 0) return false;
  rules_.erase(std::find(rules_.begin(), rules_.end(), rule));
  if (!rule.remote_sg.empty() && --remote_sg_refs_[rule.remote_sg] == 0) {
    remote_sg_refs_.erase(rule.remote_sg);
  }
  if (rule.direction == Direction::kOutbound) --outbound_rules_;
  return true;
}

bool SecurityGroup::SameContent(const SecurityGroup& other) const {
  return members_ == other.members_ && rule_index_ == other.rule_index_;
}

Status ValidateId(std::string_view what, std::string_view id) {
  auto refuse = [&](std::string_view why) {
    return Fail(std::string(what) + " id " + QuoteForMessage(id) + " " + std::string(why) + " (" +
                std::string(kIdRule) + ")");
  };
  if (id.empty()) return Fail(std::string(what) + " id is empty (" + std::string(kIdRule) + ")");
  if (id.size() > kMaxIdBytes) return refuse("is longer than 255 bytes");
  auto alphanumeric = [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alphanumeric(id[0]) && id[0] != '_') {
    return refuse("does not start with a letter, a digit or '_'");
  }
  for (unsigned char c : id) {
    if (!alphanumeric(c) && c != '_' && c != '-' && c != '.' && c != ':') {
      return refuse("holds a character outside A-Z a-z 0-9 _ - . :");
    }
  }
  return Ok();
}

const Vnic* Model::FindVnic(const std::string& id) const {
  auto it = vnics_.find(id);
  return it == vnics_.end() ? nullptr : &it->second;
}

const SecurityGroup* Model::FindSg(const std::string& id) const {
  auto it = sgs_.find(id);
  return it == sgs_.end() ? nullptr : &it->second;
}

SecurityGroup* Model::FindSg(const std::string& id) {
  auto it = sgs_.find(id);
  return it == sgs_.end() ? nullptr : &it->second;
}

void Model::PutVnic(Vnic vnic) {
  std::string id = vnic.id;
  vnics_.insert_or_assign(std::move(id), std::move(vnic));
}

void Model::RemoveVnic(const std::string& id) { vnics_.erase(id); }

SecurityGroup& Model::GetOrCreateSg(const std::string& id) {
  return sgs_.try_emplace(id, SecurityGroup(id)).first->second;
}

void Model::PutSg(SecurityGroup sg) {
  std::string id = sg.id();
  sgs_.insert_or_assign(std::move(id), std::move(sg));
}

void Model::RemoveSg(const std::string& id) { sgs_.erase(id); }

void Model::SetVniPeers(uint32_t vni, std::vector<IpAddress> peers) {
  if (peers.empty()) {
    vni_peers_.erase(vni);
  } else {
    vni_peers_[vni] = std::move(peers);
  }
}

std::vector<std::string> Model::VnicsUsingSg(const std::string& sg_id) const {
  std::vector<std::string> ids;
  for (const auto& [id, vnic] : vnics_) {
    if (std::find(vnic.security_groups.begin(), vnic.security_groups.end(), sg_id) !=
        vnic.security_groups.end()) {
      ids.push_back(id);
    }
  }
  return ids;
}

std::vector<std::string> Model::VnicsReferencingMembersOf(const std::string& sg_id) const {
  std::vector<std::string> ids;
  for (const auto& [id, vnic] : vnics_) {
    for (const auto& used : vnic.security_groups) {
      const SecurityGroup* sg = FindSg(used);
      if (sg && sg->remote_sg_refs().contains(sg_id)) {
        ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

}  // namespace butterfly
