// The underlay NIC: the DPDK port VXLAN goes through (the first port, --dpdk-port N, or a vdev
// from --dpdk-args), or a TAP fallback when there is none. One tx queue per worker (lock-free
// transmit), rx on queue 0.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/packet_headers.h"
#include "core/result.h"

namespace butterfly {

struct UnderlayPortConfig {
  std::optional<uint16_t> port;
  uint16_t tx_queues = 1;
  uint32_t mtu = 0;  // 0: keep the port's
  bool mtu_max = false;
  // The operator named a device (--vdev, -a, a PCI address): its absence is an error, not a
  // reason to fall back to a TAP.
  bool device_requested = false;
};

struct UnderlayPort {
  uint16_t id = 0;
  std::string name;
  MacBytes mac{};
  uint32_t mtu = 1500;
  uint16_t rx_queues = 1;
  bool tap_fallback = false;
};

// Configures and starts the port; the error says what to change.
Result<UnderlayPort> OpenUnderlayPort(const UnderlayPortConfig& config, rte_mempool* pool);
void CloseUnderlayPort(const UnderlayPort& port);

}  // namespace butterfly
