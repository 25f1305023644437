// The DPDK dataplane: implements the control plane's Dataplane seam. It owns the EAL, the mbuf
// pool, the underlay port, the vnic ports, the filter engine and the workers; the control side
// (API thread and a housekeeping thread) changes what the workers see only by publishing a new
// ForwardingTable or VnicSettings through RCU.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/daemon_config.h"
#include "core/dataplane.h"
#include "core/rcu.h"
#include "jit/filter_engine.h"
#include "pipeline/fdb.h"
#include "pipeline/underlay_port.h"
#include "pipeline/vhost_driver.h"
#include "pipeline/worker.h"

namespace butterfly {

class DpdkDataplane final : public Dataplane {
 public:
  // Initialises DPDK and starts the workers; the error says what to change.
  static Result<std::unique_ptr<DpdkDataplane>> Start(const DaemonConfig& config);
  ~DpdkDataplane() override;

  std::string Describe() const override;
  bool Forwarding() const override { return true; }
  Status AddVnic(const Vnic& vnic, const std::string& path) override;
  Status UpdateVnic(const Vnic& before, const Vnic& after, const std::string& path) override;
  void RemoveVnic(const Vnic& vnic) override;
  void SetPolicy(std::shared_ptr<const VnicPolicy> policy) override;
  VnicLink Link(const Vnic& vnic) const override;
  VnicCounters Counters(const Vnic& vnic) const override;
  std::optional<DataplaneStats> Stats() const override;
  void SetVniPeers(uint32_t vni, const std::vector<IpAddress>& peers) override;
  void SetStaticMac(uint32_t vni, const MacAddress& mac, std::optional<IpAddress> vtep) override;
  std::vector<LearnedMac> LearnedMacs() const override;
  std::optional<IpFamily> VtepFamily() const override;
  Result<std::string> ExportFlows(const Vnic& vnic) override;
  Status ImportFlows(const Vnic& vnic, const std::string& flows) override;

 private:
  DpdkDataplane() = default;
  Status Init(const DaemonConfig& config);
  // Opens the underlay port for the VTEP of --ip, with a tx queue per worker.
  Status OpenUnderlay(uint32_t workers);
  // Builds the forwarding table from the vnics and the FDB and publishes it. mutex_ held.
  void Rebuild();
  void Housekeeping();
  bool DrainLearnEvents();  // mutex_ held; true when something changed
  uint32_t NowSeconds() const;
  // Wakes sleeping workers: what they watch may have changed.
  void WakeWorkers();
  // Runs `command` on the worker that owns `vnic`; waits for it.
  Status RunOnOwner(const Vnic& vnic, WorkerCommand* command);

  DaemonConfig config_;
  std::vector<unsigned> worker_lcores_;
  rte_mempool* pool_ = nullptr;
  std::optional<UnderlayPort> underlay_;
  // What the workers are told of the underlay (present: false without one). Its family, that of
  // the VTEP address, is that of every tunnel.
  UnderlayInfo underlay_info_;
  std::unique_ptr<RcuDomain> rcu_;
  std::unique_ptr<FilterEngine> filter_engine_;
  std::unique_ptr<VhostDriver> vhost_;
  std::unique_ptr<WorkerCounters[]> worker_counters_;
  WorkerShared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool workers_running_ = false;

  mutable std::mutex mutex_;  // guards everything below (control side only)
  std::map<std::string, std::unique_ptr<VnicPort>> vnics_;
  Fdb fdb_{DaemonConfig{}.fdb_vni_max};
  uint32_t last_ageing_s_ = 0;

  std::mutex command_mutex_;  // one worker command at a time
  std::thread housekeeping_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace butterfly
