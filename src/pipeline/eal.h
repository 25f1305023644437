// DPDK's EAL arguments: what the operator gave in --dpdk-args, completed with what butterflyd needs
// (a private file prefix, --no-huge when no hugepages are mounted, one lcore per worker), and the
// EAL's initialisation.
#pragma once

#include <string>
#include <vector>

#include "core/daemon_config.h"
#include "core/result.h"

namespace butterfly {

struct EalPlan {
  std::vector<std::string> args;  // argv, argv[0] included
  // What was added by itself and why, for the log.
  std::vector<std::string> notes;
  unsigned workers = 1;
};

struct HostFacts {
  bool hugepages_available = false;
  std::vector<unsigned> cpus;  // this process's allowed CPUs
  int pid = 0;
};
HostFacts ReadHostFacts();

// Pure: the EAL arguments for `config` on a host like `host`. An error is a usage error.
Result<EalPlan> PlanEal(const DaemonConfig& config, const HostFacts& host);

// Splits --dpdk-args like a shell would for simple cases (spaces, single and double quotes).
Result<std::vector<std::string>> SplitArguments(const std::string& text);

// Runs rte_eal_init; returns the worker lcore ids (not the main lcore).
Result<std::vector<unsigned>> InitEal(const EalPlan& plan);

// rte_eal_cleanup, and the removal of the runtime directory (/var/run/dpdk/<prefix>) DPDK leaves
// behind: every run uses its own prefix, so nobody else needs it.
void CleanupEal();

}  // namespace butterfly
