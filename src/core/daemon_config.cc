#include "core/daemon_config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/net_types.h"
#include "core/version.h"

namespace butterfly {
namespace {

using Apply = std::function<Status(DaemonConfig&, const std::string&)>;

struct OptionSpec {
  std::string cli_names;              // CLI11 names, e.g. "-i,--ip"
  std::vector<std::string> ini_keys;  // "section.key"; the first is the documented one
  std::string value_name;             // empty for a flag
  std::string help;
  Apply apply;
};

Result<bool> ParseBool(const std::string& text) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return false;
  return Fail("'" + text + "' is not true or false");
}

Apply Flag(bool DaemonConfig::*field) {
  return [field](DaemonConfig& config, const std::string& value) -> Status {
    auto on = ParseBool(value);
    if (!on) return Error{on.error()};
    config.*field = *on;
    return Ok();
  };
}

Status ParseWorkers(DaemonConfig& config, const std::string& value) {
  config.worker_cores.clear();
  if (value.find(',') == std::string::npos && value.find('-') == std::string::npos) {
    auto count = ParseInteger(value, 1, 128);
    if (!count) return Fail("--workers " + count.error() + " (a count, or a core list like 1,3-4)");
    config.workers = static_cast<unsigned>(*count);
    return Ok();
  }
  std::stringstream list(value);
  std::string item;
  while (std::getline(list, item, ',')) {
    auto dash = item.find('-');
    auto first = ParseInteger(item.substr(0, dash), 0, 1023);
    auto last = dash == std::string::npos ? first : ParseInteger(item.substr(dash + 1), 0, 1023);
    if (!first || !last || *last < *first) {
      return Fail("--workers '" + value + "' is not a core list like 1,3-4");
    }
    for (int64_t core = *first; core <= *last; ++core) {
      config.worker_cores.push_back(static_cast<unsigned>(core));
    }
  }
  config.workers = static_cast<unsigned>(config.worker_cores.size());
  return Ok();
}

std::vector<OptionSpec> OptionTable() {
  return {
      {"-i,--ip",
       {"general.ip"},
       "IP",
       "VTEP address of this host on the underlay (IPv4 or IPv6). Without it, only vnics of this "
       "host can talk to each other.",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto ip = IpAddress::Parse(v);
         if (!ip) return Fail("--ip " + ip.error());
         if (ip->IsUnspecified() || ip->IsMulticast()) {
           return Fail("--ip '" + v + "' is not a unicast address");
         }
         c.vtep_ip = ip->ToString();
         return Ok();
       }},
      {"-e,--endpoint",
       {"general.endpoint"},
       "ENDPOINT",
       std::string("ZeroMQ endpoint of the API: tcp://HOST:PORT, ipc://PATH or inproc://NAME "
                   "(default ") +
           kDefaultEndpoint + ", loopback only; the original bound 0.0.0.0)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         if (v.rfind("tcp://", 0) != 0 && v.rfind("ipc://", 0) != 0 &&
             v.rfind("inproc://", 0) != 0) {
           return Fail("--endpoint '" + v +
                       "' is not tcp://HOST:PORT, ipc://PATH or inproc://NAME");
         }
         c.endpoint = v;
         return Ok();
       }},
      {"-s,--socket-dir",
       {"general.socket-dir"},
       "DIR",
       "Directory of the vhost-user sockets <DIR>/qemu-vhost-<nic id>, created if missing "
       "(default /tmp)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         if (v.empty() || v[0] != '/')
           return Fail("--socket-dir '" + v + "' is not an absolute path");
         c.socket_dir = v;
         return Ok();
       }},
      {"-l,--log-level",
       {"general.log-level"},
       "LEVEL",
       "none, error, warning, info (default) or debug; changeable at run time (butterfly config "
       "--log-level, or the API's app_config)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto level = ParseLogLevel(v);
         if (!level) return Fail("--log-level: " + level.error());
         c.log_level = *level;
         return Ok();
       }},
      {"--no-syslog",
       {"general.no-syslog"},
       "",
       "Log to stderr instead of syslog",
       Flag(&DaemonConfig::no_syslog)},
      {"--dpdk-args",
       {"general.dpdk-args"},
       "ARGS",
       "DPDK EAL arguments, e.g. \"--vdev=net_af_packet0,iface=eth1\" (with no hugepages mounted, "
       "--no-huge is added by itself)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         c.dpdk_args = v;
         return Ok();
       }},
      {"--dpdk-port",
       {"general.dpdk-port"},
       "N",
       "DPDK port of the underlay (default: the first)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto port = ParseInteger(v, 0, 1023);
         if (!port) return Fail("--dpdk-port " + port.error());
         c.dpdk_port = static_cast<uint16_t>(*port);
         return Ok();
       }},
      {"-m,--nic-mtu",
       {"general.nic-mtu"},
       "N|max",
       "MTU of the underlay port (68-16000), or max for the largest it supports",
       [](DaemonConfig& c, const std::string& v) -> Status {
         if (v == "max") {
           c.nic_mtu_max = true;
           c.nic_mtu = 0;
           return Ok();
         }
         auto mtu = ParseInteger(v, 68, 16000);
         if (!mtu) return Fail("--nic-mtu " + mtu.error() + " (or 'max')");
         c.nic_mtu = static_cast<uint32_t>(*mtu);
         c.nic_mtu_max = false;
         return Ok();
       }},
      {"--no-offload",
       {"general.no-offload"},
       "",
       "Use no checksum/segmentation offload",
       Flag(&DaemonConfig::no_offload)},
      {"-t,--packet-trace",
       {"general.packet-trace"},
       "",
       "Trace every packet (pcap) from the start; per vnic: nic add --packet-trace",
       Flag(&DaemonConfig::packet_trace)},
      {"--workers",
       {"general.workers"},
       "N|CORES",
       "Worker lcores: a count (default 1) or a core list like 1,3-4",
       ParseWorkers},
      {"-u,--graph-cpu-core",
       {"general.graph-cpu-core", "general.graph-core-id"},
       "CORE",
       "The original's option: one worker on CORE (same as --workers CORE-CORE)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto core = ParseInteger(v, 0, 1023);
         if (!core) return Fail("--graph-cpu-core " + core.error());
         c.worker_cores = {static_cast<unsigned>(*core)};
         c.workers = 1;
         return Ok();
       }},
      {"--state-file",
       {"general.state-file"},
       "PATH",
       std::string("Journal of the API state, restored at start (default ") + kDefaultStateFile +
           "; none keeps no state)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         if (v != "none" && (v.empty() || v[0] != '/')) {
           return Fail("--state-file '" + v + "' is not an absolute path or none");
         }
         c.state_file = v;
         return Ok();
       }},
      {"--curve-keys",
       {"security.curve-keys"},
       "DIR",
       "Turn on CURVE authentication and encryption of the API: DIR holds server.key and "
       "clients/*.pub",
       [](DaemonConfig& c, const std::string& v) -> Status {
         if (v.empty()) return Fail("--curve-keys needs a directory");
         c.curve_keys = v;
         return Ok();
       }},
      {"--no-jit",
       {"general.no-jit"},
       "",
       "Filter with the interpreter only (no LLVM compile)",
       Flag(&DaemonConfig::no_jit)},
      {"--no-dataplane",
       {"general.no-dataplane"},
       "",
       "Serve the API without starting DPDK: vnics are recorded, not connected (dry runs, tests)",
       Flag(&DaemonConfig::no_dataplane)},
      {"--vxlan-port",
       {"general.vxlan-port"},
       "PORT",
       "UDP port of VXLAN (default 4789)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto port = ParseInteger(v, 1, 65535);
         if (!port) return Fail("--vxlan-port " + port.error());
         c.vxlan_port = static_cast<uint16_t>(*port);
         return Ok();
       }},
      {"--fdb-ageing",
       {"general.fdb-ageing"},
       "SECONDS",
       "Forget a learned remote MAC after this long without traffic from it (default 300)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto seconds = ParseInteger(v, 1, 1000000);
         if (!seconds) return Fail("--fdb-ageing " + seconds.error());
         c.fdb_ageing_seconds = static_cast<uint32_t>(*seconds);
         return Ok();
       }},
      {"--fdb-vni-max",
       {"general.fdb-vni-max"},
       "N",
       "Remote MACs one VNI may learn (default 4096): past it, new MACs of that VNI are not "
       "learned (their frames still reach them by flooding) until some of its entries age out, so "
       "that a MAC flood in one VNI cannot grow the table without bound",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto entries = ParseInteger(v, 1, 1 << 24);
         if (!entries) return Fail("--fdb-vni-max " + entries.error());
         c.fdb_vni_max = static_cast<uint32_t>(*entries);
         return Ok();
       }},
      {"--conntrack-entries",
       {"general.conntrack-entries"},
       "N",
       "Connection-tracking entries per worker (default 262144)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto entries = ParseInteger(v, 1024, 1 << 26);
         if (!entries) return Fail("--conntrack-entries " + entries.error());
         c.conntrack_entries = static_cast<uint32_t>(*entries);
         return Ok();
       }},
      {"--conntrack-vnic-quota",
       {"general.conntrack-vnic-quota"},
       "N",
       "Connection-tracking entries the flows of one vnic may hold in a worker's table, so that "
       "one VM opening flows at line rate cannot stop the others' new connections (default one "
       "eighth of --conntrack-entries; at most --conntrack-entries)",
       [](DaemonConfig& c, const std::string& v) -> Status {
         auto entries = ParseInteger(v, 1, 1 << 26);
         if (!entries) return Fail("--conntrack-vnic-quota " + entries.error());
         c.conntrack_vnic_quota = static_cast<uint32_t>(*entries);
         return Ok();
       }},
  };
}

std::string Trim(const std::string& text) {
  size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// Reads the INI file: `;` or `#` comments, [sections], key=value. Keys the command line already
// set are skipped (the command line wins). Unknown keys are errors: a typo must not silently
// leave a setting at its default.
Status ApplyIniFile(const std::string& path, const std::vector<OptionSpec>& table,
                    std::vector<std::string>& set_by, DaemonConfig& config,
                    std::vector<std::string>& notes) {
  std::ifstream file(path);
  if (!file) return Fail("cannot read config file '" + path + "'");
  std::string line;
  std::string section;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    std::string where = path + ":" + std::to_string(number) + ": ";
    line = Trim(line);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    if (line[0] == '[') {
      if (line.back() != ']') return Fail(where + "'" + line + "' is not a [section]");
      section = Trim(line.substr(1, line.size() - 2));
      if (section != "general" && section != "security") {
        return Fail(where + "unknown section [" + section + "] (known: [general], [security])");
      }
      continue;
    }
    auto equals = line.find('=');
    if (equals == std::string::npos) return Fail(where + "'" + line + "' is not key=value");
    if (section.empty()) return Fail(where + "key outside of a section ([general] or [security])");
    std::string key = Trim(line.substr(0, equals));
    std::string value = Trim(line.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    std::string full_key = section + "." + key;
    if (full_key == "security.encryption_key_path") {
      return Fail(where +
                  "encryption_key_path is the original's pre-shared-key encryption, which "
                  "Butterfly does not speak; use curve-keys (ZeroMQ CURVE) instead");
    }
    size_t index = 0;
    while (index < table.size() &&
           std::find(table[index].ini_keys.begin(), table[index].ini_keys.end(), full_key) ==
               table[index].ini_keys.end()) {
      ++index;
    }
    if (index == table.size()) {
      std::string known;
      for (const auto& spec : table) {
        if (spec.ini_keys[0].rfind(section + ".", 0) == 0) {
          known += (known.empty() ? "" : ", ") + spec.ini_keys[0].substr(section.size() + 1);
        }
      }
      return Fail(where + "unknown key '" + key + "' in [" + section + "] (known: " + known + ")");
    }
    if (set_by[index] == "the command line") {
      notes.push_back(where + key + " ignored: the command line sets it");
      continue;
    }
    if (auto applied = table[index].apply(config, value); !applied) {
      return Fail(where + applied.error());
    }
    set_by[index] = path + ":" + std::to_string(number);
  }
  return Ok();
}

}  // namespace

DaemonArgs ParseDaemonArgs(int argc, const char* const* argv) {
  DaemonArgs result;
  auto table = OptionTable();
  CLI::App app{
      "butterflyd: the Butterfly virtual switch daemon. It attaches VM NICs (vhost-user or "
      "TAP), isolates them in VXLAN networks, filters them with stateful security "
      "groups, and is driven over ZeroMQ (the `butterfly` CLI, or an orchestrator).",
      "butterflyd"};
  app.footer(
      "Settings come from the command line and from -c FILE (INI: [general] keys named like the "
      "long options, e.g. ip=, socket-dir=, dpdk-args=; [security] curve-keys=). The command "
      "line wins over the file for the same key (the original did the opposite).\n\n"
      "Examples:\n"
      "  butterflyd --no-syslog                      # local switch, API on tcp://127.0.0.1:9999\n"
      "  butterflyd -i 198.18.0.1 -s /run/butterfly \\\n"
      "      --dpdk-args \"--vdev=net_af_packet0,iface=eth1\" -e ipc:///run/butterfly/api\n"
      "  butterflyd -c /etc/butterfly/butterfly.conf\n\n"
      "Exit codes: 0 stopped cleanly, 1 failed at run time, 2 bad usage or settings.");
  app.set_version_flag("-V,--version", std::string("butterflyd ") + kButterflyVersion);
  std::string config_file;
  app.add_option("-c,--config", config_file, "INI file of settings (see below)")->type_name("FILE");
  bool dpdk_help = false;
  app.add_flag("--dpdk-help", dpdk_help, "Print DPDK's EAL options and exit");

  std::vector<std::string> values(table.size());
  std::vector<CLI::Option*> options(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].value_name.empty()) {
      options[i] = app.add_flag(table[i].cli_names)->description(table[i].help);
    } else {
      options[i] = app.add_option(table[i].cli_names, values[i], table[i].help)
                       ->type_name(table[i].value_name);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    result.exit_now = true;
    result.output = app.help();
    return result;
  } catch (const CLI::CallForVersion& e) {
    result.exit_now = true;
    result.output = std::string("butterflyd ") + kButterflyVersion + "\n";
    return result;
  } catch (const CLI::ParseError& e) {
    result.exit_now = true;
    result.exit_code = 2;
    result.error = std::string("butterflyd: ") + e.what() + "\nRun butterflyd --help for usage.\n";
    return result;
  }

  auto fail = [&result](const std::string& message) {
    result.exit_now = true;
    result.exit_code = 2;
    result.error = "butterflyd: " + message + "\n";
    return result;
  };
  DaemonConfig& config = result.config;
  config.dpdk_help = dpdk_help;
  config.config_file = config_file;
  // Where each setting came from, for the messages about conflicts.
  std::vector<std::string> set_by(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    if (options[i]->count() == 0) continue;
    set_by[i] = "the command line";
    std::string value = table[i].value_name.empty() ? "true" : values[i];
    if (auto applied = table[i].apply(config, value); !applied) return fail(applied.error());
  }
  if (!config_file.empty()) {
    if (auto applied = ApplyIniFile(config_file, table, set_by, config, result.notes); !applied) {
      return fail(applied.error());
    }
  }
  auto index_of = [&table](const std::string& cli_name) {
    size_t i = 0;
    while (table[i].cli_names.find(cli_name) == std::string::npos) ++i;
    return i;
  };
  size_t workers = index_of("--workers");
  size_t graph_core = index_of("--graph-cpu-core");
  if (!set_by[workers].empty() && !set_by[graph_core].empty()) {
    return fail("workers (set by " + set_by[workers] + ") and graph-cpu-core (set by " +
                set_by[graph_core] + ") both choose the workers' cores; keep one");
  }
  if (config.conntrack_vnic_quota == 0) {
    config.conntrack_vnic_quota = std::max<uint32_t>(config.conntrack_entries / 8, 1);
  } else if (config.conntrack_vnic_quota > config.conntrack_entries) {
    size_t quota = index_of("--conntrack-vnic-quota");
    return fail("conntrack-vnic-quota " + std::to_string(config.conntrack_vnic_quota) +
                " (set by " + set_by[quota] + ") is larger than conntrack-entries " +
                std::to_string(config.conntrack_entries) +
                ": a vnic cannot hold more entries than the table");
  }
  return result;
}

}  // namespace butterfly
