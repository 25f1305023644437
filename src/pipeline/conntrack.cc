#include "pipeline/conntrack.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <random>

#include "pipeline/packet_parser.h"

namespace butterfly {
namespace {

bool IsIcmpFamily(uint8_t family, uint8_t proto) {
  return proto == (family == 4 ? kProtoIcmp : kProtoIcmpv6);
}

void FlowPorts(uint8_t family, uint8_t proto, uint16_t src_port, uint16_t dst_port,
               uint16_t icmp_id, uint8_t icmp_type, uint16_t* a, uint16_t* b) {
  if (proto == kProtoTcp || proto == kProtoUdp) {
    *a = src_port;
    *b = dst_port;
  } else if (IsIcmpFamily(family, proto) && IsIcmpEcho(family, icmp_type)) {
    // The requester's end holds the id, the responder's 0: a reply matches its request, and a
    // request the other way with the same id is a flow of its own (Linux keys on the type too).
    bool request = icmp_type == (family == 4 ? 8 : 128);
    *a = request ? icmp_id : 0;
    *b = request ? 0 : icmp_id;
  } else {
    *a = *b = 0;
  }
}

// Writes `key` in whole words: Hash() reads it back as words right away, and a word load from
// several narrower stores cannot be forwarded from the store buffer (a stall of ~15 cycles).
void Normalize(const IpBytes& src, const IpBytes& dst, uint16_t src_port, uint16_t dst_port,
               uint8_t proto, uint8_t family, uint32_t vnic, FlowKey* key, bool* from_lo) {
  *from_lo = !EndpointBefore(dst, dst_port, src, src_port);
  const IpBytes& lo = *from_lo ? src : dst;
  const IpBytes& hi = *from_lo ? dst : src;
  uint64_t lo_port = *from_lo ? src_port : dst_port;
  uint64_t hi_port = *from_lo ? dst_port : src_port;
  std::memcpy(key->lo_addr.data(), lo.data(), 16);
  std::memcpy(key->hi_addr.data(), hi.data(), 16);
  uint64_t ports_and_vnic = lo_port | hi_port << 16 | uint64_t{vnic} << 32;
  std::memcpy(&key->lo_port, &ports_and_vnic, 8);
  uint32_t tail = uint32_t{proto} | uint32_t{family} << 8;
  std::memcpy(&key->proto, &tail, 4);
}

void PutBe(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(value >> (8 * i)));
}

uint64_t GetBe(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | p[i];
  return value;
}

constexpr char kMagic[4] = {'B', 'F', 'C', 'T'};
constexpr uint16_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 4 + 2 + 2 + 4;
constexpr size_t kRecordBytes = 4 + 16 + 16 + 2 + 2 + 4;

// Sequence-space order, modulo 2^32 (RFC 793's comparisons, Linux's before() and after()).
bool SeqBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool SeqAfter(uint32_t a, uint32_t b) { return SeqBefore(b, a); }

// The sequence number after the segment: SYN and FIN take one each.
uint32_t SegmentEnd(const PacketKey& key) {
  return key.tcp_seq + key.tcp_payload + (key.tcp_flags & kTcpSyn ? 1 : 0) +
         (key.tcp_flags & kTcpFin ? 1 : 0);
}

TcpSegmentKind KindOf(uint8_t flags) {
  if (flags & kTcpRst) return TcpSegmentKind::kRst;
  if (flags & kTcpSyn) return flags & kTcpAck ? TcpSegmentKind::kSynAck : TcpSegmentKind::kSyn;
  if (flags & kTcpFin) return TcpSegmentKind::kFin;
  if (flags & kTcpAck) return TcpSegmentKind::kAck;
  return TcpSegmentKind::kNone;
}

// Acks this far below what the peer sent still count (Linux's MAXACKWINCONST): a delayed ack.
constexpr uint32_t kMinAckWindow = 66000;

}  // namespace

bool EndpointBefore(const IpBytes& a, uint16_t a_port, const IpBytes& b, uint16_t b_port) {
  int order = CompareAddresses(a, b);
  return order != 0 ? order < 0 : a_port < b_port;
}

PacketKey ConntrackEntry::OpenerKey() const {
  bool opener_is_lo = flags & kFlowOpenerIsLo;
  PacketKey opener;
  opener.family = key.family;
  opener.proto = key.proto;
  opener.src = opener_is_lo ? key.lo_addr : key.hi_addr;
  opener.dst = opener_is_lo ? key.hi_addr : key.lo_addr;
  if (key.proto == kProtoTcp || key.proto == kProtoUdp) {
    opener.src_port = opener_is_lo ? key.lo_port : key.hi_port;
    opener.dst_port = opener_is_lo ? key.hi_port : key.lo_port;
  }
  return opener;
}

void MakeFlowKey(const PacketKey& key, uint32_t vnic, FlowKey* flow, bool* from_lo) {
  uint16_t a, b;
  FlowPorts(key.family, key.proto, key.src_port, key.dst_port, key.icmp_id, key.icmp_type, &a, &b);
  Normalize(key.src, key.dst, a, b, key.proto, key.family, vnic, flow, from_lo);
}

FlowKey MakeFlowKey(const PacketKey& key, uint32_t vnic, bool* from_lo) {
  FlowKey flow;
  MakeFlowKey(key, vnic, &flow, from_lo);
  return flow;
}

FlowKey MakeInnerFlowKey(const PacketKey& key, uint32_t vnic) {
  const InnerTuple& inner = key.inner;
  FlowKey flow;
  bool from_lo;
  // The parser put a quoted echo's id on its requester's side and left other ICMP at 0, as
  // FlowPorts does.
  Normalize(inner.src, inner.dst, inner.src_port, inner.dst_port, inner.proto, key.family, vnic,
            &flow, &from_lo);
  return flow;
}

template <typename Slot>
Conntrack::Table<Slot> Conntrack::AllocateTable(size_t count) {
  size_t bytes = count * sizeof(Slot);
  constexpr size_t kHugePage = 2 << 20;
  size_t alignment = bytes >= kHugePage ? kHugePage : alignof(Slot);
  bytes = (bytes + alignment - 1) / alignment * alignment;
  auto* memory = static_cast<Slot*>(std::aligned_alloc(alignment, bytes));
  if (!memory) throw std::bad_alloc();
  if (alignment == kHugePage) madvise(memory, bytes, MADV_HUGEPAGE);  // a hint: may be refused
  std::uninitialized_default_construct_n(memory, count);
  return Table<Slot>(memory);
}

Conntrack::Conntrack(const ConntrackConfig& config) : config_(config) {
  std::random_device entropy;
  for (uint64_t& word : hash_key_) word = uint64_t{entropy()} << 32 | entropy();
  config_.max_entries = std::max<uint32_t>(config_.max_entries, 1);
  config_.ticks_per_second = std::max<uint64_t>(config_.ticks_per_second, 1);
  auto ticks = [this](uint32_t seconds) {
    return std::max<uint64_t>(uint64_t{seconds} * config_.ticks_per_second, 1);
  };
  timeout_ticks_[static_cast<int>(FlowState::kTcpSynSent)] = ticks(config_.tcp_opening_s);
  timeout_ticks_[static_cast<int>(FlowState::kTcpSynReceived)] = ticks(config_.tcp_opening_s);
  timeout_ticks_[static_cast<int>(FlowState::kTcpEstablished)] = ticks(config_.tcp_established_s);
  timeout_ticks_[static_cast<int>(FlowState::kTcpClosing)] = ticks(config_.tcp_closing_s);
  timeout_ticks_[static_cast<int>(FlowState::kTcpClosed)] = ticks(config_.tcp_closed_s);
  timeout_ticks_[static_cast<int>(FlowState::kOneWay)] = ticks(config_.other_unreplied_s);
  timeout_ticks_[static_cast<int>(FlowState::kTwoWay)] = ticks(config_.other_replied_s);
  // At most 80% full: linear probing stays short.
  slot_count_ = std::bit_ceil(size_t{config_.max_entries} * 5 / 4 + 1);
  slots_ = AllocateTable<ConntrackEntry>(slot_count_);
  windows_ = AllocateTable<TcpWindows>(slot_count_);
  mask_ = slot_count_ - 1;
  quota_ = config_.max_entries_per_vnic == 0
               ? config_.max_entries
               : std::min(config_.max_entries_per_vnic, config_.max_entries);
  // A bucket holds at least one entry: with as many buckets as entries, none ever lacks. Bucket
  // ids are 16 bits (an entry's owner_bucket).
  size_t bucket_count = std::min<size_t>(config_.max_entries, size_t{1} << 16);
  buckets_.assign(bucket_count, OwnerBucket{});
  free_buckets_.resize(bucket_count);
  for (size_t i = 0; i < bucket_count; ++i) {
    free_buckets_[i] = static_cast<uint32_t>(bucket_count - 1 - i);  // bucket 0 on top
  }
  // At most half full: the probe on insert and erase stays within a line or two.
  owner_index_.assign(std::bit_ceil(bucket_count * 2), 0);
  owner_mask_ = owner_index_.size() - 1;
}

size_t Conntrack::OwnerSlot(uint32_t vnic) const {
  size_t i = OwnerHome(vnic);
  while (owner_index_[i] != 0 && buckets_[owner_index_[i] - 1].vnic != vnic) {
    i = (i + 1) & owner_mask_;
  }
  return i;
}

uint32_t Conntrack::OwnerEntries(uint32_t owner) const {
  uint32_t id = owner_index_[OwnerSlot(owner)];
  return id == 0 ? 0 : buckets_[id - 1].entries;
}

uint32_t Conntrack::AcquireBucket(uint32_t vnic) {
  size_t slot = OwnerSlot(vnic);
  if (owner_index_[slot] != 0) return owner_index_[slot] - 1;
  if (free_buckets_.empty()) return kNoBucket;
  uint32_t id = free_buckets_.back();
  free_buckets_.pop_back();  // never reallocates: the vector only shrinks and regrows in place
  buckets_[id] = {vnic, 0};
  owner_index_[slot] = id + 1;
  ++owners_;
  return id;
}

void Conntrack::Release(uint16_t bucket) {
  OwnerBucket& owner = buckets_[bucket];
  if (--owner.entries != 0) return;
  // The bucket's last entry: take it out of the index (backward shift, as the table does).
  size_t hole = OwnerSlot(owner.vnic);
  for (size_t j = (hole + 1) & owner_mask_; owner_index_[j] != 0; j = (j + 1) & owner_mask_) {
    size_t home = OwnerHome(buckets_[owner_index_[j] - 1].vnic);
    bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      owner_index_[hole] = owner_index_[j];
      hole = j;
    }
  }
  owner_index_[hole] = 0;
  free_buckets_.push_back(bucket);
  --owners_;
}

Status Conntrack::CheckOwnerAccounting() const {
  std::vector<uint32_t> counted(buckets_.size(), 0);
  for (size_t i = 0; i < slot_count_; ++i) {
    if (slots_[i].expires == 0) continue;
    uint16_t bucket = slots_[i].owner_bucket;
    if (bucket >= buckets_.size()) return Fail("slot " + std::to_string(i) + ": bad bucket");
    ++counted[bucket];
  }
  size_t in_use = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    if (counted[b] != buckets_[b].entries) {
      return Fail("bucket " + std::to_string(b) + " of vnic " + std::to_string(buckets_[b].vnic) +
                  ": " + std::to_string(buckets_[b].entries) + " entries counted, " +
                  std::to_string(counted[b]) + " in the table");
    }
    if (buckets_[b].entries == 0) continue;
    ++in_use;
    uint32_t id = owner_index_[OwnerSlot(buckets_[b].vnic)];
    if (id != b + 1) return Fail("bucket " + std::to_string(b) + " not found by its vnic");
  }
  size_t indexed = 0;
  for (uint32_t id : owner_index_) {
    if (id == 0) continue;
    ++indexed;
    if (buckets_[id - 1].entries == 0) return Fail("a free bucket is still indexed");
  }
  if (in_use != owners_ || indexed != owners_ ||
      free_buckets_.size() + owners_ != buckets_.size()) {
    return Fail("buckets in use: " + std::to_string(in_use) + ", indexed " +
                std::to_string(indexed) + ", owners " + std::to_string(owners_) + ", free " +
                std::to_string(free_buckets_.size()) + " of " + std::to_string(buckets_.size()));
  }
  return Ok();
}

size_t Conntrack::SlotOf(const FlowKey& key) const { return Hash(key) & mask_; }

ConntrackEntry* Conntrack::Find(const FlowKey& key, uint64_t hash, uint64_t now) {
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    ConntrackEntry& entry = slots_[i];
    if (entry.expires == 0) return nullptr;
    if (entry.key == key) {
      if (entry.expires > now) return &entry;
      Bump(counters_.expired);
      EraseSlot(i);
      return nullptr;
    }
  }
}

ConntrackEntry* Conntrack::Insert(const FlowKey& key, const PacketKey& opener, bool from_lo,
                                  Direction direction, uint64_t generation, uint64_t now,
                                  uint32_t owner) {
  if (size_ >= config_.max_entries) {
    ReclaimExpired(now, 64);
    if (size_ >= config_.max_entries) {
      Bump(counters_.full);
      return nullptr;
    }
  }
  uint32_t bucket = AcquireBucket(owner);
  if (bucket != kNoBucket && buckets_[bucket].entries >= quota_) {
    // Expired entries of this owner may be what holds it at its quota. (Reclaiming may free the
    // bucket itself: look it up again.)
    ReclaimExpired(now, 64);
    bucket = AcquireBucket(owner);
    if (bucket != kNoBucket && buckets_[bucket].entries >= quota_) {
      Bump(counters_.quota_refused);
      return nullptr;
    }
  }
  if (bucket == kNoBucket) {
    // More owners than buckets (only past 65536 vnics on one worker): fail closed.
    Bump(counters_.full);
    return nullptr;
  }
  // Charged before an expired entry overwritten below is released: were it the bucket's last
  // one, the bucket would be freed under us.
  ++buckets_[bucket].entries;
  size_t i = SlotOf(key);
  // The key has no live entry (the caller looked): an expired one on the probe path may be
  // overwritten in place, which keeps the chain intact.
  while (slots_[i].expires != 0 && slots_[i].expires > now) i = (i + 1) & mask_;
  ConntrackEntry& entry = slots_[i];
  if (entry.expires == 0) {
    ++size_;
  } else {
    Bump(counters_.expired);
    Release(entry.owner_bucket);
  }
  entry.owner_bucket = static_cast<uint16_t>(bucket);
  entry.key = key;
  entry.generation = GenerationTag(generation);
  entry.flags = static_cast<uint8_t>((from_lo ? kFlowOpenerIsLo : 0) |
                                     (direction == Direction::kOutbound ? kFlowOpenerFromVm : 0));
  if (key.proto == kProtoTcp) {
    uint8_t f = opener.tcp_flags;
    ResetWindows(&entry);
    int sender = from_lo ? 0 : 1;
    if (opener.is_fragment()) entry.tcp_endpoint[0] = entry.tcp_endpoint[1] = kTcpLiberal;
    if ((f & (kTcpSyn | kTcpAck)) == kTcpSyn) {
      entry.state = FlowState::kTcpSynSent;
      StartWindow(&entry, opener, sender);
    } else {
      // Picked up mid-stream (a restart, an import, a flow the rules allow both ways): its
      // windows are unknown, so both endpoints go unchecked; the window check below takes the
      // opener's word for its own.
      entry.state = FlowState::kTcpEstablished;
      if (f & kTcpFin) {
        entry.state = FlowState::kTcpClosing;
        entry.flags |= kFlowFinFromOpener;
      }
      entry.tcp_endpoint[0] = entry.tcp_endpoint[1] = kTcpLiberal;
    }
    // The opener goes through the window check too, as Linux's first packet does: it sets
    // what the other endpoint may acknowledge.
    CheckWindow(&entry, opener, sender, /*from_opener=*/true, entry.state);
  } else {
    entry.state = FlowState::kOneWay;
  }
  entry.expires = now + TimeoutTicks(entry.state);
  if (IsIcmpFamily(key.family, key.proto))
    entry.expires = now + config_.icmp_s * config_.ticks_per_second;
  if (key.proto == kProtoUdp)
    entry.expires = now + config_.udp_unreplied_s * config_.ticks_per_second;
  Bump(counters_.inserted);
  return &entry;
}

void Conntrack::Erase(ConntrackEntry* entry) { EraseSlot(entry - slots_.get()); }

void Conntrack::EraseSlot(size_t hole) {
  uint16_t owner = slots_[hole].owner_bucket;
  // Backward shift: pull later entries of the chain into the hole when their home slot allows.
  for (size_t j = (hole + 1) & mask_; slots_[j].expires != 0; j = (j + 1) & mask_) {
    size_t home = SlotOf(slots_[j].key);
    bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      slots_[hole] = slots_[j];
      windows_[hole] = windows_[j];
      hole = j;
    }
  }
  slots_[hole].expires = 0;
  --size_;
  Release(owner);
}

bool Conntrack::Track(ConntrackEntry* entry, const PacketKey& key, bool from_lo, uint64_t now) {
  bool from_opener = from_lo == static_cast<bool>(entry->flags & kFlowOpenerIsLo);
  if (entry->key.proto != kProtoTcp) {
    if (!from_opener) entry->state = FlowState::kTwoWay;
    uint64_t seconds;
    if (IsIcmpFamily(entry->key.family, entry->key.proto)) {
      seconds = config_.icmp_s;
    } else if (entry->key.proto == kProtoUdp) {
      seconds =
          entry->state == FlowState::kTwoWay ? config_.udp_replied_s : config_.udp_unreplied_s;
    } else {
      seconds =
          entry->state == FlowState::kTwoWay ? config_.other_replied_s : config_.other_unreplied_s;
    }
    entry->expires = now + std::max<uint64_t>(seconds * config_.ticks_per_second, 1);
    return true;
  }
  uint8_t f = key.tcp_flags;
  bool syn_only = (f & (kTcpSyn | kTcpAck)) == kTcpSyn;
  int sender = from_lo ? 0 : 1;
  TcpWindows& windows = WindowsOf(entry);
  FlowState state = entry->state;
  uint8_t flags = entry->flags;
  bool reopen = false;   // a new connection on the ports of a closed one
  bool ignored = false;  // Linux's "ignored" transitions: let through, nothing moves
  bool check_window = true;
  bool reply_seen_before = flags & kFlowReplySeen;
  if (!from_opener) flags |= kFlowReplySeen;
  if (key.is_fragment()) {
    // A fragment's length is not its segment's: the VM reassembles, the windows go unchecked.
    entry->tcp_endpoint[0] |= kTcpLiberal;
    entry->tcp_endpoint[1] |= kTcpLiberal;
  }
  if (f & kTcpRst) {
    state = FlowState::kTcpClosed;
    switch (CheckReset(entry, key, from_lo, &state)) {
      case ResetVerdict::kInvalid:
        return false;
      case ResetVerdict::kSkipWindow:
        check_window = false;
        break;
      case ResetVerdict::kCheckWindow:
        break;
    }
  } else {
    switch (entry->state) {
      case FlowState::kTcpSynSent:
        if (!from_opener) {
          // Until the handshake goes on, a reply moves it only as a SYN-ACK (or a SYN: both
          // opened). A bare ACK is ignored: it passes and changes nothing (the responder may
          // know better, and will reset a stray one); a FIN is refused.
          if (!(f & kTcpSyn)) {
            if (!(f & kTcpAck) || (f & kTcpFin)) return false;
            ignored = true;
          } else if (f & kTcpAck) {
            state = FlowState::kTcpSynReceived;
          } else {
            flags |= kFlowSimultaneousOpen;
          }
        } else if ((flags & kFlowSimultaneousOpen) && (f & kTcpSyn) && (f & kTcpAck)) {
          state = FlowState::kTcpSynReceived;  // both opened: the opener answers the peer's SYN
        } else if (!syn_only) {
          // The opener has nothing to send but its SYN again before an answer (Linux: invalid).
          return false;
        }
        break;
      case FlowState::kTcpSynReceived:
        // The opener's ACK completes the handshake; after a simultaneous open, either's does.
        if ((from_opener || (flags & kFlowSimultaneousOpen)) && (f & kTcpAck) && !(f & kTcpSyn)) {
          state = FlowState::kTcpEstablished;
        }
        break;
      case FlowState::kTcpEstablished:
      case FlowState::kTcpClosing:
        if (from_opener && syn_only && entry->state == FlowState::kTcpClosing &&
            (flags & kFlowFinFromResponder) && (flags & kFlowFinFromOpener)) {
          reopen = true;  // the port pair is reused for a new connection after a full close
          break;
        }
        // Once open, the responder's SYN and the opener's SYN-ACK belong to no handshake of
        // this flow (Linux: invalid); the opener's SYN and the responder's SYN-ACK are ignored
        // (the two ends may be in sync where the table is not).
        if ((f & kTcpSyn) && from_opener == static_cast<bool>(f & kTcpAck)) return false;
        if (f & kTcpSyn) {
          ignored = true;
        } else if (f & kTcpFin) {
          flags |= from_opener ? kFlowFinFromOpener : kFlowFinFromResponder;
          state = FlowState::kTcpClosing;
        }
        break;
      case FlowState::kTcpClosed:
        if (from_opener && syn_only) {
          reopen = true;
          break;
        }
        if ((f & kTcpSyn) && from_opener == static_cast<bool>(f & kTcpAck)) return false;
        // Stragglers of either side are judged by the windows until the entry ages out (as
        // Linux's CLOSE state).
        break;
      case FlowState::kOneWay:
      case FlowState::kTwoWay:
        break;
    }
  }
  if (ignored) {
    windows.last_kind = KindOf(f);
    windows.last_from_lo = from_lo;
    windows.last_end = SegmentEnd(key);
    if (entry->state == FlowState::kTcpSynSent && !(entry->flags & kFlowSimultaneousOpen) &&
        windows.last_kind == TcpSegmentKind::kAck) {
      windows.last_ack = key.tcp_ack;
    }
    entry->flags = flags;
    return true;
  }
  if (reopen) {
    // Linux forgets the closed flow and tracks the SYN as a new one's first packet.
    ResetWindows(entry);
    if (key.is_fragment()) entry->tcp_endpoint[0] = entry->tcp_endpoint[1] = kTcpLiberal;
    StartWindow(entry, key, sender);
    entry->state = FlowState::kTcpSynSent;
    entry->flags = flags & ~(kFlowFinFromOpener | kFlowFinFromResponder | kFlowReplySeen |
                             kFlowAssured | kFlowSimultaneousOpen);
    CheckWindow(entry, key, sender, /*from_opener=*/true, FlowState::kTcpSynSent);
    windows.last_kind = TcpSegmentKind::kSyn;
    windows.last_from_lo = from_lo;
    entry->expires = now + TimeoutTicks(entry->state);
    return true;
  }
  if (check_window) {
    switch (CheckWindow(entry, key, sender, from_opener, entry->state)) {
      case WindowVerdict::kInvalid:
        return false;
      case WindowVerdict::kIgnore:
        return true;  // let through, but it moves nothing, not even the timeout
      case WindowVerdict::kAccept:
        break;
    }
  }
  windows.last_kind = KindOf(f);
  windows.last_from_lo = from_lo;
  if (reply_seen_before &&
      (entry->state == FlowState::kTcpSynReceived || entry->state == FlowState::kTcpEstablished) &&
      state == FlowState::kTcpEstablished) {
    flags |= kFlowAssured;
  }
  entry->state = state;
  entry->flags = flags;
  entry->expires = now + TimeoutTicks(entry->state);
  if ((f & kTcpRst) && !reply_seen_before) {
    // A reset before any reply ends the flow at once (Linux deletes it): the next packet is
    // judged as a new flow's.
    entry->expires = std::max<uint64_t>(now, 1);
  }
  return true;
}

void Conntrack::ResetWindows(ConntrackEntry* entry) {
  WindowsOf(entry) = TcpWindows{};
  entry->tcp_endpoint[0] = entry->tcp_endpoint[1] = 0;
}

void Conntrack::StartWindow(ConntrackEntry* entry, const PacketKey& key, int sender) {
  TcpEndpointWindow& window = WindowsOf(entry).endpoint[sender];
  window = TcpEndpointWindow{};
  window.end = window.max_end = SegmentEnd(key);
  window.max_window = key.tcp_window ? key.tcp_window : 1;
  uint8_t& mine = entry->tcp_endpoint[sender];
  uint8_t& peers = entry->tcp_endpoint[1 - sender];
  // What it sent before this SYN is forgotten; an unchecked flow stays unchecked.
  mine &= kTcpLiberal;
  if (key.tcp_window_scale_plus_one) {
    mine |= static_cast<uint8_t>(kTcpSentWindowScale | (key.tcp_window_scale_plus_one - 1));
  }
  // RFC 7323: windows are scaled only when both SYNs offered it, which the second SYN tells.
  bool peer_known = WindowsOf(entry).endpoint[1 - sender].max_window != 0;
  if (peer_known && (!(mine & kTcpSentWindowScale) || !(peers & kTcpSentWindowScale))) {
    mine &= ~kTcpWindowScaleMask;
    peers &= ~kTcpWindowScaleMask;
  }
}

Conntrack::ResetVerdict Conntrack::CheckReset(ConntrackEntry* entry, const PacketKey& key,
                                              bool from_lo, FlowState* state) {
  // Linux's checks of a reset, in its order. A flow already closing may be reused by then: its
  // windows say nothing.
  if (entry->state == FlowState::kTcpClosing || entry->state == FlowState::kTcpClosed) {
    return ResetVerdict::kSkipWindow;
  }
  TcpWindows& windows = WindowsOf(entry);
  int receiver = from_lo ? 1 : 0;
  bool established = entry->state == FlowState::kTcpEstablished && (entry->flags & kFlowAssured);
  if ((entry->tcp_endpoint[receiver] & kTcpMaxAckSet) &&
      windows.last_kind != TcpSegmentKind::kSyn) {
    // A reset must not fall below what its receiver acknowledged (a blind reset guessing in
    // the past); one in an open flow that is not exactly at that point leaves the flow open
    // (the receiver answers with a challenge ACK, RFC 5961).
    uint32_t acked = windows.endpoint[receiver].max_ack;
    uint32_t seq = key.tcp_seq;
    if (seq == 0 && !established) return ResetVerdict::kCheckWindow;
    if (SeqBefore(seq, acked)) return ResetVerdict::kInvalid;
    if (!established || seq == acked) return ResetVerdict::kCheckWindow;
    if (windows.last_kind == TcpSegmentKind::kAck && windows.last_from_lo == from_lo &&
        seq == windows.last_end) {
      return ResetVerdict::kCheckWindow;  // the end of a train of its own segments
    }
    *state = entry->state;
  }
  // A reset answering a segment let through unchecked (a SYN in a flow already answered, or an
  // ACK of a half-open one): its ack is that segment's end, and the windows cannot judge it.
  bool reply_seen = entry->flags & kFlowReplySeen;
  if (((reply_seen && windows.last_kind == TcpSegmentKind::kSyn) ||
       (!(entry->flags & kFlowAssured) && windows.last_kind == TcpSegmentKind::kAck)) &&
      key.tcp_ack == windows.last_end) {
    return ResetVerdict::kSkipWindow;
  }
  // The opener's reset answering an ACK the responder sent before the handshake went on (a
  // challenge ACK to its SYN): its sequence is what that ACK acknowledged.
  bool opener_is_lo = entry->flags & kFlowOpenerIsLo;
  if (entry->state == FlowState::kTcpSynSent && !(entry->flags & kFlowSimultaneousOpen) &&
      windows.last_kind == TcpSegmentKind::kAck && windows.last_from_lo != opener_is_lo &&
      key.tcp_seq == windows.last_ack) {
    return ResetVerdict::kSkipWindow;
  }
  return ResetVerdict::kCheckWindow;
}

Conntrack::WindowVerdict Conntrack::CheckWindow(ConntrackEntry* entry, const PacketKey& key,
                                                int sender, bool from_opener, FlowState state) {
  // Linux's tcp_in_window (without SACK blocks, which only widen what an ack may cover).
  TcpWindows& windows = WindowsOf(entry);
  TcpEndpointWindow& me = windows.endpoint[sender];
  TcpEndpointWindow& peer = windows.endpoint[1 - sender];
  uint8_t f = key.tcp_flags;
  uint32_t seq = key.tcp_seq;
  uint32_t ack = key.tcp_ack;
  uint32_t end = SegmentEnd(key);
  uint32_t window = key.tcp_window;
  auto scale = [entry, sender] { return entry->tcp_endpoint[sender] & kTcpWindowScaleMask; };
  // Linux's SYN_SENT2 (both ends opened) is not SYN_SENT: there, neither a new SYN nor a reset
  // of sequence 0 has the allowances below.
  bool syn_sent = state == FlowState::kTcpSynSent && !(entry->flags & kFlowSimultaneousOpen);
  if (me.max_window == 0) {
    if (f & kTcpSyn) {
      StartWindow(entry, key, sender);
      if (!(f & kTcpAck)) return WindowVerdict::kAccept;  // both ends opened at once
    } else {
      // The first segment seen from this endpoint, mid-stream: take its word for it.
      me.end = end;
      uint32_t scaled = window << scale();
      me.max_window = scaled ? scaled : 1;
      me.max_end = end + me.max_window;
      if (peer.max_window == 0) {
        peer.end = peer.max_end = ack;
      } else if (ack == peer.end + 1) {
        ++peer.end;  // likely the answer to a keepalive
      }
    }
  } else if ((f & kTcpSyn) && SeqAfter(end, me.end) &&
             (syn_sent || state == FlowState::kTcpSynReceived)) {
    // A SYN (or SYN-ACK) sent again with a new initial sequence: start over (RFC 793 lets a
    // restarted TCP do so).
    StartWindow(entry, key, sender);
    if (!from_opener && !(f & kTcpAck)) return WindowVerdict::kAccept;
  }
  bool liberal = entry->tcp_endpoint[sender] & kTcpLiberal;
  // No ACK (or a reset with a zero one, from broken stacks): as if it acked all it could.
  if (!(f & kTcpAck) || ((f & kTcpRst) && ack == 0)) ack = peer.end;
  if ((f & kTcpRst) && seq == 0 && syn_sent) seq = end = me.end;
  uint32_t ack_window = std::max(me.max_window, kMinAckWindow);
  if (!SeqBefore(seq, me.max_end + 1)) {
    // Past the right edge of the window the peer allowed.
    uint32_t overshot = end - me.max_end + 1;
    bool in_peer_window = peer.max_window && SeqAfter(end, me.end - peer.max_window - 1);
    if (in_peer_window && SeqAfter(ack, peer.end - ack_window - 1) && overshot <= peer.max_window &&
        SeqBefore(ack, peer.end + 1)) {
      // A TCP sending a little more than allowed: let the peer's ack of it be valid.
      me.end = end;
      return WindowVerdict::kAccept;
    }
    return liberal ? WindowVerdict::kAccept : WindowVerdict::kInvalid;
  }
  // Acknowledges data the peer never sent.
  if (!SeqBefore(ack, peer.end + 1)) {
    return liberal ? WindowVerdict::kAccept : WindowVerdict::kInvalid;
  }
  bool in_peer_window = !peer.max_window || SeqAfter(end, me.end - peer.max_window - 1);
  if (in_peer_window && SeqAfter(ack, peer.end - ack_window - 1)) {
    if (!(f & kTcpSyn)) window <<= scale();
    if (me.max_window < window) me.max_window = window;
    if (SeqAfter(end, me.end)) me.end = end;
    if (f & kTcpAck) {
      if (!(entry->tcp_endpoint[sender] & kTcpMaxAckSet)) {
        me.max_ack = ack;
        entry->tcp_endpoint[sender] |= kTcpMaxAckSet;
      } else if (SeqAfter(ack, me.max_ack)) {
        me.max_ack = ack;
      }
    }
    if (peer.max_window != 0 && SeqAfter(end, me.max_end)) peer.max_window += end - me.max_end;
    if (SeqAfter(ack + window, peer.max_end - 1)) {
      peer.max_end = ack + window;
      if (window == 0) ++peer.max_end;
    }
    if (KindOf(f) == TcpSegmentKind::kAck) windows.last_end = end;
    return WindowVerdict::kAccept;
  }
  // Before the left edge (data the peer acknowledged long ago), or an ack older than the ack
  // window: a very late duplicate, passed but ignored (Linux since 6.1: the receiver drops it).
  return liberal ? WindowVerdict::kAccept : WindowVerdict::kIgnore;
}

size_t Conntrack::ReclaimExpired(uint64_t now, size_t slots) {
  size_t freed = 0;
  for (size_t visited = 0; visited < slots; ++visited) {
    ConntrackEntry& entry = slots_[reclaim_cursor_];
    if (entry.expires != 0 && entry.expires <= now) {
      // A later entry may shift into this slot: look at it again on the next step.
      EraseSlot(reclaim_cursor_);
      Bump(counters_.expired);
      ++freed;
    } else {
      reclaim_cursor_ = (reclaim_cursor_ + 1) & mask_;
    }
  }
  // The next call's slots, fetched now: a table of millions of slots is not in any cache, and
  // waiting for each slot's line cost this scan ~250 cycles per burst in the worker's profile.
  for (size_t ahead = 0; ahead < slots; ++ahead) {
    __builtin_prefetch(&slots_[(reclaim_cursor_ + ahead) & mask_]);
  }
  return freed;
}

std::string Conntrack::Export(uint32_t vnic, uint64_t now) const {
  std::string body;
  uint32_t count = 0;
  for (size_t i = 0; i < slot_count_; ++i) {
    const ConntrackEntry& entry = slots_[i];
    if (entry.expires <= now || entry.key.vnic != vnic) continue;
    ++count;
    body.push_back(static_cast<char>(entry.key.family));
    body.push_back(static_cast<char>(entry.key.proto));
    body.push_back(static_cast<char>(entry.state));
    body.push_back(static_cast<char>(entry.flags & kFlowExportedFlags));
    body.append(reinterpret_cast<const char*>(entry.key.lo_addr.data()), 16);
    body.append(reinterpret_cast<const char*>(entry.key.hi_addr.data()), 16);
    PutBe(&body, entry.key.lo_port, 2);
    PutBe(&body, entry.key.hi_port, 2);
    uint64_t remaining_ms = (entry.expires - now) * 1000 / config_.ticks_per_second;
    PutBe(&body, std::min<uint64_t>(remaining_ms, UINT32_MAX), 4);
  }
  std::string out(kMagic, 4);
  PutBe(&out, kFormatVersion, 2);
  PutBe(&out, kRecordBytes, 2);
  PutBe(&out, count, 4);
  return out + body;
}

Status Conntrack::Import(const std::string& bytes, uint32_t vnic, uint64_t now) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < kHeaderBytes || std::memcmp(p, kMagic, 4) != 0) {
    return Fail("conntrack import: not a Butterfly conntrack export (bad magic or too short)");
  }
  if (GetBe(p + 4, 2) != kFormatVersion) {
    return Fail("conntrack import: unsupported format version " + std::to_string(GetBe(p + 4, 2)));
  }
  if (GetBe(p + 6, 2) != kRecordBytes) return Fail("conntrack import: unexpected record size");
  uint64_t count = GetBe(p + 8, 4);
  if (bytes.size() != kHeaderBytes + count * kRecordBytes) {
    return Fail("conntrack import: " + std::to_string(bytes.size()) + " bytes for " +
                std::to_string(count) + " flows");
  }
  struct Record {
    FlowKey key;
    FlowState state;
    uint8_t flags;
    uint64_t remaining_ms;
  };
  std::vector<Record> records;
  records.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* r = p + kHeaderBytes + i * kRecordBytes;
    auto fail = [i](const std::string& why) {
      return Fail("conntrack import: flow " + std::to_string(i) + ": " + why);
    };
    Record record;
    record.key.vnic = vnic;
    record.key.family = r[0];
    record.key.proto = r[1];
    std::memcpy(record.key.lo_addr.data(), r + 4, 16);
    std::memcpy(record.key.hi_addr.data(), r + 20, 16);
    record.key.lo_port = static_cast<uint16_t>(GetBe(r + 36, 2));
    record.key.hi_port = static_cast<uint16_t>(GetBe(r + 38, 2));
    record.remaining_ms = GetBe(r + 40, 4);
    record.flags = r[3];
    if (record.key.family != 4 && record.key.family != 6) return fail("bad address family");
    if (record.key.family == 4) {
      IpBytes zero{};
      if (std::memcmp(record.key.lo_addr.data() + 4, zero.data(), 12) != 0 ||
          std::memcmp(record.key.hi_addr.data() + 4, zero.data(), 12) != 0) {
        return fail("IPv4 address with bytes past the fourth");
      }
    }
    if (r[2] >= kFlowStateCount) return fail("bad state");
    record.state = static_cast<FlowState>(r[2]);
    bool tcp_state = r[2] <= static_cast<uint8_t>(FlowState::kTcpClosed);
    if (tcp_state != (record.key.proto == kProtoTcp))
      return fail("state does not fit the protocol");
    if (record.flags & ~kFlowExportedFlags) return fail("unknown flags");
    if (EndpointBefore(record.key.hi_addr, record.key.hi_port, record.key.lo_addr,
                       record.key.lo_port)) {
      return fail("endpoints out of order");
    }
    if (record.remaining_ms == 0) return fail("already expired");
    records.push_back(record);
  }
  // The flows the table lacks must fit the vnic's quota and the table: checked before anything
  // is inserted, so a refused import leaves the table as it was.
  size_t fresh = 0;
  for (const Record& record : records) {
    if (!Find(record.key, now)) ++fresh;
  }
  size_t held = OwnerEntries(vnic);
  if (held + fresh > quota_ || size_ + fresh > config_.max_entries) {
    // Expired entries may be what is in the way (an import is rare: a whole scan is fine).
    ReclaimExpired(now, slot_count_);
    held = OwnerEntries(vnic);
  }
  if (fresh > 0 && held + fresh > quota_) {
    return Fail("conntrack import: " + std::to_string(fresh) + " new flows would take the vnic " +
                "over its quota of " + std::to_string(quota_) + " flows (it holds " +
                std::to_string(held) + "); raise --conntrack-vnic-quota");
  }
  if (size_ + fresh > config_.max_entries) {
    return Fail("conntrack import: " + std::to_string(fresh) + " new flows do not fit the table (" +
                std::to_string(size_) + " of " + std::to_string(config_.max_entries) +
                " entries in use)");
  }
  if (fresh > 0 && held == 0 && free_buckets_.empty()) {
    return Fail("conntrack import: no owner bucket free (too many vnics with flows)");
  }
  // All or nothing even so: should the table fill up midway, what this import inserted is erased
  // and what it overwrote put back, newest first (a flow may appear twice in the bytes).
  std::vector<std::pair<FlowKey, std::optional<ConntrackEntry>>> undo;
  undo.reserve(records.size());
  size_t imported = 0;
  for (const Record& record : records) {
    ConntrackEntry* entry = Find(record.key, now);
    std::optional<ConntrackEntry> before;
    if (entry) {
      before = *entry;
    } else {
      PacketKey opener;  // the state is overwritten below
      entry = Insert(record.key, opener, record.flags & kFlowOpenerIsLo,
                     record.flags & kFlowOpenerFromVm ? Direction::kOutbound : Direction::kInbound,
                     0, now, vnic);
    }
    if (!entry) {
      for (auto undone = undo.rbegin(); undone != undo.rend(); ++undone) {
        ConntrackEntry* changed = Find(undone->first, now);
        if (undone->second) {
          *changed = *undone->second;
        } else {
          Erase(changed);
        }
      }
      return Fail("conntrack import: table full after " + std::to_string(imported) + " of " +
                  std::to_string(records.size()) + " flows");
    }
    undo.emplace_back(record.key, before);
    entry->state = record.state;
    entry->flags = record.flags;
    entry->generation = 0;
    // The windows stay on the host the flow came from: its segments go unchecked here.
    entry->tcp_endpoint[0] |= kTcpLiberal;
    entry->tcp_endpoint[1] |= kTcpLiberal;
    entry->expires =
        now + std::max<uint64_t>(record.remaining_ms * config_.ticks_per_second / 1000, 1);
    ++imported;
  }
  return Ok();
}

}  // namespace butterfly
