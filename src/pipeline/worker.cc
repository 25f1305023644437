#include "pipeline/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "pipeline/antispoof.h"
#include "pipeline/frame.h"
#include "pipeline/vtep_responder.h"
#include "pipeline/vxlan_decap.h"
#include "pipeline/vxlan_encap.h"

namespace butterfly {
namespace {

// Idle loops before the first sleep: a burst that pauses briefly finds the worker still spinning.
constexpr uint32_t kSpinLoops = 256;

}  // namespace

Worker::Worker(uint16_t id, WorkerShared& shared)
    : id_(id),
      shared_(shared),
      counters_(shared.counters[id]),
      filter_(shared.filter_config),
      l2_(shared.learn, counters_),
      idle_(shared.wake_fds[id]),
      handoffs_(shared.workers) {}

int RunWorker(void* argument) {
  static_cast<Worker*>(argument)->Run();
  return 0;
}

void Worker::Run() {
  RcuDomain& rcu = *shared_.rcu;
  rcu.Online(id_);
  uint32_t idle_loops = 0;
  while (shared_.running.load(std::memory_order_relaxed)) {
    uint64_t start = rte_rdtsc();
    uint32_t work = RunOnce();
    rcu.Quiescent(id_);
    counters_.loops.Add(1);
    uint64_t spent = rte_rdtsc() - start;
    if (work > 0) {
      counters_.busy_loops.Add(1);
      counters_.busy_cycles.Add(spent);
      idle_loops = 0;
      continue;
    }
    counters_.idle_cycles.Add(spent);
    if (++idle_loops < kSpinLoops) continue;
    if (!Sleep(idle_loops)) idle_loops = 0;
  }
  rcu.Offline(id_);
}

bool Worker::Sleep(uint32_t idle_loops) {
  RcuDomain& rcu = *shared_.rcu;
  const ForwardingTable* table = shared_.table.load(std::memory_order_acquire);
  bool polls_underlay = table && table->underlay.present && id_ < table->underlay.rx_queues;
  if (!polls_underlay && table) {
    static const std::vector<VnicPort*> kNone;
    const auto& vnics = id_ < table->vnics_by_worker.size() ? table->vnics_by_worker[id_] : kNone;
    idle_.Arm(vnics);
    if (RunOnce() > 0) {  // a frame came before the VMs were asked to kick
      idle_.Disarm(vnics);
      return false;
    }
    // Offline: a grace period must not wait for a sleeping worker. Whatever it protected may be
    // gone when we are back (a vnic removed, a VM's device freed): look again at what is
    // published now, never at what was before the sleep.
    rcu.Offline(id_);
    idle_.Wait(shared_.idle_wait_ms);
    rcu.Online(id_);
    const ForwardingTable* now = shared_.table.load(std::memory_order_acquire);
    idle_.Disarm(now && id_ < now->vnics_by_worker.size() ? now->vnics_by_worker[id_] : kNone);
  } else {
    // The underlay cannot wake us: nap, doubling up to the limit.
    uint32_t shift = std::min<uint32_t>(idle_loops - kSpinLoops, 10);
    uint32_t sleep_us = std::min<uint32_t>(1u << shift, shared_.max_idle_sleep_us);
    rcu.Offline(id_);
    timespec nap{0, static_cast<long>(sleep_us) * 1000};
    nanosleep(&nap, nullptr);
    rcu.Online(id_);
  }
  counters_.sleeps.Add(1);
  return true;
}

uint32_t Worker::RunOnce() {
  const ForwardingTable* table = shared_.table.load(std::memory_order_acquire);
  if (!table) return 0;
  now_tsc_ = rte_rdtsc();
  now_s_ = static_cast<uint32_t>((now_tsc_ - shared_.start_tsc) / shared_.tsc_hz);
  uint32_t work = 0;
  if (table->underlay.present && id_ < table->underlay.rx_queues) work += PollUnderlay(*table);
  if (id_ < table->vnics_by_worker.size()) {
    for (VnicPort* vnic : table->vnics_by_worker[id_]) work += PollVnic(*table, *vnic);
  }
  if (shared_.workers > 1) work += PollHandoff(*table);
  FlushDeliveries();
  egress_keys_used_ = 0;
  FlushUnderlay(*table);
  if (id_ == 0 && table->underlay.present) MaybeJoinGroups(*table);
  RunCommand();
  return work;
}

void Worker::RunCommand() {
  std::atomic<WorkerCommand*>& mailbox = shared_.mailboxes[id_];
  WorkerCommand* command = mailbox.load(std::memory_order_acquire);
  if (!command) return;
  if (command->kind == WorkerCommand::Kind::kExportFlows) {
    command->data = filter_.conntrack().Export(command->vnic_index, now_tsc_);
  } else {
    command->result = filter_.conntrack().Import(command->data, command->vnic_index, now_tsc_);
  }
  mailbox.store(nullptr, std::memory_order_relaxed);
  command->done.store(true, std::memory_order_release);
}

uint64_t Worker::Account(Stage stage, uint32_t packets, uint64_t start) {
  uint64_t now = rte_rdtsc();
  StageCounters& counters = counters_.stages[static_cast<int>(stage)];
  counters.packets.Add(packets);
  counters.calls.Add(1);
  counters.cycles.Add(now - start);
  return now;
}

void Worker::Drop(rte_mbuf* frame, DropReason reason, VnicPort* vnic) {
  counters_.drops[static_cast<int>(reason)].Add(1);
  if (vnic) vnic->counters(id_).drops[static_cast<int>(reason)].Add(1);
  rte_pktmbuf_free(frame);
}

void Worker::DropAt(Stage stage, rte_mbuf* frame, DropReason reason, VnicPort* vnic) {
  counters_.stages[static_cast<int>(stage)].drops.Add(1);
  Drop(frame, reason, vnic);
}

template <typename... Parallel>
uint16_t Worker::Sift(Stage stage, rte_mbuf** frames, uint16_t n, const DropReason* fate,
                      VnicPort* vnic, Parallel*... parallel) {
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (fate[i] != kKeep) {
      Drop(frames[i], fate[i], vnic);
      continue;
    }
    ((parallel[kept] = parallel[i]), ...);
    frames[kept++] = frames[i];
  }
  counters_.stages[static_cast<int>(stage)].drops.Add(n - kept);
  return kept;
}

uint32_t Worker::PollVnic(const ForwardingTable& table, VnicPort& vnic) {
  if (!vnic.Ready()) return 0;
  rte_mbuf* frames[kBurst];
  uint64_t start = rte_rdtsc();
  uint16_t n = vnic.Receive(shared_.pool, frames, kBurst);
  if (n == 0) return 0;
  const VnicSettings& settings = *vnic.settings();
  VnicPortCounters& vnic_counters = vnic.counters(id_);
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += frames[i]->pkt_len;
  vnic_counters.packets_in.Add(n);
  vnic_counters.bytes_in.Add(bytes);
  start = Account(Stage::kVnicRx, n, start);

  DropReason fate[kBurst];
  AntispoofBurst(frames, n, settings, fate);
  uint16_t kept = Sift(Stage::kAntispoof, frames, n, fate, &vnic);
  start = Account(Stage::kAntispoof, n, start);

  const PacketKey* keys[kBurst] = {};
  if (kept > 0 && !settings.bypass_filtering) {
    if (egress_keys_used_ + kBurst > egress_keys_.size()) {
      // Every slot may still be pointed at by a pending delivery: deliver them first.
      FlushDeliveries();
      egress_keys_used_ = 0;
      start = rte_rdtsc();
    }
    PacketKey* scratch = &egress_keys_[egress_keys_used_];
    egress_keys_used_ += kBurst;
    uint16_t filtered = kept;
    kept = FilterFrames(vnic, Direction::kOutbound, frames, keys, kept, scratch);
    counters_.stages[static_cast<int>(Stage::kFilterEgress)].drops.Add(filtered - kept);
    start = Account(Stage::kFilterEgress, filtered, start);
  }

  NextHop* next = next_hops_.data();
  l2_.FromVnic(table, vnic, table.FindVni(settings.vni), settings.vni, frames, kept, next);
  Dispatch(table, frames, kept, next, keys, &vnic);
  Account(Stage::kL2Lookup, kept, start);
  FlushHandoffs();
  FlushEncap(table);
  return n;
}

uint32_t Worker::PollUnderlay(const ForwardingTable& table) {
  rte_mbuf* packets[kBurst];
  uint64_t start = rte_rdtsc();
  uint16_t n = rte_eth_rx_burst(table.underlay.port, id_, packets, kBurst);
  if (n == 0) return 0;
  start = Account(Stage::kUnderlayRx, n, start);

  // The VTEP's own ARP (or NDP) to the vtep stage, the rest to decapsulation.
  rte_mbuf* neighbor_discovery[kBurst];
  uint16_t discovery_count = 0;
  uint16_t tunnel_count = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* packet = packets[i];
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(packets[i + 1], void*));
    uint16_t ether_type = EtherTypeOf(packet);
    bool discovery = table.underlay.ipv6 ? ether_type == kEthTypeIpv6 && IsNeighborDiscovery(packet)
                                         : ether_type == kEthTypeArp;
    if (discovery) {
      neighbor_discovery[discovery_count++] = packet;
    } else {
      packets[tunnel_count++] = packet;
    }
  }
  if (discovery_count > 0) {
    ArpOutcome* outcomes = arp_outcomes_.data();
    HandleNeighborDiscoveryBurst(neighbor_discovery, discovery_count, table.underlay, outcomes);
    for (uint16_t i = 0; i < discovery_count; ++i) {
      if (outcomes[i].learn)
        l2_.LearnNeighbor(outcomes[i].sender_ip, outcomes[i].sender_mac, now_s_);
      if (outcomes[i].reply) {
        SendOnUnderlay(table, neighbor_discovery[i]);
      } else {
        rte_pktmbuf_free(neighbor_discovery[i]);
      }
    }
    start = Account(Stage::kVtep, discovery_count, start);
  }
  if (tunnel_count == 0) return n;

  DecapResult* tunnels = tunnels_.data();
  const VniForwarding* vnis[kBurst];
  DropReason fate[kBurst];
  VxlanDecapBurst(packets, tunnel_count, table, tunnels, vnis, fate);
  uint16_t decapsulated =
      Sift(Stage::kVxlanDecap, packets, tunnel_count, fate, nullptr, tunnels, vnis);
  // A decapsulation's packets are the frames it decapsulated.
  start = Account(Stage::kVxlanDecap, decapsulated, start);

  NextHop* next = next_hops_.data();
  l2_.FromUnderlay(table, packets, tunnels, vnis, decapsulated, now_s_, next);
  Dispatch(table, packets, decapsulated, next, nullptr, nullptr);
  Account(Stage::kL2Lookup, decapsulated, start);
  FlushHandoffs();
  return n;
}

uint32_t Worker::PollHandoff(const ForwardingTable& table) {
  rte_mbuf* frames[kBurst];
  uint64_t start = rte_rdtsc();
  unsigned n = rte_ring_sc_dequeue_burst(shared_.handoff[id_], reinterpret_cast<void**>(frames),
                                         kBurst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    VnicPort* const* vnic = table.vnics_by_index.Find(MetaOf(frames[i])->vnic_index);
    if (!vnic || (*vnic)->owner() != id_) {
      DropAt(Stage::kHandoff, frames[i], DropReason::kNoRoute);  // removed meanwhile
    } else {
      Deliver(*vnic, frames[i], nullptr, MetaOf(frames[i])->opener_index);
    }
  }
  if (n > 0) Account(Stage::kHandoff, n, start);
  return n;
}

void Worker::Dispatch(const ForwardingTable& table, rte_mbuf** frames, uint16_t n,
                      const NextHop* next, const PacketKey* const* keys, VnicPort* source) {
  for (uint16_t i = 0; i < n; ++i) {
    const PacketKey* key = keys ? keys[i] : nullptr;
    switch (next[i].kind) {
      case NextHop::Kind::kVnic:
        Deliver(next[i].vnic, frames[i], key, source ? source->index() : next[i].vnic->index());
        break;
      case NextHop::Kind::kVtep:
        Encapsulate(table, frames[i], {next[i].vni, next[i].next_hop_mac, next[i].vtep}, source);
        break;
      case NextHop::Kind::kFlood:
        Flood(table, next[i], source, frames[i], key);
        break;
      case NextHop::Kind::kDrop:
        if (next[i].reason == DropReason::kNoNeighbor) MaybeResolve(table, *next[i].vtep);
        DropAt(Stage::kL2Lookup, frames[i], next[i].reason, source);
        break;
    }
  }
}

void Worker::Flood(const ForwardingTable& table, const NextHop& next, VnicPort* source,
                   rte_mbuf* frame, const PacketKey* key) {
  // Targets: the VNI's other local vnics; from a vnic, also the remote VTEPs.
  VnicPort* locals[64];
  uint32_t local_count = 0;
  const VtepIp* remotes[64];
  uint32_t remote_count = 0;
  if (const VniForwarding* vni = next.forwarding) {
    for (VnicPort* vnic : vni->local_vnics) {
      if (vnic != source && local_count < 64) locals[local_count++] = vnic;
    }
    if (source && table.underlay.present) {
      if (!vni->flood_vteps.empty()) {
        for (const VtepIp& vtep : vni->flood_vteps) {
          if (remote_count < 64) remotes[remote_count++] = &vtep;
        }
      } else if (!IsUnset(vni->multicast_group)) {
        remotes[remote_count++] = &vni->multicast_group;
      }
    }
  }
  uint32_t targets = local_count + remote_count;
  if (targets == 0) {
    DropAt(Stage::kL2Lookup, frame, DropReason::kNoRoute, source);
    return;
  }
  // Every target but the last gets a copy; the last one takes the frame itself.
  for (uint32_t t = 0; t < targets; ++t) {
    rte_mbuf* copy = frame;
    if (t + 1 < targets) {
      copy = rte_pktmbuf_copy(frame, shared_.pool, 0, UINT32_MAX);
      if (!copy) {
        counters_.drops[static_cast<int>(DropReason::kNoBuffer)].Add(1);
        counters_.stages[static_cast<int>(Stage::kL2Lookup)].drops.Add(1);
        continue;
      }
    }
    if (t < local_count) {
      Deliver(locals[t], copy, key, source ? source->index() : locals[t]->index());
      continue;
    }
    const VtepIp& vtep = *remotes[t - local_count];
    EncapTarget target{next.vni, {}, &vtep};
    if (L2Forwarding::NextHopMac(table, vtep, &target.next_hop)) {
      Encapsulate(table, copy, target, source);
    } else {
      MaybeResolve(table, vtep);
      DropAt(Stage::kL2Lookup, copy, DropReason::kNoNeighbor, source);
    }
  }
}

void Worker::Deliver(VnicPort* vnic, rte_mbuf* frame, const PacketKey* key, uint32_t opener) {
  if (vnic->owner() == id_) {
    if (pending_count_ == pending_.size()) FlushDeliveries();
    pending_[pending_count_++] = {vnic, frame, key, opener};
    return;
  }
  MetaOf(frame)->vnic_index = vnic->index();
  MetaOf(frame)->opener_index = opener;
  HandoffQueue& queue = handoffs_[vnic->owner()];
  if (queue.count == queue.frames.size()) FlushHandoffs();
  queue.frames[queue.count] = frame;
  queue.vnics[queue.count++] = vnic;
  ++handoffs_waiting_;
}

void Worker::FlushHandoffs() {
  if (handoffs_waiting_ == 0) return;
  uint64_t start = rte_rdtsc();
  for (uint32_t owner = 0; owner < handoffs_.size(); ++owner) {
    HandoffQueue& queue = handoffs_[owner];
    if (queue.count == 0) continue;
    unsigned sent = rte_ring_mp_enqueue_burst(shared_.handoff[owner],
                                              reinterpret_cast<void**>(queue.frames.data()),
                                              queue.count, nullptr);
    for (unsigned i = sent; i < queue.count; ++i) {
      DropAt(Stage::kHandoff, queue.frames[i], DropReason::kQueueFull, queue.vnics[i]);
    }
    queue.count = 0;
  }
  Account(Stage::kHandoff, handoffs_waiting_, start);
  handoffs_waiting_ = 0;
}

void Worker::Encapsulate(const ForwardingTable& table, rte_mbuf* frame, const EncapTarget& target,
                         VnicPort* source) {
  if (encap_.count == encap_.frames.size()) FlushEncap(table);
  encap_.frames[encap_.count] = frame;
  encap_.targets[encap_.count] = target;
  encap_.sources[encap_.count++] = source;
}

void Worker::FlushEncap(const ForwardingTable& table) {
  uint16_t n = encap_.count;
  if (n == 0) return;
  uint64_t start = rte_rdtsc();
  DropReason fate[kQueueSize];
  VxlanEncapBurst(encap_.frames.data(), n, encap_.targets.data(), table.underlay, &ip_id_, fate);
  if (underlay_tx_count_ + n > underlay_tx_.size()) FlushUnderlay(table);
  uint16_t dropped = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (fate[i] == kKeep) {
      underlay_tx_[underlay_tx_count_++] = encap_.frames[i];
    } else {
      Drop(encap_.frames[i], fate[i], encap_.sources[i]);
      ++dropped;
    }
  }
  counters_.stages[static_cast<int>(Stage::kVxlanEncap)].drops.Add(dropped);
  encap_.count = 0;
  Account(Stage::kVxlanEncap, n - dropped, start);
}

void Worker::SendOnUnderlay(const ForwardingTable& table, rte_mbuf* frame) {
  if (underlay_tx_count_ == underlay_tx_.size()) FlushUnderlay(table);
  underlay_tx_[underlay_tx_count_++] = frame;
}

uint16_t Worker::FilterFrames(VnicPort& vnic, Direction direction, rte_mbuf** frames,
                              const PacketKey** keys, uint16_t n, PacketKey* scratch,
                              const uint32_t* openers) {
  // The vnic's filter is out of the cache by its next burst (the profile's costliest load in
  // DecideBurst): fetch it while the frames are parsed.
  rte_prefetch0(vnic.filter()->Current());
  const PacketKey* ip_keys[kBurst];
  uint32_t ip_openers[kBurst];
  Verdict verdicts[kBurst];
  // Per frame: the index of its key among the IP frames, or -1 (ARP: antispoof's business), or
  // -2 (dropped already).
  int16_t key_of[kBurst];
  uint16_t ip_count = 0;
  uint16_t parsed = 0;
  for (uint16_t i = 0; i < n; ++i) {
    ParseStatus status = ParseStatus::kOk;
    if (!keys[i]) {
      status = ParseFrame(frames[i], &scratch[parsed]);
      if (status == ParseStatus::kOk) keys[i] = &scratch[parsed++];
    }
    if (status == ParseStatus::kOk) {
      if (openers) ip_openers[ip_count] = openers[i];
      ip_keys[ip_count] = keys[i];
      key_of[i] = static_cast<int16_t>(ip_count++);
    } else if (status == ParseStatus::kNotIp && EtherTypeOf(frames[i]) == kEthTypeArp &&
               frames[i]->data_len >= sizeof(EthernetHeader) + sizeof(ArpHeader)) {
      key_of[i] = -1;
    } else {
      // A truncated ARP is malformed: from the underlay, no antispoof check has seen it.
      bool malformed = status != ParseStatus::kNotIp || EtherTypeOf(frames[i]) == kEthTypeArp;
      Drop(frames[i], malformed ? DropReason::kMalformed : DropReason::kFilter, &vnic);
      key_of[i] = -2;
    }
  }
  if (ip_count > 0) {
    filter_.DecideBurst(*vnic.filter(), direction, ip_keys, ip_count, verdicts, now_tsc_,
                        openers ? ip_openers : nullptr);
  }
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (key_of[i] == -2) continue;
    if (key_of[i] >= 0 && !IsPass(verdicts[key_of[i]])) {
      Verdict verdict = verdicts[key_of[i]];
      VnicPort* charged = &vnic;
      if (verdict == Verdict::kDropConntrackFull && openers && openers[i] != vnic.index()) {
        // The sender's quota refused the flow: its drop, not the receiver's (looked up only on
        // such a drop).
        const ForwardingTable& table = *shared_.table.load(std::memory_order_relaxed);
        if (VnicPort* const* opener = table.vnics_by_index.Find(openers[i])) charged = *opener;
      }
      Drop(frames[i], DropReasonOf(verdict), charged);
      continue;
    }
    keys[kept] = keys[i];
    frames[kept++] = frames[i];
  }
  return kept;
}

void Worker::FlushDeliveries() {
  uint32_t remaining = pending_count_;
  while (remaining > 0) {
    // Gather up to a burst of frames for the first vnic still pending, in arrival order.
    VnicPort* vnic = nullptr;
    rte_mbuf* frames[kBurst];
    const PacketKey* keys[kBurst];
    uint32_t openers[kBurst];
    uint16_t n = 0;
    uint32_t write = 0;
    for (uint32_t read = 0; read < remaining; ++read) {
      Pending entry = pending_[read];
      if (!vnic) vnic = entry.vnic;
      if (entry.vnic == vnic && n < kBurst) {
        keys[n] = entry.key;
        openers[n] = entry.opener;
        frames[n++] = entry.frame;
      } else {
        pending_[write++] = entry;
      }
    }
    remaining = write;

    uint64_t start = rte_rdtsc();
    if (!vnic->Ready()) {
      for (uint16_t i = 0; i < n; ++i)
        DropAt(Stage::kVnicTx, frames[i], DropReason::kNotConnected, vnic);
      Account(Stage::kVnicTx, n, start);
      continue;
    }
    uint16_t kept = n;
    if (!vnic->settings()->bypass_filtering) {
      kept =
          FilterFrames(*vnic, Direction::kInbound, frames, keys, n, filter_keys_.data(), openers);
      counters_.stages[static_cast<int>(Stage::kFilterIngress)].drops.Add(n - kept);
      start = Account(Stage::kFilterIngress, n, start);
    }
    uint16_t sent = vnic->Transmit(frames, kept);
    VnicPortCounters& vnic_counters = vnic->counters(id_);
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) bytes += frames[i]->pkt_len;
    vnic_counters.packets_out.Add(sent);
    vnic_counters.bytes_out.Add(bytes);
    if (kept > sent) {
      vnic_counters.drops[static_cast<int>(DropReason::kQueueFull)].Add(kept - sent);
      counters_.drops[static_cast<int>(DropReason::kQueueFull)].Add(kept - sent);
      counters_.stages[static_cast<int>(Stage::kVnicTx)].drops.Add(kept - sent);
    }
    // The port copied what it sent: every mbuf is ours to free.
    rte_pktmbuf_free_bulk(frames, kept);
    Account(Stage::kVnicTx, kept, start);
  }
  pending_count_ = 0;
}

void Worker::FlushUnderlay(const ForwardingTable& table) {
  if (underlay_tx_count_ == 0) return;
  uint64_t start = rte_rdtsc();
  uint16_t sent =
      rte_eth_tx_burst(table.underlay.port, id_, underlay_tx_.data(), underlay_tx_count_);
  for (uint16_t i = sent; i < underlay_tx_count_; ++i)
    Drop(underlay_tx_[i], DropReason::kQueueFull);
  counters_.stages[static_cast<int>(Stage::kUnderlayTx)].drops.Add(underlay_tx_count_ - sent);
  Account(Stage::kUnderlayTx, underlay_tx_count_, start);
  underlay_tx_count_ = 0;
}

void Worker::MaybeResolve(const ForwardingTable& table, const VtepIp& vtep) {
  uint64_t hash = VtepHash()(vtep);
  auto& slot = arp_sent_[hash & (arp_sent_.size() - 1)];
  if (slot.first == hash && slot.second == now_s_) return;  // one request per second
  slot = {hash, now_s_};
  uint64_t start = rte_rdtsc();
  rte_mbuf* request = table.underlay.ipv6
                          ? BuildNeighborSolicitation(shared_.pool, table.underlay, vtep)
                          : BuildArpRequest(shared_.pool, table.underlay, Ipv4OfVtep(vtep));
  if (!request) return;
  SendOnUnderlay(table, request);
  Account(Stage::kVtep, 1, start);
}

void Worker::MaybeJoinGroups(const ForwardingTable& table) {
  // Report membership when the groups changed, and every minute (for IGMP snooping switches).
  if (table.groups_version == joined_version_ && now_s_ - joined_at_s_ < 60) return;
  joined_version_ = table.groups_version;
  joined_at_s_ = now_s_;
  uint64_t start = rte_rdtsc();
  for (uint32_t group : table.multicast_groups) {
    rte_mbuf* report = BuildIgmpReport(shared_.pool, table.underlay, group);
    if (!report) break;
    SendOnUnderlay(table, report);
  }
  Account(Stage::kVtep, static_cast<uint32_t>(table.multicast_groups.size()), start);
}

}  // namespace butterfly
