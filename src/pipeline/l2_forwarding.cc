#include "pipeline/l2_forwarding.h"

#include <cstring>

#include "pipeline/frame.h"

namespace butterfly {

bool L2Forwarding::NextHopMac(const ForwardingTable& table, const VtepIp& vtep, MacBytes* mac) {
  if (IsMulticastVtep(vtep, table.underlay.ipv6)) {
    *mac = table.underlay.ipv6 ? MulticastMacOfIpv6(vtep.data())
                               : MulticastMacOfIpv4(ntohl(Ipv4OfVtep(vtep)));
    return true;
  }
  const MacBytes* neighbor = table.neighbors.Find(vtep);
  if (!neighbor) return false;
  *mac = *neighbor;
  return true;
}

namespace {

void SetFlood(NextHop* next, uint32_t vni, const VniForwarding* forwarding) {
  next->kind = NextHop::Kind::kFlood;
  next->vni = vni;
  next->forwarding = forwarding;
}

void SetVnic(NextHop* next, VnicPort* vnic) {
  next->kind = NextHop::Kind::kVnic;
  next->vnic = vnic;
}

void SetDrop(NextHop* next, DropReason reason) {
  next->kind = NextHop::Kind::kDrop;
  next->reason = reason;
}

}  // namespace

void L2Forwarding::ToVtep(const ForwardingTable& table, uint32_t vni, const VtepIp& vtep,
                          NextHop* next) {
  if (!table.underlay.present) {
    SetDrop(next, DropReason::kNoRoute);
    return;
  }
  next->vtep = &vtep;
  if (NextHopMac(table, vtep, &next->next_hop_mac)) {
    next->kind = NextHop::Kind::kVtep;
    next->vni = vni;
  } else {
    SetDrop(next, DropReason::kNoNeighbor);
  }
}

void L2Forwarding::FromVnic(const ForwardingTable& table, const VnicPort& source,
                            const VniForwarding* vni, uint32_t vni_id, rte_mbuf* const* frames,
                            uint16_t n, NextHop* next) {
  LastLocalRoute last;
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* dst = EthernetOf(frames[i])->dst.data();
    if (IsMulticastMac(dst) || !vni) {
      SetFlood(&next[i], vni_id, vni);
      continue;
    }
    uint64_t key = MacKey(dst);
    VnicPort* local = last.vnic;
    if (key != last.mac) {
      VnicPort* const* found = vni->local_macs.Find(key);
      local = found ? *found : nullptr;
      if (local) last = {key, local};
    }
    if (local == &source) {
      SetDrop(&next[i], DropReason::kNoRoute);  // to itself
    } else if (local) {
      SetVnic(&next[i], local);
    } else if (const RemoteMac* const* remote = vni->remote_macs.Find(key)) {
      ToVtep(table, vni_id, (*remote)->vtep, &next[i]);
    } else {
      SetFlood(&next[i], vni_id, vni);
    }
  }
}

void L2Forwarding::FromUnderlay(const ForwardingTable& table, rte_mbuf* const* frames,
                                const DecapResult* tunnels, const VniForwarding* const* vnis,
                                uint16_t n, uint32_t now_s, NextHop* next) {
  for (uint16_t i = 0; i < n; ++i) {
    const DecapResult& tunnel = tunnels[i];
    const VniForwarding& vni = *vnis[i];
    if (!table.neighbors.Find(tunnel.outer_src)) {
      // Glean the way back from the tunnel packet itself: replies need no ARP round trip.
      LearnNeighbor(tunnel.outer_src, tunnel.outer_src_mac, now_s);
    }
    const EthernetHeader* ethernet = EthernetOf(frames[i]);
    if (!IsMulticastMac(ethernet->src.data())) {
      LearnRemoteMac(vni, ethernet->src.data(), tunnel.outer_src, now_s);
    }
    VnicPort* const* local = IsMulticastMac(ethernet->dst.data())
                                 ? nullptr
                                 : vni.local_macs.Find(MacKey(ethernet->dst.data()));
    if (local) {
      SetVnic(&next[i], *local);
    } else {
      // Broadcast, multicast or unknown: to the local vnics only (never back to the tunnel).
      SetFlood(&next[i], vni.vni, &vni);
    }
  }
}

void L2Forwarding::LearnNeighbor(const VtepIp& ip, const MacBytes& mac, uint32_t now_s) {
  LearnEvent event{kLearnNeighbor, {}, 0, 0, ip};
  std::memcpy(event.mac, mac.data(), 6);
  Report(event, VtepHash()(ip) ^ MacKey(mac.data()), now_s);
}

void L2Forwarding::LearnRemoteMac(const VniForwarding& vni, const uint8_t* mac, const VtepIp& vtep,
                                  uint32_t now_s) {
  uint64_t key = MacKey(mac);
  const RemoteMac* const* remote = vni.remote_macs.Find(key);
  if (remote) {
    if (SameVtep((*remote)->vtep, vtep) || (*remote)->is_static) {
      // Refresh only when the second changed: a store per packet would bounce the cache line.
      if ((*remote)->last_seen.load(std::memory_order_relaxed) != now_s) {
        (*remote)->last_seen.store(now_s, std::memory_order_relaxed);
      }
      return;
    }
  }
  if (vni.local_macs.Find(key)) return;  // a local MAC seen from afar: not a remote one
  if (!remote && vni.learning_full) {    // a known MAC that moved is still reported
    counters_.fdb_vni_full.Add(1);
    return;
  }
  LearnEvent event{kLearnRemoteMac, {}, 0, vni.vni, vtep};
  std::memcpy(event.mac, mac, 6);
  Report(event, key ^ (uint64_t{vni.vni} << 48) ^ VtepHash()(vtep), now_s);
}

void L2Forwarding::Report(const LearnEvent& event, uint64_t dedup_key, uint32_t now_s) {
  auto& slot = reported_[MixHash()(dedup_key) & (reported_.size() - 1)];
  if (slot.first == dedup_key && slot.second == now_s) return;
  slot = {dedup_key, now_s};
  LearnEvent copy = event;
  if (rte_ring_mp_enqueue_elem(learn_, &copy, sizeof(LearnEvent)) != 0) {
    counters_.learn_ring_full.Add(1);
  }
}

}  // namespace butterfly
