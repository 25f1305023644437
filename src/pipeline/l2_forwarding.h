// Stage: L2 forwarding, the workers' side. For each frame of a burst it records one next hop
// from the published ForwardingTable: a local vnic, a remote VTEP (with the underlay next hop's
// MAC), a flood of the VNI, or a drop with its reason. From the underlay it also learns: the inner
// source MAC behind the sending VTEP, and that VTEP's MAC (the way back), reported to the control
// side's Fdb through the learn ring at most once per second per entry. It never waits: a full
// ring only delays learning.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>
#include <utility>

#include "pipeline/counters.h"
#include "pipeline/forwarding_table.h"
#include "pipeline/vxlan_decap.h"

namespace butterfly {

// Trivial on purpose: a burst's array of them is never zeroed, and the stage writes only the
// fields its kind uses.
struct NextHop {
  enum class Kind : uint8_t { kVnic, kVtep, kFlood, kDrop };
  Kind kind;
  DropReason reason;      // kDrop
  MacBytes next_hop_mac;  // kVtep: the underlay neighbour's or group's MAC
  uint32_t vni;           // kVtep, kFlood
  VnicPort* vnic;         // kVnic
  // kFlood: the VNI's forwarding (null: nothing to flood to).
  const VniForwarding* forwarding;
  // kVtep, and kDrop for kNoNeighbor: the VTEP (whose MAC the worker must ask for).
  const VtepIp* vtep;
};

class L2Forwarding {
 public:
  // `counters`: the worker's, where learning's own counters live.
  L2Forwarding(rte_ring* learn, WorkerCounters& counters) : learn_(learn), counters_(counters) {}

  // Frames sent by `source`, a vnic of VNI `vni_id` (`vni`: that VNI's forwarding, or null).
  void FromVnic(const ForwardingTable& table, const VnicPort& source, const VniForwarding* vni,
                uint32_t vni_id, rte_mbuf* const* frames, uint16_t n, NextHop* next);
  // Decapsulated frames: tunnels[i] says where frames[i] came from, vnis[i] is its VNI's
  // forwarding. Learns, then looks up; a frame from the tunnel never goes back into it.
  void FromUnderlay(const ForwardingTable& table, rte_mbuf* const* frames,
                    const DecapResult* tunnels, const VniForwarding* const* vnis, uint16_t n,
                    uint32_t now_s, NextHop* next);
  // A neighbour the VTEP's ARP or NDP handling met.
  void LearnNeighbor(const VtepIp& ip, const MacBytes& mac, uint32_t now_s);

  // The underlay MAC to send to `vtep` by: a multicast group's, or the resolved neighbour's.
  // False when it is not resolved yet (the caller asks for it).
  static bool NextHopMac(const ForwardingTable& table, const VtepIp& vtep, MacBytes* mac);

 private:
  // The local vnic the burst's previous frame went to: bursts are mostly runs to one
  // destination, which then costs a compare instead of a hash lookup.
  struct LastLocalRoute {
    uint64_t mac = ~uint64_t{0};  // no MAC has this key (MacKey uses 48 bits)
    VnicPort* vnic = nullptr;
  };
  void ToVtep(const ForwardingTable& table, uint32_t vni, const VtepIp& vtep, NextHop* next);
  void LearnRemoteMac(const VniForwarding& vni, const uint8_t* mac, const VtepIp& vtep,
                      uint32_t now_s);
  void Report(const LearnEvent& event, uint64_t dedup_key, uint32_t now_s);

  rte_ring* const learn_;
  WorkerCounters& counters_;
  // Rate limit, direct-mapped: one report per (key, second).
  std::array<std::pair<uint64_t, uint32_t>, 256> reported_{};
};

}  // namespace butterfly
