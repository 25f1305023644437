// A worker lcore: one run-to-completion loop over its share of the ports, in bursts of 32,
//   underlay rx -> vtep (ARP/NDP) | vxlan_decap -> l2 (learn, lookup) -> deliver
//   vnic rx -> antispoof -> filter (egress) -> l2 (lookup) -> deliver | vxlan_encap -> underlay tx
//   deliver: conntrack + filter (ingress) -> vnic tx, on the vnic's owner worker (others hand
//   frames over through its ring, so a vnic's flows live in one conntrack table).
// Each stage takes a burst and records a fate (or, for l2, a next hop) per frame; the loop drops,
// enqueues once per destination and counts packets and cycles once per stage per burst.
// No allocation, lock or system call on this path (TAP vnics aside: read/write); the RCU
// quiescent state is reported once per loop, and an idle worker sleeps (offline) with backoff.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rcu.h"
#include "core/result.h"
#include "pipeline/counters.h"
#include "pipeline/filter_stage.h"
#include "pipeline/forwarding_table.h"
#include "pipeline/idle_waiter.h"
#include "pipeline/l2_forwarding.h"
#include "pipeline/vtep_responder.h"
#include "pipeline/vxlan_decap.h"
#include "pipeline/vxlan_encap.h"

namespace butterfly {

inline constexpr uint16_t kBurst = 32;

// Work the control side needs done by a worker on state only it may touch (its conntrack table):
// posted in the worker's mailbox, run at the end of its loop.
struct WorkerCommand {
  enum class Kind { kExportFlows, kImportFlows };
  Kind kind = Kind::kExportFlows;
  uint32_t vnic_index = 0;
  std::string data;  // import: the flows; export: filled by the worker
  Status result;
  std::atomic<bool> done{false};
};

// Everything the workers share with the control side.
struct WorkerShared {
  std::atomic<const ForwardingTable*> table{nullptr};
  RcuDomain* rcu = nullptr;
  rte_mempool* pool = nullptr;
  std::vector<rte_ring*> handoff;  // one per worker, many producers, one consumer
  std::vector<int> wake_fds;       // one eventfd per worker: the control side wakes it
  // One slot per worker; checked once per loop.
  std::unique_ptr<std::atomic<WorkerCommand*>[]> mailboxes;
  rte_ring* learn = nullptr;  // workers -> control side
  std::atomic<bool> running{true};
  uint64_t tsc_hz = 1;
  uint64_t start_tsc = 0;
  uint32_t workers = 1;
  WorkerCounters* counters = nullptr;  // [workers]
  FilterStageConfig filter_config;
  // Longest nap of an idle worker that polls the underlay (which cannot wake it): the most
  // latency the first packet after a pause sees.
  uint32_t max_idle_sleep_us = 1000;
  // An idle worker with only vnics sleeps until a VM kicks it, or this long.
  int idle_wait_ms = 100;
};

class Worker {
 public:
  Worker(uint16_t id, WorkerShared& shared);
  // Loops until shared.running is cleared.
  void Run();
  // One pass over every port; returns how many packets it handled.
  uint32_t RunOnce();
  // Runs a command posted in this worker's mailbox, if any.
  void RunCommand();
  // Its table's counters (atomics) and settings may be read from any thread; nothing else.
  const Conntrack& conntrack() const { return filter_.conntrack(); }

 private:
  // A frame for a vnic this worker owns, waiting for its burst through the ingress filter.
  struct Pending {
    VnicPort* vnic;
    rte_mbuf* frame;
    // The frame's key as its sender's egress filter parsed it, or null: the ingress filter of a
    // same-host delivery reuses it instead of parsing the frame a second time.
    const PacketKey* key;
    // The vnic a flow the frame opens is charged to: its local sender's, or `vnic`'s (from the
    // underlay).
    uint32_t opener;
  };
  // Flood copies can make a burst's frames for one destination more than a burst.
  static constexpr uint16_t kQueueSize = 64;
  // Frames for the vnics of one other worker: one ring enqueue per burst.
  struct HandoffQueue {
    uint16_t count = 0;
    std::array<rte_mbuf*, kQueueSize> frames;
    std::array<VnicPort*, kQueueSize> vnics;  // charged when the ring is full
  };
  // Frames for the encapsulation stage, with their targets.
  struct EncapQueue {
    uint16_t count = 0;
    std::array<rte_mbuf*, kQueueSize> frames;
    std::array<EncapTarget, kQueueSize> targets;
    std::array<VnicPort*, kQueueSize> sources;  // charged with a drop (null: from the underlay)
  };

  // The two paths: vnic rx -> antispoof -> filter (egress) -> l2 -> deliver | encap, and
  // underlay rx -> vtep | decap -> l2 -> deliver; and the frames other workers handed over.
  uint32_t PollVnic(const ForwardingTable& table, VnicPort& vnic);
  uint32_t PollUnderlay(const ForwardingTable& table);
  uint32_t PollHandoff(const ForwardingTable& table);

  // Sends each frame where the L2 stage said; `source`: the sending vnic (null: the underlay).
  void Dispatch(const ForwardingTable& table, rte_mbuf** frames, uint16_t n, const NextHop* next,
                const PacketKey* const* keys, VnicPort* source);
  void Flood(const ForwardingTable& table, const NextHop& next, VnicPort* source, rte_mbuf* frame,
             const PacketKey* key);
  // `opener`: the index of the local vnic that sent the frame, or `vnic`'s (see Pending).
  void Deliver(VnicPort* vnic, rte_mbuf* frame, const PacketKey* key, uint32_t opener);
  void Encapsulate(const ForwardingTable& table, rte_mbuf* frame, const EncapTarget& target,
                   VnicPort* source);
  // The queued deliveries: per vnic, ingress filter then vnic tx.
  void FlushDeliveries();
  void FlushHandoffs();
  void FlushEncap(const ForwardingTable& table);
  void FlushUnderlay(const ForwardingTable& table);
  void SendOnUnderlay(const ForwardingTable& table, rte_mbuf* frame);

  // Filters frames of one vnic in one direction; keeps the passing ones, in order, and returns
  // how many. keys[i] is frames[i]'s parsed key, or null: such frames are parsed into `scratch`
  // (kBurst keys) and their keys[i] set. Frames and keys are compacted alike. `openers`: per
  // frame, the vnic a flow it opens is charged to, or null for `vnic` (see DecideBurst).
  uint16_t FilterFrames(VnicPort& vnic, Direction direction, rte_mbuf** frames,
                        const PacketKey** keys, uint16_t n, PacketKey* scratch,
                        const uint32_t* openers = nullptr);
  // Keeps the frames whose fate is kKeep, in order, with their entries of the `parallel` arrays,
  // and drops the others (charged to `vnic`, if any) as `stage`'s drops. Returns how many stay.
  template <typename... Parallel>
  uint16_t Sift(Stage stage, rte_mbuf** frames, uint16_t n, const DropReason* fate, VnicPort* vnic,
                Parallel*... parallel);
  void MaybeResolve(const ForwardingTable& table, const VtepIp& vtep);
  void MaybeJoinGroups(const ForwardingTable& table);

  // Sleeps offline until traffic (event-driven) or a nap's end; returns false when the re-check
  // after arming found work.
  bool Sleep(uint32_t idle_loops);
  void Drop(rte_mbuf* frame, DropReason reason, VnicPort* vnic = nullptr);
  // A drop by `stage` (also counted in the stage's drops: the stages' drops add up to the
  // drops by reason).
  void DropAt(Stage stage, rte_mbuf* frame, DropReason reason, VnicPort* vnic = nullptr);
  // Counts a stage's packets, drops and the cycles since `start`, once per burst; returns the
  // time now, the next stage's start.
  uint64_t Account(Stage stage, uint32_t packets, uint64_t start);

  const uint16_t id_;
  WorkerShared& shared_;
  WorkerCounters& counters_;
  FilterStage filter_;
  L2Forwarding l2_;
  IdleWaiter idle_;
  uint64_t now_tsc_ = 0;
  uint32_t now_s_ = 0;
  uint16_t ip_id_ = 0;

  // Keys parsed by the ingress filter: a member, so that no burst pays for zeroing 4 KiB that
  // parsing overwrites. FilterFrames is never re-entered (filtering delivers nothing).
  std::array<PacketKey, kBurst> filter_keys_;
  // Keys parsed by the egress filters, kept until the frames they describe are delivered (the
  // pending deliveries point into it): reset only once nothing is pending.
  std::array<PacketKey, 256> egress_keys_;
  uint32_t egress_keys_used_ = 0;
  // A burst's next hops and what decapsulation found: members, so that no burst pays for
  // initialising them (the stages write what is read).
  std::array<NextHop, kBurst> next_hops_;
  std::array<DecapResult, kBurst> tunnels_;
  std::array<ArpOutcome, kBurst> arp_outcomes_;

  std::array<Pending, 256> pending_{};
  uint32_t pending_count_ = 0;
  std::vector<HandoffQueue> handoffs_;  // by owner worker
  uint32_t handoffs_waiting_ = 0;
  EncapQueue encap_;
  std::array<rte_mbuf*, 64> underlay_tx_{};
  uint16_t underlay_tx_count_ = 0;

  // Rate limit, direct-mapped: one ARP request per (VTEP, second).
  std::array<std::pair<uint64_t, uint32_t>, 64> arp_sent_{};
  uint64_t joined_version_ = 0;
  uint32_t joined_at_s_ = 0;
};

// The lcore entry point: runs a Worker built on `argument` (a Worker*).
int RunWorker(void* argument);

}  // namespace butterfly
