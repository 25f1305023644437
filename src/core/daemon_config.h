// butterflyd's settings: command line (CLI11) and INI file, one table of options for both, the
// command line winning over the file for the same key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace butterfly {

inline constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:9999";
inline constexpr const char* kDefaultStateFile = "/var/lib/butterfly/state.journal";

struct DaemonConfig {
  std::string config_file;
  std::string vtep_ip;  // empty: no underlay (vnics of one host only)
  std::string endpoint = kDefaultEndpoint;
  std::string socket_dir = "/tmp";
  LogLevel log_level = LogLevel::kInfo;
  bool no_syslog = false;
  std::string dpdk_args;
  std::optional<uint16_t> dpdk_port;
  // 0: leave the underlay's MTU as it is; kMaxMtu: the largest the port supports.
  uint32_t nic_mtu = 0;
  bool nic_mtu_max = false;
  bool no_offload = false;
  bool packet_trace = false;
  unsigned workers = 1;
  std::vector<unsigned> worker_cores;          // empty: let the dataplane choose
  std::string state_file = kDefaultStateFile;  // "none": keep no state
  std::string curve_keys;
  bool no_jit = false;
  uint16_t vxlan_port = 4789;
  uint32_t conntrack_entries = 1u << 18;
  // Entries one vnic's flows may hold in a worker's table; ParseDaemonArgs makes the default
  // (0 here) one eighth of conntrack_entries.
  uint32_t conntrack_vnic_quota = 0;
  uint32_t fdb_ageing_seconds = 300;
  // Learned remote MACs one VNI may hold; past it new MACs of that VNI are not learned.
  uint32_t fdb_vni_max = 4096;
  bool dpdk_help = false;
  bool no_dataplane = false;
};

// What ParseDaemonArgs decided: run with the config, or exit now with `exit_code` after printing
// `output` (help, version) to stdout or `error` to stderr.
struct DaemonArgs {
  DaemonConfig config;
  bool exit_now = false;
  int exit_code = 0;
  std::string output;
  std::string error;
  std::vector<std::string> notes;  // things to log once logging is up (e.g. settings from the file)
};

DaemonArgs ParseDaemonArgs(int argc, const char* const* argv);

}  // namespace butterfly
