// The forwarding database, the control side's half of L2 forwarding: it owns the learned remote
// MACs (capped per VNI, aged), the static ones, the VNIs' flood peers and the underlay's resolved
// neighbours, and builds from them and the vnics the ForwardingTable that the workers' L2 stage
// reads. Learning arrives as LearnEvents from the workers. Control side only (the dataplane's
// lock held); no DPDK call, so that it is unit-tested alone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/dataplane.h"
#include "pipeline/forwarding_table.h"
#include "pipeline/learned_fdb.h"

namespace butterfly {

class Fdb {
 public:
  using Key = LearnedFdb::Key;  // (VNI, MAC as 48 bits)

  explicit Fdb(uint32_t max_learned_per_vni) : learned_(max_learned_per_vni) {}

  // The VNI's head-end replication list (empty: back to its multicast group).
  void SetVniPeers(uint32_t vni, std::vector<VtepIp> peers);
  // A static remote MAC behind `vtep`, or none.
  void SetStaticMac(const Key& key, std::optional<VtepIp> vtep);
  // What the workers reported; true when the table must be built again.
  bool Learn(const LearnEvent* events, unsigned n, uint32_t now_s);
  // Forgets learned MACs idle for longer than `ageing_seconds`; the workers' last-seen stamps in
  // `published` count. True when something was forgotten.
  bool Age(const ForwardingTable* published, uint32_t now_s, uint32_t ageing_seconds);

  // The learned (not static) remote MACs, with their idle time.
  std::vector<LearnedMac> LearnedMacs(const ForwardingTable* published, uint32_t now_s,
                                      bool ipv6) const;
  const LearnedFdb& learned() const { return learned_; }

  // The table for `vnics` (in a stable order), spread over `workers`, on `underlay`.
  std::unique_ptr<ForwardingTable> Build(const std::vector<VnicPort*>& vnics, uint32_t workers,
                                         const UnderlayInfo& underlay);

 private:
  LearnedFdb learned_;
  std::map<Key, VtepIp> static_macs_;
  std::map<uint32_t, std::vector<VtepIp>> vni_peers_;
  std::map<VtepIp, MacBytes> neighbors_;
  std::vector<uint32_t> published_groups_;
  uint64_t groups_version_ = 0;
};

}  // namespace butterfly
