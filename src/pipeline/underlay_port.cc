#include "pipeline/underlay_port.h"

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>

#include "core/log.h"

namespace butterfly {
namespace {

constexpr const char* kTapFallbackDevice = "net_tap_butterfly";
constexpr const char* kTapFallbackInterface = "butterfly0";

std::string PortName(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = "";
  rte_eth_dev_get_name_by_port(port, name);
  return name;
}

}  // namespace

Result<UnderlayPort> OpenUnderlayPort(const UnderlayPortConfig& config, rte_mempool* pool) {
  UnderlayPort underlay;
  if (config.port) {
    if (!rte_eth_dev_is_valid_port(*config.port)) {
      return Fail("--dpdk-port " + std::to_string(*config.port) + ": no such DPDK port (" +
                  std::to_string(rte_eth_dev_count_avail()) + " available)");
    }
    underlay.id = *config.port;
  } else if (rte_eth_dev_count_avail() > 0) {
    uint16_t first = 0;
    RTE_ETH_FOREACH_DEV(first) break;
    underlay.id = first;
  } else if (config.device_requested) {
    return Fail(
        "the underlay device given in --dpdk-args did not come up (DPDK's messages above "
        "say why)");
  } else {
    std::string args = std::string("iface=") + kTapFallbackInterface;
    if (rte_vdev_init(kTapFallbackDevice, args.c_str()) != 0 ||
        rte_eth_dev_get_port_by_name(kTapFallbackDevice, &underlay.id) != 0) {
      return Fail("no DPDK port for the underlay, and the TAP fallback could not be created");
    }
    underlay.tap_fallback = true;
    LOG_WARNING(
        "underlay: no DPDK port given (--dpdk-args \"--vdev=...\" or a bound NIC): using "
        "the TAP fallback, kernel interface %s",
        kTapFallbackInterface);
  }
  uint16_t port = underlay.id;
  underlay.name = PortName(port);
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port, &info) != 0)
    return Fail("underlay " + underlay.name + ": no info");
  if (info.max_tx_queues < config.tx_queues) {
    return Fail("underlay " + underlay.name + " offers " + std::to_string(info.max_tx_queues) +
                " tx queue(s) and butterflyd needs one per worker (" +
                std::to_string(config.tx_queues) +
                "): lower --workers, or give the port more queues (net_af_packet: qpairs=N)");
  }
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, config.tx_queues, &conf) != 0) {
    return Fail("underlay " + underlay.name + ": cannot configure 1 rx and " +
                std::to_string(config.tx_queues) + " tx queues");
  }
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_descriptors, &tx_descriptors);
  int socket = rte_eth_dev_socket_id(port);
  if (socket < 0) socket = 0;
  if (rte_eth_rx_queue_setup(port, 0, rx_descriptors, socket, nullptr, pool) != 0) {
    return Fail("underlay " + underlay.name + ": cannot set up its rx queue");
  }
  for (uint16_t queue = 0; queue < config.tx_queues; ++queue) {
    if (rte_eth_tx_queue_setup(port, queue, tx_descriptors, socket, nullptr) != 0) {
      return Fail("underlay " + underlay.name + ": cannot set up tx queue " +
                  std::to_string(queue));
    }
  }
  uint32_t mtu = config.mtu_max ? info.max_mtu : config.mtu;
  if (mtu > 0 && rte_eth_dev_set_mtu(port, static_cast<uint16_t>(mtu)) != 0) {
    return Fail("underlay " + underlay.name + ": cannot set MTU " + std::to_string(mtu) +
                " (the port accepts " + std::to_string(info.min_mtu) + "-" +
                std::to_string(info.max_mtu) + ")");
  }
  uint16_t current_mtu = 1500;
  if (rte_eth_dev_get_mtu(port, &current_mtu) == 0) underlay.mtu = current_mtu;
  if (rte_eth_dev_start(port) != 0) return Fail("underlay " + underlay.name + ": cannot start");
  // VXLAN's multicast groups and the VTEP's unicast address must all reach us.
  rte_eth_promiscuous_enable(port);
  rte_eth_allmulticast_enable(port);
  rte_ether_addr mac;
  rte_eth_macaddr_get(port, &mac);
  std::copy(mac.addr_bytes, mac.addr_bytes + 6, underlay.mac.begin());
  return underlay;
}

void CloseUnderlayPort(const UnderlayPort& port) {
  rte_eth_dev_stop(port.id);
  rte_eth_dev_close(port.id);
  if (port.tap_fallback) rte_vdev_uninit(kTapFallbackDevice);
}

}  // namespace butterfly
