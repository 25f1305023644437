// What the dataplane counts: packets, drops by reason and cycles, per worker, per stage and per
// vnic. Each counter is written by one worker only (relaxed stores, no atomics RMW on the hot
// path) and read by the control side; "clear" is a baseline kept by the reader.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace butterfly {

// Drop reasons. Numbers and names never change: they are API (nic_stats, butterfly stats).
enum class DropReason : uint8_t {
  kFilter = 0,         // no security group rule allows it
  kAntispoof = 1,      // source MAC/IP/ARP/NDP not the vnic's, or RARP
  kNoRoute = 2,        // unknown destination with nowhere to flood, or VNI without underlay
  kMtu = 3,            // too big for the tunnel or the destination
  kMalformed = 4,      // runt, truncated or inconsistent headers
  kQueueFull = 5,      // a ring or a queue had no room (the receiver is slow or gone)
  kConntrackFull = 6,  // no room to track a new flow
  kNoPolicy = 7,       // the vnic has no policy yet
  kNotVxlan = 8,       // underlay packet that is not VXLAN for this VTEP
  kBadVxlan = 9,       // VXLAN header without the I flag
  kUnknownVni = 10,    // VXLAN for a VNI with no vnic on this host
  kNoNeighbor = 11,    // remote VTEP's MAC not resolved yet (ARP sent)
  kNotConnected = 12,  // the destination vnic has no VM attached
  kNoBuffer = 13,      // no mbuf for a copy
  kFragment = 14,      // a fragment whose first fragment did not pass
};
inline constexpr int kDropReasonCount = 15;
const char* DropReasonName(DropReason reason);

// Pipeline stages, in the order packets meet them: from the underlay (receive, decap), from a vnic
// (receive, antispoof, egress filter), the L2 lookup, then out to the underlay (encap, transmit)
// or to a vnic (handoff to its worker, ingress filter, transmit). Numbers never change.
enum class Stage : uint8_t {
  kUnderlayRx = 0,
  kVxlanDecap = 1,
  kVnicRx = 2,
  kAntispoof = 3,
  kFilterEgress = 4,
  kL2Lookup = 5,
  kVxlanEncap = 6,
  kUnderlayTx = 7,
  kHandoff = 8,
  kFilterIngress = 9,
  kVnicTx = 10,
  kVtep = 11,  // ARP/NDP of the VTEP, IGMP joins
};
inline constexpr int kStageCount = 12;
const char* StageName(Stage stage);

// A counter written by one thread and read by others: no read-modify-write atomics.
class Counter {
 public:
  void Add(uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct StageCounters {
  Counter packets;
  Counter drops;
  Counter cycles;
  Counter calls;
};

struct alignas(64) WorkerCounters {
  std::array<StageCounters, kStageCount> stages;
  std::array<Counter, kDropReasonCount> drops;
  Counter loops;
  Counter busy_loops;
  Counter sleeps;
  Counter busy_cycles;
  Counter idle_cycles;
  // Frames from a new remote MAC not reported: its VNI held its cap of learned MACs.
  Counter fdb_vni_full;
  // Learn events lost because the learn ring was full (learning is only delayed).
  Counter learn_ring_full;
};

// One vnic's counters, one instance per worker (only the vnic's owner writes most of them).
struct alignas(64) VnicPortCounters {
  Counter packets_in;  // from the VM
  Counter bytes_in;
  Counter packets_out;  // to the VM
  Counter bytes_out;
  std::array<Counter, kDropReasonCount> drops;
};

}  // namespace butterfly
