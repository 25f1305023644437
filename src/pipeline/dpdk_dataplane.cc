#include "pipeline/dpdk_dataplane.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "pipeline/eal.h"
#include "pipeline/frame.h"
#include "pipeline/tap_device.h"
#include "pipeline/vxlan_encap.h"

namespace butterfly {
namespace {

constexpr unsigned kMbufs = 32767;
constexpr unsigned kMbufCache = 256;
constexpr unsigned kHandoffRingSize = 4096;
constexpr unsigned kLearnRingSize = 4096;

}  // namespace

Result<std::unique_ptr<DpdkDataplane>> DpdkDataplane::Start(const DaemonConfig& config) {
  std::unique_ptr<DpdkDataplane> dataplane(new DpdkDataplane());
  if (auto started = dataplane->Init(config); !started) return Error{started.error()};
  return dataplane;
}

Status DpdkDataplane::Init(const DaemonConfig& config) {
  config_ = config;
  fdb_ = Fdb(config.fdb_vni_max);
  auto plan = PlanEal(config, ReadHostFacts());
  if (!plan) return Error{plan.error()};
  for (const std::string& note : plan->notes) LOG_INFO("dataplane: %s", note.c_str());
  auto lcores = InitEal(*plan);
  if (!lcores) return Error{lcores.error()};
  worker_lcores_ = *lcores;
  uint32_t workers = static_cast<uint32_t>(worker_lcores_.size());

  pool_ = rte_pktmbuf_pool_create("butterfly_mbufs", kMbufs, kMbufCache, sizeof(MbufMeta),
                                  RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (!pool_) {
    return Fail("cannot allocate the packet buffers (" + std::to_string(kMbufs) +
                " mbufs): give DPDK more memory (--dpdk-args \"-m 1024\") or hugepages");
  }

  if (config.packet_trace) {
    LOG_WARNING(
        "dataplane: --packet-trace is accepted but not implemented in this version: no "
        "pcap is written");
  }
  if (config.vtep_ip.empty()) {
    LOG_WARNING("underlay: none (no --ip): vnics talk within this host only");
  } else if (Status opened = OpenUnderlay(workers); !opened) {
    return opened;
  }

  rcu_ = std::make_unique<RcuDomain>(workers);
  FilterEngine::Options filter_options;
  filter_options.jit = !config.no_jit;
  filter_engine_ = std::make_unique<FilterEngine>(rcu_.get(), filter_options);
  vhost_ = std::make_unique<VhostDriver>(rcu_.get(), [this] { WakeWorkers(); });

  worker_counters_ = std::make_unique<WorkerCounters[]>(workers);
  shared_.rcu = rcu_.get();
  shared_.pool = pool_;
  shared_.tsc_hz = rte_get_tsc_hz();
  shared_.start_tsc = rte_rdtsc();
  shared_.workers = workers;
  shared_.counters = worker_counters_.get();
  shared_.filter_config.conntrack.max_entries = config.conntrack_entries;
  shared_.filter_config.conntrack.max_entries_per_vnic = config.conntrack_vnic_quota;
  shared_.filter_config.conntrack.ticks_per_second = shared_.tsc_hz;
  shared_.learn = rte_ring_create_elem("butterfly_learn", sizeof(LearnEvent), kLearnRingSize,
                                       static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
  if (!shared_.learn) return Fail("cannot create the learning ring");
  for (uint32_t w = 0; w < workers; ++w) {
    std::string name = "butterfly_handoff_" + std::to_string(w);
    rte_ring* ring = rte_ring_create(name.c_str(), kHandoffRingSize,
                                     static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
    if (!ring) return Fail("cannot create " + name);
    shared_.handoff.push_back(ring);
    int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) return Fail("cannot create a worker's wake-up eventfd");
    shared_.wake_fds.push_back(wake_fd);
  }
  shared_.mailboxes = std::make_unique<std::atomic<WorkerCommand*>[]>(workers);
  {
    std::lock_guard lock(mutex_);
    Rebuild();
  }
  for (uint32_t w = 0; w < workers; ++w) {
    rcu_->Register(w);
    workers_.push_back(std::make_unique<Worker>(static_cast<uint16_t>(w), shared_));
  }
  for (uint32_t w = 0; w < workers; ++w) {
    if (rte_eal_remote_launch(RunWorker, workers_[w].get(), worker_lcores_[w]) != 0) {
      shared_.running.store(false);
      rte_eal_mp_wait_lcore();
      return Fail("cannot start worker " + std::to_string(w) + " on lcore " +
                  std::to_string(worker_lcores_[w]));
    }
  }
  workers_running_ = true;
  housekeeping_ = std::thread([this] { Housekeeping(); });
  LOG_INFO("dataplane: %s", Describe().c_str());
  return Ok();
}

Status DpdkDataplane::OpenUnderlay(uint32_t workers) {
  auto vtep = IpAddress::Parse(config_.vtep_ip);
  if (!vtep || vtep->IsUnspecified() || vtep->IsMulticast()) {
    return Fail("--ip " + config_.vtep_ip + ": not a unicast IPv4 or IPv6 address");
  }
  underlay_info_.ipv6 = !vtep->is_v4();
  std::memcpy(underlay_info_.vtep_ip.data(), vtep->bytes.data(), underlay_info_.ipv6 ? 16 : 4);
  UnderlayPortConfig port_config;
  port_config.port = config_.dpdk_port;
  port_config.tx_queues = static_cast<uint16_t>(workers);
  port_config.mtu = config_.nic_mtu;
  port_config.mtu_max = config_.nic_mtu_max;
  for (const char* option : {"--vdev", "-a", "--allow", "-b", "--block"}) {
    if (config_.dpdk_args.find(option) != std::string::npos) port_config.device_requested = true;
  }
  auto port = OpenUnderlayPort(port_config, pool_);
  if (!port) return Error{port.error()};
  underlay_ = *port;
  underlay_info_.present = true;
  underlay_info_.port = port->id;
  underlay_info_.mac = port->mac;
  underlay_info_.mtu = port->mtu;
  underlay_info_.vxlan_port = config_.vxlan_port;
  underlay_info_.rx_queues = port->rx_queues;
  LOG_INFO(
      "underlay: port %u (%s), MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, VTEP %s, VXLAN "
      "port %u",
      port->id, port->name.c_str(), port->mac[0], port->mac[1], port->mac[2], port->mac[3],
      port->mac[4], port->mac[5], port->mtu, config_.vtep_ip.c_str(), config_.vxlan_port);
  if (underlay_info_.ipv6) {
    LOG_INFO(
        "underlay: VXLAN over IPv6; a VNI's broadcast and unknown traffic reaches remote "
        "VTEPs only through its peers (vni peers set): the original's multicast groups are "
        "IPv4");
  }
  return Ok();
}

DpdkDataplane::~DpdkDataplane() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
  // Ports go first (vhost callbacks may still arrive), then the workers stop.
  std::map<std::string, std::unique_ptr<VnicPort>> vnics;
  {
    std::lock_guard lock(mutex_);
    vnics.swap(vnics_);
  }
  for (auto& [id, port] : vnics) {
    if (port->type() == VnicType::kVhostUserServer || port->type() == VnicType::kVhostUserClient) {
      vhost_->Unregister(port->path());
    }
  }
  if (workers_running_) {
    shared_.running.store(false);
    rte_eal_mp_wait_lcore();
  }
  vhost_.reset();
  filter_engine_.reset();
  if (rcu_) rcu_->Synchronize();
  delete shared_.table.exchange(nullptr);
  vnics.clear();
  if (underlay_) CloseUnderlayPort(*underlay_);
  for (rte_ring* ring : shared_.handoff) rte_ring_free(ring);
  for (int fd : shared_.wake_fds) close(fd);
  rte_ring_free(shared_.learn);
  rte_mempool_free(pool_);
  rcu_.reset();
  CleanupEal();
}

std::string DpdkDataplane::Describe() const {
  std::string text = "running: " + std::to_string(worker_lcores_.size()) + " worker(s) on lcore";
  for (unsigned lcore : worker_lcores_) text += " " + std::to_string(lcore);
  text += underlay_ ? ", underlay " + underlay_->name + " (VTEP " + config_.vtep_ip + ")"
                    : ", no underlay (no --ip)";
  text +=
      filter_engine_ && filter_engine_->jit_enabled() ? ", JIT filters" : ", interpreted filters";
  return text;
}

uint32_t DpdkDataplane::NowSeconds() const {
  return static_cast<uint32_t>((rte_rdtsc() - shared_.start_tsc) / shared_.tsc_hz);
}

Status DpdkDataplane::AddVnic(const Vnic& vnic, const std::string& path) {
  if (vnic.packet_trace) {
    LOG_WARNING(
        "nic %s: packet trace is recorded but not implemented in this version: no pcap is "
        "written",
        vnic.id.c_str());
  }
  FilterSlot* slot = filter_engine_->SlotOf(vnic.id);
  uint32_t workers = static_cast<uint32_t>(worker_lcores_.size());
  uint16_t owner = 0;
  {
    // The least loaded worker owns the new vnic.
    std::lock_guard lock(mutex_);
    std::vector<unsigned> load(workers);
    for (const auto& [id, port] : vnics_) ++load[port->owner()];
    owner = static_cast<uint16_t>(std::min_element(load.begin(), load.end()) - load.begin());
  }
  auto port = std::make_unique<VnicPort>(vnic, slot->vnic_index(), owner, workers, slot);
  port->set_path(path);
  Status attached;
  switch (vnic.type) {
    case VnicType::kTap: {
      unsigned mtu = underlay_info_.present ? MaxInnerFrame(underlay_info_) -
                                                  static_cast<unsigned>(sizeof(EthernetHeader))
                                            : 0;
      auto fd = CreateTapInterface(path, vnic.mac.bytes.data(), mtu);
      if (fd) {
        port->set_tap_fd(*fd);
      } else {
        attached = Error{fd.error()};
      }
      break;
    }
    case VnicType::kVhostUserServer:
    case VnicType::kVhostUserClient:
      attached = vhost_->Register(port.get(), path, vnic.type == VnicType::kVhostUserClient);
      break;
    case VnicType::kBench:
      break;
  }
  if (!attached) {
    filter_engine_->RemoveVnic(vnic.id);
    return attached;
  }
  std::lock_guard lock(mutex_);
  vnics_[vnic.id] = std::move(port);
  Rebuild();
  return Ok();
}

Status DpdkDataplane::UpdateVnic(const Vnic& before, const Vnic& after, const std::string&) {
  std::lock_guard lock(mutex_);
  auto it = vnics_.find(before.id);
  if (it == vnics_.end()) return Fail("no such vnic in the dataplane");
  const VnicSettings* old = it->second->ExchangeSettings(VnicSettings::From(after).release());
  rcu_->Defer([old] { delete old; });
  if (before.vni != after.vni || before.mac != after.mac) Rebuild();
  return Ok();
}

void DpdkDataplane::RemoveVnic(const Vnic& vnic) {
  std::unique_ptr<VnicPort> port;
  {
    std::lock_guard lock(mutex_);
    auto it = vnics_.find(vnic.id);
    if (it == vnics_.end()) return;
    port = std::move(it->second);
    vnics_.erase(it);
    Rebuild();  // unpublished: no new burst will reach it
  }
  if (port->type() == VnicType::kVhostUserServer || port->type() == VnicType::kVhostUserClient) {
    vhost_->Unregister(port->path());
  }
  // Once every worker has passed a quiescent state none holds the port: free it now, so that a
  // TAP interface of the same name can be created again at once.
  rcu_->Synchronize();
  filter_engine_->RemoveVnic(vnic.id);
  port.reset();
}

void DpdkDataplane::SetPolicy(std::shared_ptr<const VnicPolicy> policy) {
  std::string id = policy->vnic_id;
  if (auto set = filter_engine_->SetPolicy(std::move(policy)); !set) {
    LOG_ERROR("nic %s: policy refused, the vnic drops everything: %s", id.c_str(),
              set.error().c_str());
  }
}

VnicLink DpdkDataplane::Link(const Vnic& vnic) const {
  std::lock_guard lock(mutex_);
  auto it = vnics_.find(vnic.id);
  if (it == vnics_.end()) return {"down", "not in the dataplane"};
  const VnicPort& port = *it->second;
  std::string worker = "worker " + std::to_string(port.owner());
  switch (port.type()) {
    case VnicType::kTap:
      return {"up", "kernel interface " + vnic.id + ", " + worker};
    case VnicType::kVhostUserServer:
      return port.Ready() ? VnicLink{"connected", worker}
                          : VnicLink{"waiting", "socket ready, no VM attached"};
    case VnicType::kVhostUserClient:
      return port.Ready() ? VnicLink{"connected", worker}
                          : VnicLink{"waiting", "connecting to QEMU's socket"};
    case VnicType::kBench:
      return {"down", "BENCH vnics are recorded but generate no traffic in this version"};
  }
  return {"down", ""};
}

VnicCounters DpdkDataplane::Counters(const Vnic& vnic) const {
  VnicCounters out;
  std::lock_guard lock(mutex_);
  auto it = vnics_.find(vnic.id);
  if (it == vnics_.end()) return out;
  const VnicPort& port = *it->second;
  std::array<uint64_t, kDropReasonCount> drops{};
  for (uint32_t w = 0; w < port.max_workers(); ++w) {
    const auto& counters = port.counters(static_cast<uint16_t>(w));
    out.packets_in += counters.packets_in.Get();
    out.bytes_in += counters.bytes_in.Get();
    out.packets_out += counters.packets_out.Get();
    out.bytes_out += counters.bytes_out.Get();
    for (int r = 0; r < kDropReasonCount; ++r) drops[r] += counters.drops[r].Get();
  }
  for (int r = 0; r < kDropReasonCount; ++r) {
    out.drops.emplace_back(DropReasonName(static_cast<DropReason>(r)), drops[r]);
  }
  return out;
}

std::optional<DataplaneStats> DpdkDataplane::Stats() const {
  DataplaneStats stats;
  stats.tsc_hz = shared_.tsc_hz;
  std::vector<unsigned> vnics(worker_lcores_.size());
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, port] : vnics_) ++vnics[port->owner()];
  }
  for (size_t w = 0; w < worker_lcores_.size(); ++w) {
    const WorkerCounters& counters = worker_counters_[w];
    WorkerStats worker;
    worker.id = static_cast<unsigned>(w);
    worker.lcore = worker_lcores_[w];
    worker.vnics = vnics[w];
    worker.loops = counters.loops.Get();
    worker.busy_loops = counters.busy_loops.Get();
    worker.sleeps = counters.sleeps.Get();
    worker.busy_cycles = counters.busy_cycles.Get();
    worker.idle_cycles = counters.idle_cycles.Get();
    for (int s = 0; s < kStageCount; ++s) {
      const StageCounters& stage = counters.stages[s];
      worker.stages.push_back({StageName(static_cast<Stage>(s)), stage.packets.Get(),
                               stage.drops.Get(), stage.cycles.Get(), stage.calls.Get()});
    }
    for (int r = 0; r < kDropReasonCount; ++r) {
      worker.drops.emplace_back(DropReasonName(static_cast<DropReason>(r)),
                                counters.drops[r].Get());
    }
    stats.workers.push_back(std::move(worker));
  }
  FilterEngine::Counters filter = filter_engine_->counters();
  stats.filter = {{"policies", filter.policies},
                  {"jit_compiles", filter.compiles},
                  {"jit_failures", filter.compile_failures},
                  {"jit_stale", filter.stale_compiles},
                  {"interpreted", filter.interpreted},
                  {"jit_ms_max", static_cast<uint64_t>(filter.compile_ms_max)}};
  // New flows refused because a worker's table was full, or because the vnic that opened them
  // held its quota (both are conntrack_full drops on that vnic).
  uint64_t full = 0;
  uint64_t quota_refused = 0;
  uint64_t vnic_quota = 0;
  for (const auto& worker : workers_) {
    const Conntrack& table = worker->conntrack();
    full += table.counters().full.load(std::memory_order_relaxed);
    quota_refused += table.counters().quota_refused.load(std::memory_order_relaxed);
    vnic_quota = table.quota();
  }
  stats.filter.emplace_back("conntrack_full", full);
  stats.filter.emplace_back("conntrack_quota_refused", quota_refused);
  stats.filter.emplace_back("conntrack_vnic_quota", vnic_quota);
  // Learned remote MACs: how many, the cap per VNI, learns refused at the cap (in total and per
  // VNI), frames whose new MAC a worker did not report because its VNI was full, and learn events
  // lost to a full ring.
  uint64_t vni_full = 0;
  uint64_t ring_full = 0;
  for (size_t w = 0; w < worker_lcores_.size(); ++w) {
    vni_full += worker_counters_[w].fdb_vni_full.Get();
    ring_full += worker_counters_[w].learn_ring_full.Get();
  }
  std::lock_guard lock(mutex_);
  const LearnedFdb& learned = fdb_.learned();
  stats.filter.emplace_back("fdb_learned", learned.entries().size());
  stats.filter.emplace_back("fdb_vni_max", learned.max_per_vni());
  stats.filter.emplace_back("fdb_learn_refused", learned.refused());
  stats.filter.emplace_back("fdb_vni_full_frames", vni_full);
  stats.filter.emplace_back("fdb_learn_ring_full", ring_full);
  for (const auto& [vni, refused] : learned.refused_by_vni()) {
    stats.filter.emplace_back("fdb_learn_refused_vni_" + std::to_string(vni), refused);
  }
  return stats;
}

namespace {

// An API address as a VTEP of this underlay (the controller checked its family).
VtepIp VtepOf(const IpAddress& ip) {
  VtepIp vtep{};
  std::memcpy(vtep.data(), ip.bytes.data(), ip.is_v4() ? 4 : 16);
  return vtep;
}

}  // namespace

void DpdkDataplane::SetVniPeers(uint32_t vni, const std::vector<IpAddress>& peers) {
  std::vector<VtepIp> vteps;
  for (const IpAddress& peer : peers) vteps.push_back(VtepOf(peer));
  std::lock_guard lock(mutex_);
  fdb_.SetVniPeers(vni, std::move(vteps));
  Rebuild();
}

void DpdkDataplane::SetStaticMac(uint32_t vni, const MacAddress& mac,
                                 std::optional<IpAddress> vtep) {
  std::lock_guard lock(mutex_);
  fdb_.SetStaticMac({vni, MacKey(mac.bytes.data())},
                    vtep ? std::optional<VtepIp>(VtepOf(*vtep)) : std::nullopt);
  Rebuild();
}

std::optional<IpFamily> DpdkDataplane::VtepFamily() const {
  if (!underlay_) return std::nullopt;
  return underlay_info_.ipv6 ? IpFamily::kV6 : IpFamily::kV4;
}

std::vector<LearnedMac> DpdkDataplane::LearnedMacs() const {
  uint32_t now = NowSeconds();
  std::lock_guard lock(mutex_);
  return fdb_.LearnedMacs(shared_.table.load(std::memory_order_acquire), now, underlay_info_.ipv6);
}

void DpdkDataplane::Rebuild() {
  std::vector<VnicPort*> ports;
  for (const auto& [id, port] : vnics_) ports.push_back(port.get());
  std::unique_ptr<ForwardingTable> table =
      fdb_.Build(ports, static_cast<uint32_t>(worker_lcores_.size()), underlay_info_);
  const ForwardingTable* old = shared_.table.exchange(table.release(), std::memory_order_acq_rel);
  if (old) rcu_->Defer([old] { delete old; });
  WakeWorkers();
}

Status DpdkDataplane::RunOnOwner(const Vnic& vnic, WorkerCommand* command) {
  uint16_t owner;
  {
    std::lock_guard lock(mutex_);
    auto it = vnics_.find(vnic.id);
    if (it == vnics_.end()) return Fail("not in the dataplane");
    owner = it->second->owner();
    command->vnic_index = it->second->index();
  }
  std::lock_guard one_at_a_time(command_mutex_);
  shared_.mailboxes[owner].store(command, std::memory_order_release);
  WakeWorkers();
  for (int waited_ms = 0; !command->done.load(std::memory_order_acquire); ++waited_ms) {
    if (waited_ms == 2000) {
      // Take the command back unless the worker took it meanwhile.
      WorkerCommand* expected = command;
      if (shared_.mailboxes[owner].compare_exchange_strong(expected, nullptr)) {
        return Fail("worker " + std::to_string(owner) + " did not answer within 2 s");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Ok();
}

Result<std::string> DpdkDataplane::ExportFlows(const Vnic& vnic) {
  WorkerCommand command;
  command.kind = WorkerCommand::Kind::kExportFlows;
  if (auto ran = RunOnOwner(vnic, &command); !ran) return Error{ran.error()};
  return std::move(command.data);
}

Status DpdkDataplane::ImportFlows(const Vnic& vnic, const std::string& flows) {
  WorkerCommand command;
  command.kind = WorkerCommand::Kind::kImportFlows;
  command.data = flows;
  if (auto ran = RunOnOwner(vnic, &command); !ran) return ran;
  return command.result;
}

void DpdkDataplane::WakeWorkers() {
  for (int fd : shared_.wake_fds) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
  }
}

bool DpdkDataplane::DrainLearnEvents() {
  LearnEvent events[64];
  bool changed = false;
  unsigned n;
  uint32_t now = NowSeconds();
  while ((n = rte_ring_sc_dequeue_burst_elem(shared_.learn, events, sizeof(LearnEvent), 64,
                                             nullptr)) > 0) {
    changed = fdb_.Learn(events, n, now) || changed;
  }
  return changed;
}

void DpdkDataplane::Housekeeping() {
  std::unique_lock lock(mutex_);
  uint32_t last_activity = 0;
  while (!stopping_) {
    // Learning needs a short period while traffic teaches something; an idle host costs less.
    bool busy = NowSeconds() - last_activity < 2 || rcu_->pending() > 0;
    wake_.wait_for(lock, std::chrono::milliseconds(busy ? 2 : 100));
    if (stopping_) break;
    bool changed = DrainLearnEvents();
    uint32_t now = NowSeconds();
    if (changed) last_activity = now;
    if (now != last_ageing_s_) {
      last_ageing_s_ = now;
      const ForwardingTable* published = shared_.table.load(std::memory_order_acquire);
      changed = fdb_.Age(published, now, config_.fdb_ageing_seconds) || changed;
    }
    if (changed) Rebuild();
    lock.unlock();
    rcu_->Poll();
    lock.lock();
  }
}

}  // namespace butterfly
