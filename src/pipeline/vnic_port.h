// A vnic as the workers see it: its port (vhost-user or kernel TAP), its owner worker, its filter
// slot and its counters. Settings that may change (VNI, MAC, IPs, antispoof, bypass) sit in an
// immutable VnicSettings swapped through an atomic pointer, read once per burst.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/packet_headers.h"
#include "jit/filter_slot.h"
#include "pipeline/counters.h"

namespace butterfly {

struct VnicSettings {
  uint32_t vni = 0;
  MacBytes mac{};
  bool ip_anti_spoof = false;
  bool bypass_filtering = false;
  std::vector<uint32_t> ipv4;  // network order
  std::vector<std::array<uint8_t, 16>> ipv6;

  static std::unique_ptr<VnicSettings> From(const Vnic& vnic);
  bool HasIpv4(uint32_t address) const;
  bool HasIpv6(const uint8_t* address) const;
};

class VnicPort {
 public:
  VnicPort(const Vnic& vnic, uint32_t index, uint16_t owner, uint32_t max_workers,
           FilterSlot* filter);
  ~VnicPort();
  VnicPort(const VnicPort&) = delete;
  VnicPort& operator=(const VnicPort&) = delete;

  const std::string& id() const { return id_; }
  VnicType type() const { return type_; }
  // Unique within the process (the filter slot's index): handoffs between workers name vnics by it.
  uint32_t index() const { return index_; }
  uint16_t owner() const { return owner_; }
  FilterSlot* filter() const { return filter_; }
  const VnicSettings* settings() const { return settings_.load(std::memory_order_acquire); }
  // Control side: returns the previous settings, to free after a grace period.
  const VnicSettings* ExchangeSettings(const VnicSettings* settings) {
    return settings_.exchange(settings, std::memory_order_acq_rel);
  }
  VnicPortCounters& counters(uint16_t worker) { return counters_[worker]; }
  const VnicPortCounters& counters(uint16_t worker) const { return counters_[worker]; }
  uint32_t max_workers() const { return max_workers_; }
  // The vhost-user socket (server: ours; client: the VM's) or the TAP interface name.
  const std::string& path() const { return path_; }
  void set_path(std::string path) { path_ = std::move(path); }

  // vhost-user: the device id while a VM is attached, -1 otherwise.
  int vhost_vid() const { return vhost_vid_.load(std::memory_order_acquire); }
  void set_vhost_vid(int vid) { vhost_vid_.store(vid, std::memory_order_release); }
  // TAP: the tun file descriptor (owned).
  int tap_fd() const { return tap_fd_; }
  void set_tap_fd(int fd) { tap_fd_ = fd; }

  bool Ready() const;
  // Worker side: up to `max` frames from the VM, into mbufs of `pool`.
  uint16_t Receive(rte_mempool* pool, rte_mbuf** out, uint16_t max);
  // Worker side: copies frames to the VM; returns how many went. The caller frees every mbuf.
  uint16_t Transmit(rte_mbuf** frames, uint16_t n);

 private:
  const std::string id_;
  const VnicType type_;
  const uint32_t index_;
  const uint16_t owner_;
  const uint32_t max_workers_;
  FilterSlot* const filter_;
  std::atomic<const VnicSettings*> settings_;
  std::atomic<int> vhost_vid_{-1};
  int tap_fd_ = -1;
  std::string path_;
  std::unique_ptr<VnicPortCounters[]> counters_;
};

}  // namespace butterfly
