// A worker lcore: one run-to-completion loop over its share of the ports, in bursts of 32,
//   underlay rx -> VTEP ARP | VXLAN decap -> (VNI, dst MAC) lookup -> deliver
//   vnic rx -> antispoof -> filter (egress) -> lookup -> deliver | VXLAN encap -> underlay tx
//   deliver: conntrack + filter (ingress) -> vnic tx, on the vnic's owner worker (others hand
//   frames over through its ring, so a vnic's flows live in one conntrack table).
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

namespace butterfly {

// What a worker tells the control side to learn (through the learn ring).
struct LearnEvent {
  uint8_t kind;  // LearnKind
  uint8_t mac[6];
  uint8_t pad;
  uint32_t vni;
  VtepIp ip;
};
static_assert(sizeof(LearnEvent) == 28);  // rte_ring elements: a multiple of 4 bytes
enum LearnKind : uint8_t { kLearnRemoteMac = 1, kLearnNeighbor = 2 };

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
  FilterWorkerConfig filter_config;
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

  uint32_t PollUnderlay(const ForwardingTable& table);
  uint32_t PollVnic(const ForwardingTable& table, VnicPort& vnic);
  uint32_t PollHandoff(const ForwardingTable& table);

  // The local vnic the burst's previous frame went to: bursts are mostly runs to one
  // destination, which then costs a compare instead of a hash lookup.
  struct LastLocalRoute {
    uint64_t mac = ~uint64_t{0};  // no MAC has this key (MacKey uses 48 bits)
    VnicPort* vnic = nullptr;
  };
  // `vni`: the source vnic's VNI's forwarding (looked up once per burst), or null.
  void ForwardFromVnic(const ForwardingTable& table, VnicPort& source, const VniForwarding* vni,
                       uint32_t vni_id, rte_mbuf* frame, const PacketKey* key,
                       LastLocalRoute& last);
  void ForwardFromUnderlay(const ForwardingTable& table, const VniForwarding& vni, rte_mbuf* frame);
  void Flood(const ForwardingTable& table, const VniForwarding* vni, uint32_t vni_id,
             VnicPort* source, rte_mbuf* frame, const PacketKey* key = nullptr);
  void SendToVtep(const ForwardingTable& table, uint32_t vni, const VtepIp& vtep, VnicPort* source,
                  rte_mbuf* frame);
  // `opener`: the index of the local vnic that sent the frame, or `vnic`'s (see Pending).
  void Deliver(VnicPort* vnic, rte_mbuf* frame, const PacketKey* key, uint32_t opener);
  void FlushDeliveries(const ForwardingTable& table);
  void FlushUnderlay(const ForwardingTable& table);
  // Filters frames of one vnic in one direction; keeps the passing ones, in order, and returns
  // how many. keys[i] is frames[i]'s parsed key, or null: such frames are parsed into `scratch`
  // (kBurst keys) and their keys[i] set. Frames and keys are compacted alike. `openers`: per
  // frame, the vnic a flow it opens is charged to, or null for `vnic` (see FilterBurst).
  uint16_t FilterFrames(VnicPort& vnic, const VnicSettings& settings, Direction direction,
                        rte_mbuf** frames, const PacketKey** keys, uint16_t n, PacketKey* scratch,
                        Stage stage, const uint32_t* openers = nullptr);
  void Learn(const VniForwarding& vni, const uint8_t* mac, const VtepIp& vtep);
  void Report(const LearnEvent& event, uint64_t dedup_key);
  void MaybeResolve(const ForwardingTable& table, const VtepIp& vtep);
  void MaybeJoinGroups(const ForwardingTable& table);

  // Sleeps offline until traffic (event-driven) or a nap's end; returns false when the re-check
  // after arming found work.
  bool Sleep(uint32_t idle_loops);
  void Drop(rte_mbuf* frame, DropReason reason, VnicPort* vnic = nullptr);
  // A drop by `stage` (also counted in the stage's drops: the stages' drops add up to the
  // drops by reason).
  void DropAt(Stage stage, rte_mbuf* frame, DropReason reason, VnicPort* vnic = nullptr);
  // Counts a stage's packets and cycles. Cycles spent in stages it called (encap inside lookup)
  // are counted there, not twice: `nested_cycles_` collects them.
  void Account(Stage stage, uint32_t packets, uint64_t start_tsc);
  void AccountOuter(Stage stage, uint32_t packets, uint64_t start_tsc, uint64_t nested_before);

  const uint16_t id_;
  WorkerShared& shared_;
  WorkerCounters& counters_;
  FilterWorker filter_;
  IdleWaiter idle_;
  uint64_t now_tsc_ = 0;
  uint64_t nested_cycles_ = 0;
  uint32_t now_s_ = 0;
  uint16_t ip_id_ = 0;

  // Keys parsed by the ingress filter: a member, so that no burst pays for zeroing 4 KiB that
  // parsing overwrites. FilterFrames is never re-entered (filtering delivers nothing).
  std::array<PacketKey, kBurst> filter_keys_;
  // Keys parsed by the egress filters, kept until the frames they describe are delivered (the
  // pending deliveries point into it): reset only once nothing is pending.
  std::array<PacketKey, 256> egress_keys_;
  uint32_t egress_keys_used_ = 0;

  std::array<Pending, 256> pending_{};
  uint32_t pending_count_ = 0;
  std::array<rte_mbuf*, 64> underlay_tx_{};
  uint16_t underlay_tx_count_ = 0;

  // Rate limits, direct-mapped: one report per (key, second).
  std::array<std::pair<uint64_t, uint32_t>, 256> reported_{};
  std::array<std::pair<uint64_t, uint32_t>, 64> arp_sent_{};  // (VtepHash, second)
  uint64_t joined_version_ = 0;
  uint32_t joined_at_s_ = 0;
};

// The lcore entry point: runs a Worker built on `argument` (a Worker*).
int RunWorker(void* argument);

}  // namespace butterfly
