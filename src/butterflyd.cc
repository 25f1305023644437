// butterflyd: reads its settings, builds the dataplane, and serves the API on the control thread
// until SIGINT/SIGTERM or app_quit. SIGHUP reloads the authorised CURVE client keys.
#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <zmq.hpp>

#include "api/api_server.h"
#include "api/curve_auth.h"
#include "api/dispatcher.h"
#include "api/journal_recorder.h"
#include "core/controller.h"
#include "core/daemon_config.h"
#include "core/dataplane.h"
#include "core/log.h"
#include "core/systemd_notify.h"
#include "core/version.h"
#include "pipeline/dpdk_dataplane.h"
#include "pipeline/eal.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void OnStopSignal(int) { g_stop.store(true); }
void OnReloadSignal(int) { g_reload.store(true); }

void InstallSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: the API's poll must wake up with EINTR and see the stop flag.
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A reload need not cut a system call short: the API loop looks at the flag at least every
  // 100 ms.
  action.sa_handler = OnReloadSignal;
  action.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int StoppedDuringStartup() {
  LOG_INFO("butterflyd stopped during start-up (signal)");
  return 0;
}

void Reload(butterfly::CurveAuthenticator* curve, const std::string& key_dir) {
  if (!curve) {
    LOG_INFO("SIGHUP: nothing to reload (the API runs without --curve-keys)");
    return;
  }
  if (auto reloaded = curve->ReloadClients(); !reloaded) {
    LOG_ERROR("SIGHUP: CURVE client keys not reloaded, the %zu in use are kept: %s",
              curve->authorised_keys(), reloaded.error().c_str());
  } else if (curve->authorised_keys() == 0) {
    LOG_WARNING("api: %s/clients/ now holds no *.pub key: every new client is refused",
                key_dir.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace butterfly;
  // API answers of a big model are megabytes each, hundreds a second under load: glibc's default
  // (mmap and unmap each, or give the heap top back after every free) made the copies fault every
  // page in again. Keep freed memory while busy; the API hands it all back once idle
  // (malloc_trim in ApiServer::Serve).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  DaemonArgs args = ParseDaemonArgs(argc, argv);
  if (args.exit_now) {
    std::fputs(args.output.c_str(), stdout);
    std::fputs(args.error.c_str(), stderr);
    return args.exit_code;
  }
  const DaemonConfig& config = args.config;
  if (config.dpdk_help) {
    EalPlan help;
    help.args = {"butterflyd", "--help"};
    (void)InitEal(help);  // DPDK prints its options
    return 0;
  }
  LogInit("butterflyd", config.no_syslog ? LogSink::kStderr : LogSink::kSyslog, config.log_level);
  LOG_INFO("butterflyd %s starting", kButterflyVersion);
  // From here on, SIGTERM/SIGINT stop the daemon cleanly and SIGHUP never kills it: a stop
  // requested during start-up (a long state replay, DPDK's start) takes effect between its steps.
  InstallSignalHandlers();
  for (const std::string& note : args.notes) LOG_INFO("config: %s", note.c_str());

  std::error_code error;
  std::filesystem::create_directories(config.socket_dir, error);
  if (error) {
    LOG_ERROR("cannot create socket directory '%s': %s", config.socket_dir.c_str(),
              error.message().c_str());
    std::fprintf(stderr, "butterflyd: cannot create socket directory '%s': %s\n",
                 config.socket_dir.c_str(), error.message().c_str());
    return 1;
  }

  std::unique_ptr<Dataplane> dataplane;
  if (config.no_dataplane) {
    dataplane = std::make_unique<DisabledDataplane>(
        "started with --no-dataplane; vnics are recorded, not connected");
    LOG_WARNING("dataplane %s", dataplane->Describe().c_str());
  } else {
    auto started = DpdkDataplane::Start(config);
    if (!started) {
      LOG_ERROR("dataplane: %s", started.error().c_str());
      std::fprintf(stderr, "butterflyd: %s\n", started.error().c_str());
      return 1;
    }
    dataplane = std::move(*started);
  }
  if (g_stop.load()) return StoppedDuringStartup();
  Controller controller(config.socket_dir, *dataplane);
  DispatcherLimits limits;
  Dispatcher dispatcher(controller, limits);
  // Restores the state (and re-creates its vnics) before any client can reach the API.
  auto persistence = StartPersistence(config.state_file, controller, dispatcher);
  if (!persistence) {
    LOG_ERROR("state: %s", persistence.error().c_str());
    std::fprintf(stderr, "butterflyd: %s\n", persistence.error().c_str());
    return 2;
  }
  if (g_stop.load()) return StoppedDuringStartup();

  zmq::context_t context;
  ApiServer server(context, dispatcher, limits.max_frame_bytes);
  // CURVE (when --curve-keys is set) must be on before the socket binds.
  auto curve = SecureApi(context, server, config.curve_keys, config.endpoint);
  if (!curve) {
    LOG_ERROR("api: %s", curve.error().c_str());
    std::fprintf(stderr, "butterflyd: %s\n", curve.error().c_str());
    return 2;
  }
  if (auto bound = server.Bind(config.endpoint); !bound) {
    LOG_ERROR("api: %s", bound.error().c_str());
    std::fprintf(stderr, "butterflyd: %s\n", bound.error().c_str());
    return 1;
  }
  LOG_INFO("api: listening on %s", config.endpoint.c_str());

  // Between requests: publish policies whose publication a burst of changes deferred.
  // And on SIGHUP, reload the CURVE client keys.
  auto periodic = [&controller, &curve, &config]() -> std::chrono::milliseconds {
    if (g_reload.exchange(false)) Reload(curve->get(), config.curve_keys);
    auto now = Controller::Clock::now();
    if (auto due = controller.PublishDue(); due && *due <= now) controller.PublishPolicies(now);
    auto due = controller.PublishDue();
    if (!due) return std::chrono::milliseconds(100);
    // Rounded up: woken a fraction of a millisecond early, the loop would find nothing due.
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::ceil<std::chrono::milliseconds>(*due - now));
  };
  NotifySystemd("READY=1\nSTATUS=serving the API on " + config.endpoint);
  server.Serve(g_stop, periodic);
  NotifySystemd("STOPPING=1");
  LOG_INFO("butterflyd stopped (%s)", g_stop.load() ? "signal" : "app_quit");
  return 0;
}
