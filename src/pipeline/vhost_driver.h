// vhost-user sockets of vnics, through DPDK's vhost library directly: one socket per vnic,
// Butterfly as server (QEMU connects and reconnects) or as client (Butterfly connects to QEMU's
// socket and reconnects by itself, so a Butterfly restart needs nothing from the VM).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "core/rcu.h"
#include "core/result.h"
#include "pipeline/vnic_port.h"

namespace butterfly {

// DPDK 22.11's vhost library watches its sockets in one fd set of 1,024 slots, one of them its own
// wake-up pipe: at most 1,023 sockets can be started (fewer once VMs connect, each connection
// taking a slot too). Past it the library only says "failed"; Butterfly says why.
inline constexpr size_t kMaxVhostSockets = 1023;

class VhostDriver {
 public:
  // One per process: DPDK's vhost callbacks carry no user pointer.
  // `on_change` runs (on the vhost thread) when a VM attaches or detaches.
  VhostDriver(RcuDomain* rcu, std::function<void()> on_change);
  ~VhostDriver();

  // Creates the socket (server) or starts connecting (client) for `port` at `path`.
  Status Register(VnicPort* port, const std::string& path, bool client);
  // Closes the socket and detaches the VM; when it returns no worker uses the port's device.
  void Unregister(const std::string& path);

 private:
  static int OnNewDevice(int vid);
  static void OnDestroyDevice(int vid);
  static int OnVringStateChanged(int vid, uint16_t queue, int enable);
  VnicPort* PortOf(int vid);

  RcuDomain* rcu_;
  std::function<void()> on_change_;
  struct Registration {
    VnicPort* port;
    bool client;  // the socket is the VM's: never remove it
  };
  std::mutex mutex_;  // guards ports_; never held while calling into the vhost library
  std::map<std::string, Registration> ports_;
};

}  // namespace butterfly
