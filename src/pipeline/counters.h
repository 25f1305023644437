// What the dataplane counts: packets, drops by reason and cycles, per worker, per stage and per
// vnic. Each counter is written by one worker only (relaxed stores, no atomics RMW on the hot
// path) and read by the control side; "clear" is a baseline kept by the reader.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace butterfly {

// The one list of drop reasons: X(enumerator, number, name, meaning). It makes the enum, the
// names of the counters in the API, the CLI and `stats`, and the README's table (a unit test holds
// the README to it). Numbers and names never change: they are API (nic_stats, butterfly stats).
#define BUTTERFLY_DROP_REASONS(X)                                                                \
  X(kFilter, 0, "filter", "no security group rule allows it")                                    \
  X(kAntispoof, 1, "antispoof", "source MAC, IP, ARP or NDP not the vnic's, or RARP")            \
  X(kNoRoute, 2, "no_route", "unknown destination with nowhere to flood, or no underlay")        \
  X(kMtu, 3, "mtu", "too big for the tunnel or the destination")                                 \
  X(kMalformed, 4, "malformed", "runt, truncated or inconsistent headers")                       \
  X(kQueueFull, 5, "queue_full", "a ring or a queue had no room (the receiver is slow or gone)") \
  X(kConntrackFull, 6, "conntrack_full", "no room to track a new flow (table or vnic quota)")    \
  X(kNoPolicy, 7, "no_policy", "the vnic has no policy yet")                                     \
  X(kNotVxlan, 8, "not_vxlan", "an underlay packet that is not VXLAN for this VTEP")             \
  X(kBadVxlan, 9, "bad_vxlan", "a VXLAN header without the I flag")                              \
  X(kUnknownVni, 10, "unknown_vni", "VXLAN for a VNI with no vnic on this host")                 \
  X(kNoNeighbor, 11, "no_neighbor", "the remote VTEP's MAC is not resolved yet (ARP sent)")      \
  X(kNotConnected, 12, "not_connected", "the destination vnic has no VM attached")               \
  X(kNoBuffer, 13, "no_buffer", "no mbuf for a flood copy")                                      \
  X(kFragment, 14, "fragment", "a fragment whose first fragment did not pass")

// The one list of pipeline stages, in a packet's order: X(enumerator, number, name, what it
// does). It makes the enum, the names in `stats` and the README's table.
#define BUTTERFLY_STAGES(X)                                                                      \
  X(kUnderlayRx, 0, "underlay_rx", "frames received from the underlay port")                     \
  X(kVxlanDecap, 1, "vxlan_decap", "outer headers checked and stripped (packets: decapsulated)") \
  X(kVnicRx, 2, "vnic_rx", "frames received from VMs")                                           \
  X(kAntispoof, 3, "antispoof", "what a VM may send: its MAC, its addresses in ARP and NDP")     \
  X(kFilterEgress, 4, "filter_egress", "security groups and conntrack, from the VM")             \
  X(kL2Lookup, 5, "l2_lookup", "next hop by (VNI, MAC): a vnic, a VTEP, or a flood; learning")   \
  X(kVxlanEncap, 6, "vxlan_encap", "outer headers prepended towards a remote VTEP")              \
  X(kUnderlayTx, 7, "underlay_tx", "frames sent on the underlay port")                           \
  X(kHandoff, 8, "handoff", "frames passed to the worker that owns their vnic")                  \
  X(kFilterIngress, 9, "filter_ingress", "security groups and conntrack, to the VM")             \
  X(kVnicTx, 10, "vnic_tx", "frames sent to VMs")                                                \
  X(kVtep, 11, "vtep", "the VTEP's own ARP and NDP, its ARP requests and IGMP joins")

#define BUTTERFLY_ENUMERATOR(id, number, name, meaning) id = number,
enum class DropReason : uint8_t { BUTTERFLY_DROP_REASONS(BUTTERFLY_ENUMERATOR) };
enum class Stage : uint8_t { BUTTERFLY_STAGES(BUTTERFLY_ENUMERATOR) };
#undef BUTTERFLY_ENUMERATOR

struct CounterName {
  std::string_view name;
  std::string_view meaning;
};

#define BUTTERFLY_COUNTER_NAME(id, number, name, meaning) CounterName{name, meaning},
inline constexpr CounterName kDropReasonNames[] = {BUTTERFLY_DROP_REASONS(BUTTERFLY_COUNTER_NAME)};
inline constexpr CounterName kStageNames[] = {BUTTERFLY_STAGES(BUTTERFLY_COUNTER_NAME)};
#undef BUTTERFLY_COUNTER_NAME

inline constexpr int kDropReasonCount = static_cast<int>(std::size(kDropReasonNames));
inline constexpr int kStageCount = static_cast<int>(std::size(kStageNames));

// The numbers are dense, from 0, in the lists' order: the name arrays are indexed by them.
constexpr bool NumberedInOrder(std::initializer_list<int> numbers) {
  int expected = 0;
  for (int number : numbers) {
    if (number != expected++) return false;
  }
  return true;
}
#define BUTTERFLY_NUMBER(id, number, name, meaning) number,
static_assert(NumberedInOrder({BUTTERFLY_DROP_REASONS(BUTTERFLY_NUMBER)}));
static_assert(NumberedInOrder({BUTTERFLY_STAGES(BUTTERFLY_NUMBER)}));
#undef BUTTERFLY_NUMBER

inline const char* DropReasonName(DropReason reason) {
  auto index = static_cast<size_t>(reason);
  return index < std::size(kDropReasonNames) ? kDropReasonNames[index].name.data() : "?";
}
inline const char* StageName(Stage stage) {
  auto index = static_cast<size_t>(stage);
  return index < std::size(kStageNames) ? kStageNames[index].name.data() : "?";
}

// A stage's decision for one frame of a burst: kKeep (it goes on), or why it is dropped. Not a
// reason itself: no counter has its number.
inline constexpr DropReason kKeep = static_cast<DropReason>(0xff);

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
