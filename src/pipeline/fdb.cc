#include "pipeline/fdb.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"

namespace butterfly {
namespace {

// The published entry of `key`, if any.
const RemoteMac* PublishedRemote(const ForwardingTable* table, const Fdb::Key& key) {
  const VniForwarding* vni = table ? table->FindVni(key.first) : nullptr;
  if (!vni) return nullptr;
  const RemoteMac* const* remote = vni->remote_macs.Find(key.second);
  return remote ? *remote : nullptr;
}

}  // namespace

void Fdb::SetVniPeers(uint32_t vni, std::vector<VtepIp> peers) {
  if (peers.empty()) {
    vni_peers_.erase(vni);
  } else {
    vni_peers_[vni] = std::move(peers);
  }
}

void Fdb::SetStaticMac(const Key& key, std::optional<VtepIp> vtep) {
  if (vtep) {
    static_macs_[key] = *vtep;
  } else {
    static_macs_.erase(key);
  }
}

bool Fdb::Learn(const LearnEvent* events, unsigned n, uint32_t now_s) {
  bool changed = false;
  for (unsigned i = 0; i < n; ++i) {
    const LearnEvent& event = events[i];
    if (event.kind == kLearnNeighbor) {
      MacBytes mac;
      std::memcpy(mac.data(), event.mac, 6);
      auto [it, added] = neighbors_.try_emplace(event.ip, mac);
      if (added || it->second != mac) {
        it->second = mac;
        changed = true;
        LOG_DEBUG("underlay: neighbour learned");
      }
    } else if (event.kind == kLearnRemoteMac) {
      switch (learned_.Learn({event.vni, MacKey(event.mac)}, event.ip, now_s)) {
        case LearnedFdb::Outcome::kAdded:
        case LearnedFdb::Outcome::kMoved:
          changed = true;
          break;
        case LearnedFdb::Outcome::kRefreshed:
        case LearnedFdb::Outcome::kRefused:  // counted; the add that filled the VNI rebuilt
          break;
      }
    }
  }
  return changed;
}

bool Fdb::Age(const ForwardingTable* published, uint32_t now_s, uint32_t ageing_seconds) {
  return learned_.Age(now_s, ageing_seconds, [published](const Key& key) -> uint32_t {
    const RemoteMac* remote = PublishedRemote(published, key);
    return remote ? remote->last_seen.load() : 0;
  });
}

std::vector<LearnedMac> Fdb::LearnedMacs(const ForwardingTable* published, uint32_t now_s,
                                         bool ipv6) const {
  std::vector<LearnedMac> out;
  for (const auto& [key, learned] : learned_.entries()) {
    if (static_macs_.contains(key)) continue;
    uint32_t last_seen = learned.last_seen;
    if (const RemoteMac* remote = PublishedRemote(published, key)) {
      last_seen = std::max(last_seen, remote->last_seen.load(std::memory_order_relaxed));
    }
    LearnedMac entry;
    entry.vni = key.first;
    for (int i = 0; i < 6; ++i)
      entry.mac.bytes[i] = static_cast<uint8_t>(key.second >> (40 - 8 * i));
    entry.vtep.family = ipv6 ? IpFamily::kV6 : IpFamily::kV4;
    entry.vtep.bytes = learned.vtep;
    entry.idle_seconds = now_s - std::min(now_s, last_seen);
    out.push_back(entry);
  }
  return out;
}

std::unique_ptr<ForwardingTable> Fdb::Build(const std::vector<VnicPort*>& vnics, uint32_t workers,
                                            const UnderlayInfo& underlay) {
  auto table = std::make_unique<ForwardingTable>();
  table->vnics_by_worker.resize(workers);
  table->underlay = underlay;
  std::map<uint32_t, VniForwarding*> vni_of;
  std::map<uint32_t, std::vector<std::pair<uint64_t, VnicPort*>>> local_macs;
  std::vector<std::pair<uint64_t, VnicPort*>> by_index;
  for (VnicPort* port : vnics) {
    const VnicSettings& settings = *port->settings();
    table->vnics_by_worker[port->owner()].push_back(port);
    by_index.emplace_back(port->index(), port);
    VniForwarding*& vni = vni_of[settings.vni];
    if (!vni) {
      table->vni_storage.push_back(std::make_unique<VniForwarding>());
      vni = table->vni_storage.back().get();
      vni->vni = settings.vni;
      if (underlay.present && !underlay.ipv6) {
        vni->multicast_group = VtepOfIpv4(DefaultMulticastGroup(settings.vni));
      }
    }
    vni->local_vnics.push_back(port);
    local_macs[settings.vni].emplace_back(MacKey(settings.mac.data()), port);
  }
  std::map<uint32_t, std::vector<std::pair<uint64_t, const RemoteMac*>>> remote_macs;
  auto add_remote = [&](const Key& key, const VtepIp& vtep, uint32_t last_seen, bool is_static) {
    if (!vni_of.contains(key.first)) return;  // no local vnic in that VNI: nothing to reach
    table->remote_storage.push_back(std::make_unique<RemoteMac>());
    RemoteMac* remote = table->remote_storage.back().get();
    remote->vtep = vtep;
    remote->is_static = is_static;
    remote->last_seen.store(last_seen);
    remote_macs[key.first].emplace_back(key.second, remote);
  };
  for (const auto& [key, vtep] : static_macs_) add_remote(key, vtep, 0, true);
  for (const auto& [key, learned] : learned_.entries()) {
    if (!static_macs_.contains(key)) add_remote(key, learned.vtep, learned.last_seen, false);
  }
  std::vector<std::pair<uint64_t, const VniForwarding*>> vni_items;
  std::vector<uint32_t> groups;
  for (auto& [id, vni] : vni_of) {
    if (auto peers = vni_peers_.find(id); peers != vni_peers_.end()) {
      vni->flood_vteps = peers->second;
      vni->multicast_group = VtepIp{};
    }
    vni->local_macs = FlatMap<uint64_t, VnicPort*, MixHash>(local_macs[id]);
    vni->remote_macs = FlatMap<uint64_t, const RemoteMac*, MixHash>(remote_macs[id]);
    vni->learning_full = learned_.CountOf(id) >= learned_.max_per_vni();
    if (vni->flood_vteps.empty() && !IsUnset(vni->multicast_group)) {
      groups.push_back(Ipv4OfVtep(vni->multicast_group));
    }
    vni_items.emplace_back(id, vni);
  }
  table->vnis = FlatMap<uint64_t, const VniForwarding*, MixHash>(vni_items);
  table->vnics_by_index = FlatMap<uint64_t, VnicPort*, MixHash>(by_index);
  std::vector<std::pair<VtepIp, MacBytes>> neighbors(neighbors_.begin(), neighbors_.end());
  table->neighbors = FlatMap<VtepIp, MacBytes, VtepHash, VtepEqual>(neighbors);
  if (groups != published_groups_) {
    published_groups_ = groups;
    ++groups_version_;
  }
  table->multicast_groups = groups;
  table->groups_version = groups_version_;
  return table;
}

}  // namespace butterfly
