// Where frames go: the VNIs with their local vnics (by MAC) and remote MACs (by VTEP), the flood
// targets of each VNI, and the underlay's resolved neighbours. Built by the control side and
// published whole through an atomic pointer (RCU): workers read it without a lock; the only thing
// they write is a remote MAC's last-seen time, for ageing.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/packet_headers.h"
#include "jit/packet_key.h"
#include "pipeline/flat_map.h"
#include "pipeline/vnic_port.h"

namespace butterfly {

inline uint64_t MacKey(const uint8_t* mac) {
  return uint64_t{mac[0]} << 40 | uint64_t{mac[1]} << 32 | uint64_t{mac[2]} << 24 |
         uint64_t{mac[3]} << 16 | uint64_t{mac[4]} << 8 | mac[5];
}

// A VTEP's address, in the underlay's family: IPv6, or IPv4 in the first four bytes (network
// order) and zeros after, as PacketKey holds addresses. One underlay has one family.
using VtepIp = IpBytes;

inline VtepIp VtepOfIpv4(uint32_t network_order) {
  // Written as two words, so that the word loads of SameVtep and VtepHash that follow are
  // forwarded from the stores (a 4-byte store under an 8-byte load stalls).
  uint64_t words[2] = {network_order, 0};  // little-endian: the address is in the first bytes
  VtepIp ip;
  std::memcpy(ip.data(), words, 16);
  return ip;
}
inline uint32_t Ipv4OfVtep(const VtepIp& ip) {
  uint32_t network_order;
  std::memcpy(&network_order, ip.data(), 4);
  return network_order;
}
// Two word compares: std::array's == is a call to memcmp, twice per decapsulated packet.
inline bool SameVtep(const VtepIp& a, const VtepIp& b) {
  uint64_t x[2], y[2];
  std::memcpy(x, a.data(), 16);
  std::memcpy(y, b.data(), 16);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}
inline bool IsUnset(const VtepIp& ip) { return SameVtep(ip, VtepIp{}); }
inline bool IsMulticastVtep(const VtepIp& ip, bool ipv6) {
  return ipv6 ? ip[0] == 0xff : (ip[0] >> 4) == 0xe;
}

struct VtepHash {
  size_t operator()(const VtepIp& ip) const {
    uint64_t words[2];
    std::memcpy(words, ip.data(), 16);
    return MixHash()(words[0] ^ (words[1] * 0x9e3779b97f4a7c15ULL));
  }
};

struct VtepEqual {
  bool operator()(const VtepIp& a, const VtepIp& b) const { return SameVtep(a, b); }
};

struct RemoteMac {
  VtepIp vtep{};
  bool is_static = false;
  // Seconds (the dataplane's clock) when traffic from this MAC was last decapsulated.
  mutable std::atomic<uint32_t> last_seen{0};
};

struct VniForwarding {
  uint32_t vni = 0;
  std::vector<VnicPort*> local_vnics;  // flood targets on this host
  FlatMap<uint64_t, VnicPort*, MixHash> local_macs;
  FlatMap<uint64_t, const RemoteMac*, MixHash> remote_macs;
  // The VNI held its cap of learned MACs when the table was built: workers do not report new
  // MACs (a flood would only fill the learn ring that other VNIs' learns need too).
  bool learning_full = false;
  // Remote flood targets: the configured peers (head-end replication), else the VNI's
  // multicast group.
  std::vector<VtepIp> flood_vteps;
  VtepIp multicast_group{};  // unset when peers are set, and on an IPv6 underlay
};

struct UnderlayInfo {
  bool present = false;
  uint16_t port = 0;
  MacBytes mac{};
  bool ipv6 = false;  // the outer headers' family: that of the VTEP address
  VtepIp vtep_ip{};
  uint32_t mtu = 1500;
  uint16_t vxlan_port = 4789;  // host order
  uint16_t rx_queues = 1;
};

struct ForwardingTable {
  FlatMap<uint64_t, const VniForwarding*, MixHash> vnis;
  FlatMap<uint64_t, VnicPort*, MixHash> vnics_by_index;
  std::vector<std::vector<VnicPort*>> vnics_by_worker;
  FlatMap<VtepIp, MacBytes, VtepHash, VtepEqual> neighbors;  // resolved by ARP or NDP
  std::vector<uint32_t> multicast_groups;  // IPv4, network order: to join on the underlay
  uint64_t groups_version = 0;             // changes when multicast_groups does
  UnderlayInfo underlay;

  // Storage of what the maps point to.
  std::vector<std::unique_ptr<VniForwarding>> vni_storage;
  std::vector<std::unique_ptr<RemoteMac>> remote_storage;

  const VniForwarding* FindVni(uint32_t vni) const {
    const VniForwarding* const* found = vnis.Find(vni);
    return found ? *found : nullptr;
  }
};

// What a worker's L2 stage tells the control side's FDB to learn, through the learn ring.
enum LearnKind : uint8_t { kLearnRemoteMac = 1, kLearnNeighbor = 2 };
struct LearnEvent {
  uint8_t kind;  // LearnKind
  uint8_t mac[6];
  uint8_t pad;
  uint32_t vni;
  VtepIp ip;
};
static_assert(sizeof(LearnEvent) == 28);  // rte_ring elements: a multiple of 4 bytes

// The original's default flood group of a VNI: 230.x.y.z with x.y.z the VNI's three bytes
// (network order).
inline uint32_t DefaultMulticastGroup(uint32_t vni) {
  return htonl(0xe6000000u | (vni & 0xffffff));
}

}  // namespace butterfly
