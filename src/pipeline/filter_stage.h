// The security-group stage of a worker: conntrack, then the vnic's published filter, for a burst
// of packets of one vnic in one direction. No allocation, lock or system call: the worker owns
// its FilterStage (conntrack table, fragment table, counters) and reads the vnic's filter once
// per burst through its FilterSlot.
#pragma once

#include <atomic>
#include <cstdint>
#include <iterator>

#include "core/model.h"
#include "jit/filter_slot.h"
#include "jit/packet_key.h"
#include "pipeline/conntrack.h"
#include "pipeline/counters.h"
#include "pipeline/fragment_table.h"

namespace butterfly {

// Why a packet passed or was dropped: X(enumerator, number, the drop reason it is counted as,
// or kKeep for a pass). Numbers are stable: counters are indexed by them.
#define BUTTERFLY_FILTER_VERDICTS(X)                                                      \
  X(kPassRule, 0, kKeep)           /* a rule allows it (and a flow was opened) */         \
  X(kPassConntrack, 1, kKeep)      /* part of a tracked flow (a reply, or more of one) */ \
  X(kPassRelated, 2, kKeep)        /* an ICMP error about a tracked flow */               \
  X(kPassInfrastructure, 3, kKeep) /* DHCP, IPv6 neighbour discovery, MLD */              \
  X(kPassFragment, 4, kKeep)       /* a non-first fragment whose first one passed */      \
  X(kPassBypass, 5, kKeep)         /* the vnic has bypass_filtering */                    \
  X(kDropNoRule, 6, DropReason::kFilter)                                                  \
  X(kDropAntispoof, 7, DropReason::kAntispoof) /* from the VM, a source not the vnic's */ \
  X(kDropConntrackFull, 8, DropReason::kConntrackFull)                                    \
  X(kDropMalformed, 9, DropReason::kMalformed) /* not a parsed IPv4 or IPv6 packet */     \
  X(kDropNoPolicy, 10, DropReason::kNoPolicy)  /* no policy yet (fail closed) */          \
  X(kDropFragment, 11, DropReason::kFragment)  /* a non-first fragment, first one unseen */

#define BUTTERFLY_VERDICT_ENUMERATOR(id, number, reason) id = number,
enum class Verdict : uint8_t { BUTTERFLY_FILTER_VERDICTS(BUTTERFLY_VERDICT_ENUMERATOR) };
#undef BUTTERFLY_VERDICT_ENUMERATOR

#define BUTTERFLY_VERDICT_REASON(id, number, reason) reason,
inline constexpr DropReason kVerdictDropReasons[] = {
    BUTTERFLY_FILTER_VERDICTS(BUTTERFLY_VERDICT_REASON)};
#undef BUTTERFLY_VERDICT_REASON
inline constexpr int kVerdictCount = static_cast<int>(std::size(kVerdictDropReasons));

#define BUTTERFLY_VERDICT_NUMBER(id, number, reason) number,
static_assert(NumberedInOrder({BUTTERFLY_FILTER_VERDICTS(BUTTERFLY_VERDICT_NUMBER)}));
#undef BUTTERFLY_VERDICT_NUMBER

inline bool IsPass(Verdict verdict) { return verdict < Verdict::kDropNoRule; }
// kKeep for a pass.
inline DropReason DropReasonOf(Verdict verdict) {
  return kVerdictDropReasons[static_cast<int>(verdict)];
}

struct FilterStageConfig {
  ConntrackConfig conntrack;
  uint32_t fragment_slots = 1024;
  uint32_t fragment_lifetime_s = 10;
  // Conntrack slots scanned for expired entries after each burst.
  uint32_t reclaim_slots_per_burst = 8;
};

inline constexpr uint16_t kMaxFilterBurst = 32;

class alignas(64) FilterStage {
 public:
  explicit FilterStage(const FilterStageConfig& config);

  Conntrack& conntrack() { return conntrack_; }
  const Conntrack& conntrack() const { return conntrack_; }
  // Packets per verdict since the start; written by the owning worker only.
  uint64_t count(Verdict verdict) const {
    return counts_[static_cast<int>(verdict)].load(std::memory_order_relaxed);
  }

  // Decides `n` packets (looked up kMaxFilterBurst at a time, prefetched) of the vnic of `slot`,
  // all travelling in `direction` (inbound: to the VM; outbound: from the VM). `now` is in the
  // conntrack's ticks. A flow packet i opens is charged to vnic owners[i] (inbound from another
  // local vnic: the sender, whose flood must use up its own quota, not the receiver's), or to the
  // slot's vnic when `owners` is null.
  void DecideBurst(const FilterSlot& slot, Direction direction, const PacketKey* const* keys,
                   uint16_t n, Verdict* out, uint64_t now, const uint32_t* owners = nullptr);
  // The same for keys stored side by side.
  void DecideBurst(const FilterSlot& slot, Direction direction, const PacketKey* keys, uint16_t n,
                   Verdict* out, uint64_t now, const uint32_t* owners = nullptr);

 private:
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
  // previous packet, TCP flags and fragment bits included, is not prepared at all: DecideBurst
  // gives it the previous packet's flow, and conntrack need not see it again.)
  void Prepare(uint32_t vnic, const PacketKey& key, const PreparedFlow* previous,
               PreparedFlow* flow);
  // The previous packet's entry when it is still `flow`'s live entry, else a lookup.
  ConntrackEntry* FindFlow(const PreparedFlow& flow, uint64_t now);
  // `owner`: the vnic a flow the packet opens is charged to (its sender's, see DecideBurst).
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

  FilterStageConfig config_;
  // Scratch of DecideBurst, a member so that no burst pays for zeroing it (Prepare writes all).
  PreparedFlow prepared_[kMaxFilterBurst];
  // The conntrack entry the packet being decided was found in or opened (or null), and that of
  // the burst's previous packet.
  ConntrackEntry* decided_entry_ = nullptr;
  ConntrackEntry* previous_entry_ = nullptr;
  Conntrack conntrack_;
  FragmentTable fragments_;
  std::atomic<uint64_t> counts_[kVerdictCount] = {};
};

}  // namespace butterfly
