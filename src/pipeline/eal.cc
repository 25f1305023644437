#include "pipeline/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace butterfly {
namespace {

bool HasOption(const std::vector<std::string>& args, const std::vector<std::string>& names) {
  for (const std::string& arg : args) {
    for (const std::string& name : names) {
      if (arg == name || arg.rfind(name + "=", 0) == 0) return true;
      // Short options glued to their value: -l0-1, -m512.
      if (name.size() == 2 && name[0] == '-' && name[1] != '-' && arg.rfind(name, 0) == 0) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

HostFacts ReadHostFacts() {
  HostFacts host;
  host.pid = getpid();
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long free_pages = 0;
  while (meminfo >> key) {
    if (key == "HugePages_Free:") {
      meminfo >> free_pages;
      break;
    }
    meminfo.ignore(256, '\n');
  }
  bool mounted = false;
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    if (line.find(" hugetlbfs ") != std::string::npos) mounted = true;
  }
  host.hugepages_available = free_pages > 0 && mounted;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) host.cpus.push_back(cpu);
    }
  }
  if (host.cpus.empty()) host.cpus.push_back(0);
  return host;
}

Result<std::vector<std::string>> SplitArguments(const std::string& text) {
  std::vector<std::string> args;
  std::string current;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        current += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) args.push_back(current);
      current.clear();
      in_word = false;
    } else {
      current += c;
      in_word = true;
    }
  }
  if (quote) return Fail("--dpdk-args has an unterminated quote");
  if (in_word) args.push_back(current);
  return args;
}

Result<EalPlan> PlanEal(const DaemonConfig& config, const HostFacts& host) {
  auto user = SplitArguments(config.dpdk_args);
  if (!user) return Error{user.error()};
  EalPlan plan;
  plan.workers = config.workers;
  plan.args.push_back("butterflyd");

  if (!HasOption(*user, {"-l", "-c", "--lcores"})) {
    // lcore 0 is the control thread on the first allowed CPU; lcores 1..N are the workers.
    unsigned main_cpu = host.cpus[0];
    std::vector<unsigned> worker_cpus = config.worker_cores;
    if (worker_cpus.empty()) {
      for (unsigned i = 0; i < config.workers; ++i) {
        worker_cpus.push_back(host.cpus[(i + 1) % host.cpus.size()]);
      }
    } else {
      for (unsigned cpu : worker_cpus) {
        if (std::find(host.cpus.begin(), host.cpus.end(), cpu) == host.cpus.end()) {
          return Fail("--workers: CPU " + std::to_string(cpu) +
                      " is not available to this process");
        }
      }
      auto free_cpu = std::find_if(host.cpus.begin(), host.cpus.end(), [&](unsigned cpu) {
        return std::find(worker_cpus.begin(), worker_cpus.end(), cpu) == worker_cpus.end();
      });
      if (free_cpu != host.cpus.end()) main_cpu = *free_cpu;
    }
    std::string lcores = "0@" + std::to_string(main_cpu);
    for (size_t i = 0; i < worker_cpus.size(); ++i) {
      lcores += "," + std::to_string(i + 1) + "@" + std::to_string(worker_cpus[i]);
    }
    plan.args.push_back("--lcores=" + lcores);
    plan.notes.push_back("control thread on CPU " + std::to_string(main_cpu) + ", " +
                         std::to_string(worker_cpus.size()) + " worker(s) (--lcores=" + lcores +
                         ")");
  }
  if (!HasOption(*user, {"--file-prefix", "--in-memory"})) {
    // Several daemons (and test VMs) may run on one host: keep DPDK's runtime files apart.
    plan.args.push_back("--file-prefix=butterfly-" + std::to_string(host.pid));
  }
  if (!HasOption(*user, {"--no-huge", "--in-memory"}) && !host.hugepages_available) {
    plan.args.push_back("--no-huge");
    if (!HasOption(*user, {"-m", "--socket-mem"})) plan.args.push_back("-m1024");
    plan.notes.push_back(
        "no free hugepages mounted: running with --no-huge (memfd-backed memory, "
        "which vhost-user can share)");
  }
  if (!HasOption(*user, {"--telemetry", "--no-telemetry"})) plan.args.push_back("--no-telemetry");
  plan.args.insert(plan.args.end(), user->begin(), user->end());
  return plan;
}

Result<std::vector<unsigned>> InitEal(const EalPlan& plan) {
  std::vector<char*> argv;
  std::vector<std::string> copies = plan.args;  // rte_eal_init may permute argv
  for (std::string& arg : copies) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(copies.size()), argv.data()) < 0) {
    std::string joined;
    for (const std::string& arg : plan.args) joined += " " + arg;
    return Fail(std::string("DPDK EAL initialisation failed: ") + rte_strerror(rte_errno) +
                " (arguments:" + joined + ")");
  }
  std::vector<unsigned> workers;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (workers.size() < plan.workers) workers.push_back(lcore);
  }
  if (workers.empty()) {
    return Fail(
        "DPDK gave no worker lcore: give --dpdk-args an -l/--lcores list with at least two "
        "lcores, or leave them out");
  }
  return workers;
}

void CleanupEal() {
  std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ignored;
  if (!runtime_dir.empty()) std::filesystem::remove_all(runtime_dir, ignored);
}

}  // namespace butterfly
