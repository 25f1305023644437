// The security-group stage of a worker: conntrack, then the vnic's published filter, for a burst
// of packets of one vnic in one direction. No allocation, lock or system call: the worker owns
// its FilterWorker (conntrack table, fragment table, counters) and reads the vnic's filter once
// per burst through its FilterSlot.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/model.h"
#include "jit/filter_slot.h"
#include "jit/packet_key.h"
#include "pipeline/conntrack.h"
#include "pipeline/fragment_table.h"

namespace butterfly {

// Why a packet passed or was dropped. Numbers are stable: counters are indexed by them.
enum class Verdict : uint8_t {
  kPassRule = 0,            // a rule allows it (and a flow was opened)
  kPassConntrack = 1,       // part of a tracked flow (a reply, or more of an allowed flow)
  kPassRelated = 2,         // an ICMP error about a tracked flow
  kPassInfrastructure = 3,  // DHCP, IPv6 neighbour discovery, MLD
  kPassFragment = 4,        // a non-first fragment of a datagram whose first fragment passed
  kPassBypass = 5,          // the vnic has bypass_filtering
  kDropNoRule = 6,
  kDropAntispoof = 7,  // from the VM with a source address that is not the vnic's
  kDropConntrackFull = 8,
  kDropMalformed = 9,  // not a parsed IPv4 or IPv6 packet
  kDropNoPolicy = 10,  // the vnic has no policy yet (fail closed)
  kDropFragment = 11,  // a non-first fragment whose first fragment did not pass (or is unknown)
};
inline constexpr int kVerdictCount = 12;

inline bool IsPass(Verdict verdict) { return verdict < Verdict::kDropNoRule; }
// Stable names for counters ("filter" is a drop by the security groups).
const char* VerdictName(Verdict verdict);

struct FilterWorkerConfig {
  ConntrackConfig conntrack;
  uint32_t fragment_slots = 1024;
  uint32_t fragment_lifetime_s = 10;
  // Conntrack slots scanned for expired entries after each burst.
  uint32_t reclaim_slots_per_burst = 8;
};

inline constexpr uint16_t kMaxFilterBurst = 32;

class alignas(64) FilterWorker {
 public:
  explicit FilterWorker(const FilterWorkerConfig& config);

  Conntrack& conntrack() { return conntrack_; }
  const Conntrack& conntrack() const { return conntrack_; }
  // Packets per verdict since the start; written by the owning worker only.
  uint64_t count(Verdict verdict) const {
    return counts_[static_cast<int>(verdict)].load(std::memory_order_relaxed);
  }

 private:
  friend void FilterBurst(FilterWorker&, const FilterSlot&, Direction, const PacketKey* const*,
                          uint16_t, Verdict*, uint64_t, const uint32_t*);
  // A packet's flow key and hash, computed for the whole burst first so the conntrack slots
  // can be prefetched while the previous packets are decided.
  struct PreparedFlow {
    FlowKey key;
    uint64_t hash = 0;
    bool from_lo = false;
    // Same flow and direction as the burst's previous packet.
    bool repeats_previous = false;
  };
  // `previous`: the burst's previous packet's, or null. Bursts are mostly runs of one flow: a
  // packet of the previous packet's flow reuses its hash. (One with the very same header as the
  // previous packet, TCP flags and fragment bits included, is not prepared at all: FilterBurst
  // gives it the previous packet's flow, and conntrack need not see it again.)
  void Prepare(uint32_t vnic, const PacketKey& key, const PreparedFlow* previous,
               PreparedFlow* flow);
  // The previous packet's entry when it is still `flow`'s live entry, else a lookup.
  ConntrackEntry* FindFlow(const PreparedFlow& flow, uint64_t now);
  // `owner`: the vnic a flow the packet opens is charged to (its sender's, see FilterBurst).
  Verdict Decide(const FilterProgram& program, uint32_t vnic, Direction direction,
                 const PacketKey& key, const PreparedFlow& flow, uint64_t now, uint32_t owner);
  Verdict DecideFlow(const FilterProgram& program, uint32_t vnic, Direction direction,
                     const PacketKey& key, const PreparedFlow& flow, uint64_t now, uint32_t owner);
  // Decide for a TCP or UDP packet, not a fragment, that repeats the flow and direction of the
  // previous packet, which conntrack passed: every check before conntrack would give the same
  // answer again, so only the flow's tracking remains.
  Verdict DecideRepeat(const PacketKey& key, const PreparedFlow& flow, uint64_t now);
  // On a flow admitted under another policy: does the policy in force still admit its opener?
  bool StillAllowed(const FilterProgram& program, ConntrackEntry* entry);

  FilterWorkerConfig config_;
  // Scratch of FilterBurst, a member so that no burst pays for zeroing it (Prepare writes all).
  PreparedFlow prepared_[kMaxFilterBurst];
  // The conntrack entry the packet being decided was found in or opened (or null), and that of
  // the burst's previous packet.
  ConntrackEntry* decided_entry_ = nullptr;
  ConntrackEntry* previous_entry_ = nullptr;
  Conntrack conntrack_;
  FragmentTable fragments_;
  std::atomic<uint64_t> counts_[kVerdictCount] = {};
};

// Decides `n` packets (looked up kMaxFilterBurst at a time, prefetched) of the vnic of `slot`,
// all travelling in `direction` (inbound: to the VM; outbound: from the VM). `now` is in the
// conntrack's ticks. A flow packet i opens is charged to vnic owners[i] (inbound from another
// local vnic: the sender, whose flood must use up its own quota, not the receiver's), or to the
// slot's vnic when `owners` is null.
void FilterBurst(FilterWorker& worker, const FilterSlot& slot, Direction direction,
                 const PacketKey* const* keys, uint16_t n, Verdict* out, uint64_t now,
                 const uint32_t* owners = nullptr);
// The same for keys stored side by side.
void FilterBurst(FilterWorker& worker, const FilterSlot& slot, Direction direction,
                 const PacketKey* keys, uint16_t n, Verdict* out, uint64_t now,
                 const uint32_t* owners = nullptr);

}  // namespace butterfly
