#include "pipeline/vhost_driver.h"

#include <rte_vhost.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/log.h"

namespace butterfly {
namespace {

VhostDriver* g_driver = nullptr;

// Offloads the pipeline does not implement: the VM must hand over whole, checksummed frames.
// Feature bits of the virtio spec (5.1.3); <linux/virtio_net.h> does not compile as C++.
constexpr uint64_t kDisabledFeatures = (1ULL << 0) |   // CSUM
                                       (1ULL << 1) |   // GUEST_CSUM
                                       (1ULL << 7) |   // GUEST_TSO4
                                       (1ULL << 8) |   // GUEST_TSO6
                                       (1ULL << 9) |   // GUEST_ECN
                                       (1ULL << 10) |  // GUEST_UFO
                                       (1ULL << 11) |  // HOST_TSO4
                                       (1ULL << 12) |  // HOST_TSO6
                                       (1ULL << 13) |  // HOST_ECN
                                       (1ULL << 14);   // HOST_UFO

}  // namespace

VhostDriver::VhostDriver(RcuDomain* rcu, std::function<void()> on_change)
    : rcu_(rcu), on_change_(std::move(on_change)) {
  g_driver = this;
}

VhostDriver::~VhostDriver() {
  std::map<std::string, Registration> left;
  {
    std::lock_guard lock(mutex_);
    left = ports_;
  }
  for (const auto& [path, registration] : left) Unregister(path);
  g_driver = nullptr;
}

Status VhostDriver::Register(VnicPort* port, const std::string& path, bool client) {
  size_t registered = 0;
  {
    std::lock_guard lock(mutex_);
    registered = ports_.size();
  }
  if (registered >= kMaxVhostSockets) {
    return Fail("vhost-user socket " + path + ": DPDK's vhost library serves at most " +
                std::to_string(kMaxVhostSockets) +
                " vhost-user sockets per process, and all are in use (use TAP vnics, or spread "
                "the VMs over more hosts)");
  }
  if (!client) unlink(path.c_str());  // a stale socket of a previous run
  {
    std::lock_guard lock(mutex_);
    ports_[path] = {port, client};
  }
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mutex_);
    ports_.erase(path);
    return Fail("vhost-user socket " + path + ": " + what);
  };
  if (rte_vhost_driver_register(path.c_str(), client ? RTE_VHOST_USER_CLIENT : 0) != 0) {
    return fail("cannot register (is the directory writable? is the path already in use?)");
  }
  static const rte_vhost_device_ops ops = [] {
    rte_vhost_device_ops o{};
    o.new_device = &VhostDriver::OnNewDevice;
    o.destroy_device = &VhostDriver::OnDestroyDevice;
    o.vring_state_changed = &VhostDriver::OnVringStateChanged;
    return o;
  }();
  if (rte_vhost_driver_disable_features(path.c_str(), kDisabledFeatures) != 0 ||
      rte_vhost_driver_callback_register(path.c_str(), &ops) != 0 ||
      rte_vhost_driver_start(path.c_str()) != 0) {
    rte_vhost_driver_unregister(path.c_str());
    return fail("cannot start (" + std::to_string(registered) +
                " other vhost-user sockets open; DPDK's vhost library watches at most 1,024 "
                "descriptors per process: one per listening socket and one per connected VM)");
  }
  LOG_INFO("vhost-user %s: %s", path.c_str(),
           client ? "connecting to QEMU (client mode, reconnects by itself)"
                  : "listening (server mode)");
  return Ok();
}

void VhostDriver::Unregister(const std::string& path) {
  // The library refuses while a callback of this socket runs: retry briefly.
  for (int attempt = 0; attempt < 200; ++attempt) {
    int result = rte_vhost_driver_unregister(path.c_str());
    if (result == 0 || result != -EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  VnicPort* port = nullptr;
  bool client = false;
  {
    std::lock_guard lock(mutex_);
    auto it = ports_.find(path);
    if (it != ports_.end()) {
      port = it->second.port;
      client = it->second.client;
      ports_.erase(it);
    }
  }
  if (port && port->vhost_vid() >= 0) {
    port->set_vhost_vid(-1);
    rcu_->Synchronize();
  }
  if (!client) unlink(path.c_str());
}

VnicPort* VhostDriver::PortOf(int vid) {
  char path[PATH_MAX];
  if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = ports_.find(path);
  return it == ports_.end() ? nullptr : it->second.port;
}

int VhostDriver::OnNewDevice(int vid) {
  if (!g_driver) return -1;
  VnicPort* port = g_driver->PortOf(vid);
  if (!port) return -1;
  // Guest notifications cost an eventfd write per burst; the worker polls instead.
  for (uint16_t queue = 0; queue < rte_vhost_get_vring_num(vid); ++queue) {
    rte_vhost_enable_guest_notification(vid, queue, 0);
  }
  port->set_vhost_vid(vid);
  if (g_driver->on_change_) g_driver->on_change_();
  LOG_INFO("nic %s: VM attached (vhost-user device %d)", port->id().c_str(), vid);
  return 0;
}

void VhostDriver::OnDestroyDevice(int vid) {
  if (!g_driver) return;
  VnicPort* port = g_driver->PortOf(vid);
  if (!port || port->vhost_vid() != vid) return;
  port->set_vhost_vid(-1);
  // The library frees the device when this returns: wait until no worker can still use it.
  g_driver->rcu_->Synchronize();
  // Sleeping workers watch the device's kick fd, which the library closes now: they rebuild.
  if (g_driver->on_change_) g_driver->on_change_();
  LOG_INFO("nic %s: VM detached", port->id().c_str());
}

int VhostDriver::OnVringStateChanged(int vid, uint16_t queue, int enable) {
  LOG_DEBUG("vhost-user device %d: queue %u %s", vid, queue, enable ? "enabled" : "disabled");
  return 0;
}

}  // namespace butterfly
