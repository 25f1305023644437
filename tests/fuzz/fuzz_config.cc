// Fuzz target: butterflyd's config file (-c FILE, INI). Any bytes give either settings or a clear
// error ("butterflyd: FILE:LINE: ...", exit code 2); never a crash or an exception.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/daemon_config.h"
#include "fuzz_support.h"

namespace {
std::string g_path;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_path = "/dev/shm/butterfly-fuzz-config-" + std::to_string(getpid()) + ".conf";
  std::atexit([] { unlink(g_path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  {
    std::ofstream out(g_path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const char* argv[] = {"butterflyd", "-c", g_path.c_str()};
  DaemonArgs args = ParseDaemonArgs(3, argv);
  if (args.exit_now) {
    FUZZ_CHECK(args.exit_code == 2 && args.output.empty(), "exit %d", args.exit_code);
    FUZZ_CHECK(args.error.rfind("butterflyd: " + g_path + ":", 0) == 0,
               "the error does not name the file: %s", args.error.c_str());
    return 0;
  }
  const DaemonConfig& config = args.config;
  FUZZ_CHECK(config.config_file == g_path);
  FUZZ_CHECK(config.workers >= 1, "workers %u", config.workers);
  FUZZ_CHECK(config.conntrack_entries >= 1 && config.vxlan_port != 0);
  return 0;
}
