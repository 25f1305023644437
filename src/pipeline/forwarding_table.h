// Where frames go: the VNIs with their local vnics (by MAC) and remote MACs (by VTEP), the flood
// targets of each VNI, and the underlay's resolved neighbours. Built by the control side and
// published whole through an atomic pointer (RCU): workers read it without a lock; the only thing
// they write is a remote MAC's last-seen time, for ageing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/packet_headers.h"
#include "pipeline/flat_map.h"
#include "pipeline/vnic_port.h"

namespace butterfly {

inline uint64_t MacKey(const uint8_t* mac) {
  return uint64_t{mac[0]} << 40 | uint64_t{mac[1]} << 32 | uint64_t{mac[2]} << 24 |
         uint64_t{mac[3]} << 16 | uint64_t{mac[4]} << 8 | mac[5];
}

struct RemoteMac {
  uint32_t vtep = 0;  // IPv4, network order
  bool is_static = false;
  // Seconds (the dataplane's clock) when traffic from this MAC was last decapsulated.
  mutable std::atomic<uint32_t> last_seen{0};
};

struct VniForwarding {
  uint32_t vni = 0;
  std::vector<VnicPort*> local_vnics;  // flood targets on this host
  FlatMap<uint64_t, VnicPort*, MixHash> local_macs;
  FlatMap<uint64_t, const RemoteMac*, MixHash> remote_macs;
  // Remote flood targets: the configured peers (head-end replication), else the VNI's
  // multicast group.
  std::vector<uint32_t> flood_vteps;  // network order
  uint32_t multicast_group = 0;       // network order; 0 when peers are set
};

struct UnderlayInfo {
  bool present = false;
  uint16_t port = 0;
  MacBytes mac{};
  uint32_t vtep_ip = 0;  // network order
  uint32_t mtu = 1500;
  uint16_t vxlan_port = 4789;  // host order
  uint16_t rx_queues = 1;
};

struct ForwardingTable {
  FlatMap<uint64_t, const VniForwarding*, MixHash> vnis;
  FlatMap<uint64_t, VnicPort*, MixHash> vnics_by_index;
  std::vector<std::vector<VnicPort*>> vnics_by_worker;
  FlatMap<uint64_t, MacBytes, MixHash> neighbors;  // IPv4 (network order) -> MAC
  std::vector<uint32_t> multicast_groups;          // to join on the underlay
  uint64_t groups_version = 0;                     // changes when multicast_groups does
  UnderlayInfo underlay;

  // Storage of what the maps point to.
  std::vector<std::unique_ptr<VniForwarding>> vni_storage;
  std::vector<std::unique_ptr<RemoteMac>> remote_storage;

  const VniForwarding* FindVni(uint32_t vni) const {
    const VniForwarding* const* found = vnis.Find(vni);
    return found ? *found : nullptr;
  }
};

// The original's default flood group of a VNI: 230.x.y.z with x.y.z the VNI's three bytes
// (network order).
inline uint32_t DefaultMulticastGroup(uint32_t vni) {
  return htonl(0xe6000000u | (vni & 0xffffff));
}

}  // namespace butterfly
