// Connection tracking for one worker (never shared): a preallocated, bounded open-addressing
// table (linear probing, backward-shift deletion, so no tombstones) of flows keyed on the
// normalized 5-tuple and the vnic. No allocation, lock or system call after construction; expired
// entries are reclaimed a few slots per call. Only the owning worker touches it; the counters may
// be read from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "jit/packet_key.h"

namespace butterfly {

struct ConntrackConfig {
  uint32_t max_entries = 1u << 20;
  // Entries one vnic may hold (those its packets opened, in either direction): one VM opening
  // flows at line rate must not fill the table for the others. 0, or more than max_entries: no
  // limit but the table's.
  uint32_t max_entries_per_vnic = 0;
  // The unit of every `now` the table is given (1000: milliseconds; the TSC rate: TSC ticks).
  uint64_t ticks_per_second = 1000;
  // Idle timeouts in seconds, per protocol and state.
  uint32_t tcp_opening_s = 60;          // SYN seen, handshake not finished
  uint32_t tcp_established_s = 432000;  // five days, as AWS and Linux keep idle TCP flows
  uint32_t tcp_closing_s = 120;         // a FIN seen (and TIME_WAIT)
  uint32_t tcp_closed_s = 10;           // after a RST
  uint32_t udp_unreplied_s = 30;
  uint32_t udp_replied_s = 180;
  uint32_t icmp_s = 30;
  uint32_t other_unreplied_s = 60;
  uint32_t other_replied_s = 600;
};

// Both endpoints in a canonical order (the lower address/port pair first), so a packet and its
// reply find the same entry with one lookup.
struct FlowKey {
  IpBytes lo_addr{};
  IpBytes hi_addr{};
  uint16_t lo_port = 0;
  uint16_t hi_port = 0;
  uint32_t vnic = 0;
  uint8_t proto = 0;
  uint8_t family = 0;
  uint8_t pad[2]{};

  // Word by word: a libc memcmp call per lookup showed up in the worker's profile.
  bool operator==(const FlowKey& other) const {
    uint64_t a[5], b[5];
    uint32_t a_tail, b_tail;
    std::memcpy(a, this, 40);
    std::memcpy(b, &other, 40);
    std::memcpy(&a_tail, reinterpret_cast<const uint8_t*>(this) + 40, 4);
    std::memcpy(&b_tail, reinterpret_cast<const uint8_t*>(&other) + 40, 4);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
            (a_tail ^ b_tail)) == 0;
  }
};
static_assert(sizeof(FlowKey) == 44);

enum class FlowState : uint8_t {
  kTcpSynSent = 0,
  kTcpSynReceived = 1,  // SYN-ACK seen
  kTcpEstablished = 2,
  kTcpClosing = 3,  // FIN seen from one side or both
  kTcpClosed = 4,   // RST seen
  kOneWay = 5,      // not TCP: only the opener has sent
  kTwoWay = 6,      // not TCP: the other side replied
};
inline constexpr int kFlowStateCount = 7;

// ConntrackEntry::flags bits.
inline constexpr uint8_t kFlowOpenerIsLo = 0x01;    // the opener is FlowKey's lo endpoint
inline constexpr uint8_t kFlowOpenerFromVm = 0x02;  // opened outbound (by the VM)
inline constexpr uint8_t kFlowFinFromOpener = 0x04;
inline constexpr uint8_t kFlowFinFromResponder = 0x08;
// The responder has sent a packet of the flow (Linux's SEEN_REPLY). Local to this table: not
// exported.
inline constexpr uint8_t kFlowReplySeen = 0x10;
// TCP: the handshake completed and was answered (Linux's ASSURED). Not exported either.
inline constexpr uint8_t kFlowAssured = 0x20;
// TCP: both ends sent a SYN before any SYN-ACK (Linux's SYN_SENT2 state). Not exported.
inline constexpr uint8_t kFlowSimultaneousOpen = 0x40;
inline constexpr uint8_t kFlowExportedFlags = 0x0f;

// ConntrackEntry::tcp_endpoint bits, one byte per endpoint of a TCP flow (Linux's
// ip_ct_tcp_state flags).
inline constexpr uint8_t kTcpWindowScaleMask = 0x0f;  // the shift its window is scaled by
inline constexpr uint8_t kTcpSentWindowScale = 0x10;  // its SYN carried the option
// Its packets skip the window checks: a flow picked up mid-stream or imported, whose window
// history is unknown (Linux marks such flows "be liberal" too), or carried in IP fragments.
inline constexpr uint8_t kTcpLiberal = 0x20;
inline constexpr uint8_t kTcpMaxAckSet = 0x40;  // TcpEndpointWindow::max_ack holds an ack

// The generation tag of a policy: its generation's low 32 bits. An entry's tag is refreshed
// whenever a packet finds it under a newer policy, so an idle entry would need to live across
// exactly 2^32 policy compilations to be mistaken for current (days at 10^4 compilations a
// second, longer than any idle timeout).
inline uint32_t GenerationTag(uint64_t generation) { return static_cast<uint32_t>(generation); }

struct alignas(64) ConntrackEntry {
  FlowKey key;
  FlowState state = FlowState::kOneWay;
  uint8_t flags = 0;
  // The owner bucket the entry is charged to (Conntrack's accounting of its opener's vnic).
  uint16_t owner_bucket = 0;
  // GenerationTag of the policy that admitted the flow (0: re-check on the next packet).
  uint32_t generation = 0;
  uint8_t tcp_endpoint[2] = {};  // kTcp* bits of the lo endpoint, then the hi one
  uint8_t pad[2] = {};
  uint64_t expires = 0;  // in ticks; 0 marks a free slot

  bool opener_from_vm() const { return flags & kFlowOpenerFromVm; }
  Direction opener_direction() const {
    return opener_from_vm() ? Direction::kOutbound : Direction::kInbound;
  }
  // The opener's tuple as a PacketKey (its first packet, as far as the rules can tell).
  PacketKey OpenerKey() const;
};
static_assert(sizeof(ConntrackEntry) == 64);

// What Linux's conntrack remembers of one endpoint's TCP sequence space (ip_ct_tcp_state), kept
// beside the entry (ConntrackEntry is one cache line, full): a packet must fall in the window the
// other endpoint advertised and acknowledge only what was sent, or it is invalid.
struct TcpEndpointWindow {
  uint32_t end = 0;         // the highest sequence it sent, plus that segment's length
  uint32_t max_end = 0;     // the right edge of the window its peer allowed it
  uint32_t max_window = 0;  // the largest window it advertised; 0: nothing seen from it yet
  uint32_t max_ack = 0;     // the highest ack it sent (valid with kTcpMaxAckSet)
};
// Linux's kinds of TCP segment (get_conntrack_index), as its last-packet memory records them.
enum class TcpSegmentKind : uint8_t { kNone, kSyn, kSynAck, kFin, kAck, kRst };

struct alignas(64) TcpWindows {
  TcpEndpointWindow endpoint[2];  // the lo endpoint, then the hi one
  // The last segment let through (Linux's last_index, last_dir, last_end): a reset answering a
  // segment the table let through unchecked is judged by it.
  uint32_t last_end = 0;
  // The ack of the responder's last ACK ignored before the handshake went on: it may be a
  // challenge ACK (RFC 5961), which the opener answers with a reset at that sequence.
  uint32_t last_ack = 0;
  TcpSegmentKind last_kind = TcpSegmentKind::kNone;
  uint8_t last_from_lo = 0;
};
static_assert(sizeof(TcpWindows) == 64);
static_assert(std::is_trivially_destructible_v<ConntrackEntry> &&
              std::is_trivially_destructible_v<TcpWindows>);

// The canonical order of two endpoints (address, then port): lexicographic, so it is the same on
// every host (exports travel between hosts).
bool EndpointBefore(const IpBytes& a, uint16_t a_port, const IpBytes& b, uint16_t b_port);

// The key of `key`'s flow for `vnic`, and whether `key` travels from lo to hi.
FlowKey MakeFlowKey(const PacketKey& key, uint32_t vnic, bool* from_lo);
void MakeFlowKey(const PacketKey& key, uint32_t vnic, FlowKey* flow, bool* from_lo);
// The key an ICMP error's quoted packet belongs to (the flow the error is about).
FlowKey MakeInnerFlowKey(const PacketKey& key, uint32_t vnic);

class Conntrack {
 public:
  struct Counters {
    std::atomic<uint64_t> inserted{0};
    std::atomic<uint64_t> expired{0};  // reclaimed after their timeout
    std::atomic<uint64_t> full{0};     // inserts refused: the table was full
    // Inserts refused: the opener's vnic held its quota (max_entries_per_vnic) already.
    std::atomic<uint64_t> quota_refused{0};
  };

  explicit Conntrack(const ConntrackConfig& config);
  Conntrack(const Conntrack&) = delete;
  Conntrack& operator=(const Conntrack&) = delete;

  // Keyed with per-table random words: flow keys come from the network, and a fixed hash would
  // let a sender pile its flows onto one probe chain.
  uint64_t Hash(const FlowKey& key) const {
    uint64_t w[6];
    std::memcpy(w, &key, 40);
    uint32_t tail;
    std::memcpy(&tail, reinterpret_cast<const uint8_t*>(&key) + 40, 4);
    w[5] = tail;
    // Three independent products (NH-style), then a mix: short dependency chains.
    uint64_t h = (w[0] ^ hash_key_[0]) * (w[1] ^ hash_key_[1]) +
                 (w[2] ^ hash_key_[2]) * (w[3] ^ hash_key_[3]) +
                 (w[4] ^ hash_key_[4]) * (w[5] ^ hash_key_[5]);
    h ^= h >> 32;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
  }
  // Starts loading the slot `hash` leads to: a burst prefetches all its lookups first.
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  // The live entry of `key`, or null. Its expiry is not refreshed (Track does that).
  ConntrackEntry* Find(const FlowKey& key, uint64_t hash, uint64_t now);
  ConntrackEntry* Find(const FlowKey& key, uint64_t now) { return Find(key, Hash(key), now); }
  // Creates the entry of a flow `key` (which must not have one) opened by a packet of
  // `direction` from the lo endpoint when `from_lo`, and charges it to vnic `owner` (the vnic
  // whose packet opened it: the sending VM for a flow between two local VMs, whichever side's
  // table the entry is in). Null when the table is full or `owner` holds its quota already.
  // A TCP opener's window is tracked from its SYN; any other TCP opener picks the flow up
  // mid-stream, without window checks.
  ConntrackEntry* Insert(const FlowKey& key, const PacketKey& opener, bool from_lo,
                         Direction direction, uint64_t generation, uint64_t now, uint32_t owner);
  void Erase(ConntrackEntry* entry);
  // Updates the flow's state with a packet of it; false when the packet does not belong to the
  // flow as tracked (Linux's `invalid`: a reply before the handshake allows one, a TCP segment
  // outside the window or acknowledging data never sent): it must then be dropped. A reset
  // before any reply passes and ends the flow at once: the entry expires now (Find forgets it),
  // so the next packet is judged as a new flow, as Linux does.
  bool Track(ConntrackEntry* entry, const PacketKey& key, bool from_lo, uint64_t now);
  // The TCP windows of `entry`'s flow.
  TcpWindows& WindowsOf(const ConntrackEntry* entry) { return windows_[entry - slots_.get()]; }
  // Starts loading the windows of the slot `hash` leads to, with the slot (TCP flows only).
  void PrefetchWindows(uint64_t hash) const { __builtin_prefetch(&windows_[hash & mask_]); }
  // Frees expired entries among the next `slots` slots; returns how many it freed.
  size_t ReclaimExpired(uint64_t now, size_t slots);

  size_t size() const { return size_; }
  size_t capacity() const { return config_.max_entries; }
  size_t quota() const { return quota_; }
  // Entries charged to vnic `owner` (expired ones not yet reclaimed included).
  uint32_t OwnerEntries(uint32_t owner) const;
  // Vnics with at least one entry charged to them.
  size_t owners() const { return owners_; }
  // Recounts every slot's owner and compares with the owner buckets and their index: the
  // accounting's invariants, for tests. An error says what differs.
  Status CheckOwnerAccounting() const;
  const Counters& counters() const { return counters_; }
  uint64_t ticks_per_second() const { return config_.ticks_per_second; }

  // The vnic's flows as bytes (the API's nic_export FwData), and back into this table (a later
  // nic_add of the same VM): a versioned format, validated whole before anything is inserted.
  // Imported flows carry generation 0, so the policy in force re-checks each on its next packet,
  // and are charged to `vnic`: an import that would take it over its quota inserts nothing.
  std::string Export(uint32_t vnic, uint64_t now) const;
  Status Import(const std::string& bytes, uint32_t vnic, uint64_t now);

 private:
  uint64_t TimeoutTicks(FlowState state) const { return timeout_ticks_[static_cast<int>(state)]; }
  size_t SlotOf(const FlowKey& key) const;
  void EraseSlot(size_t slot);
  enum class WindowVerdict { kAccept, kIgnore, kInvalid };
  // Linux's tcp_in_window: checks a segment from endpoint `sender` (0: lo) against the windows
  // and, when it fits, moves them. kIgnore: let through, but it changes nothing (an ack too old).
  WindowVerdict CheckWindow(ConntrackEntry* entry, const PacketKey& key, int sender,
                            bool from_opener, FlowState state);
  // Starts tracking endpoint `sender`'s window from its SYN (or SYN-ACK).
  void StartWindow(ConntrackEntry* entry, const PacketKey& key, int sender);
  // Forgets both endpoints' windows (a new flow on the same ports).
  void ResetWindows(ConntrackEntry* entry);
  enum class ResetVerdict { kCheckWindow, kSkipWindow, kInvalid };
  // Linux's checks of a RST before its window check. May leave `*state` as the flow's (a reset
  // that only provokes a challenge ACK).
  ResetVerdict CheckReset(ConntrackEntry* entry, const PacketKey& key, bool from_lo,
                          FlowState* state);

  // Owner accounting: a fixed array of buckets {vnic, live entries}, found by vnic through a
  // small open-addressing index (vnic indexes are never reused, so they cannot index an array).
  static constexpr uint32_t kNoBucket = UINT32_MAX;
  struct OwnerBucket {
    uint32_t vnic = 0;
    uint32_t entries = 0;  // 0: free
  };
  size_t OwnerHome(uint32_t vnic) const {
    return static_cast<size_t>((uint64_t{vnic} * 0x9e3779b97f4a7c15ULL) >> 32) & owner_mask_;
  }
  // The index slot of `vnic`'s bucket, or of the empty slot ending its probe chain.
  size_t OwnerSlot(uint32_t vnic) const;
  // `vnic`'s bucket, taken from the free ones (with 0 entries) when it has none; kNoBucket when
  // none is free.
  uint32_t AcquireBucket(uint32_t vnic);
  // One entry of `bucket` gone; frees the bucket with its last entry.
  void Release(uint16_t bucket);
  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  ConntrackConfig config_;
  uint64_t hash_key_[6];
  uint64_t timeout_ticks_[kFlowStateCount];
  // Both tables are trivially destructible: freeing their memory is all it takes.
  struct Free {
    void operator()(void* table) const { std::free(table); }
  };
  template <typename Slot>
  using Table = std::unique_ptr<Slot[], Free>;
  // Huge pages when the kernel allows: one TLB entry covers 32768 entries, not 64.
  template <typename Slot>
  static Table<Slot> AllocateTable(size_t count);
  Table<ConntrackEntry> slots_;
  Table<TcpWindows> windows_;  // one per slot, moved with its entry
  size_t slot_count_ = 0;
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t reclaim_cursor_ = 0;
  size_t quota_ = 0;
  std::vector<OwnerBucket> buckets_;
  std::vector<uint32_t> free_buckets_;  // a stack of bucket ids
  std::vector<uint32_t> owner_index_;   // bucket id + 1; 0: empty
  size_t owner_mask_ = 0;
  size_t owners_ = 0;
  Counters counters_;
};

}  // namespace butterfly
