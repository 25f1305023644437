// Fuzz target: the replay of the state journal at start. Any bytes in the state file
// give either a clear error (butterflyd then exits with code 2) or a consistent state: the
// dataplane holds what the model says, and the journal compacted at start restores the same
// model again.
// Input: one byte of mode, then either the file as is (even mode) or records (odd mode: a length
// byte, then that many payload bytes, each framed with a valid length and CRC after a valid
// header, so that the fuzzer reaches the records' meaning past the checksums).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "api/dispatcher.h"
#include "api_model.h"
#include "core/log.h"
#include "core/state_journal.h"

namespace butterfly {
namespace {

std::string g_dir;
std::string g_path;

constexpr JournalPolicy kPolicy{.compact_ratio = 4,
                                .compact_min_bytes = 4 << 20,
                                .preallocate_bytes = 4096,
                                .write_ahead_bytes = 16 << 10};

void WriteFile(const std::string& bytes) {
  for (const char* suffix : {"", ".tmp", ".replay-failed"}) unlink((g_path + suffix).c_str());
  std::ofstream out(g_path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Restored {
  fuzz::FakeDataplane dataplane;
  Controller controller{"/tmp/butterfly-fuzz-sockets", dataplane};
  Dispatcher dispatcher{controller};
  Result<std::unique_ptr<JournalRecorder>> recorder{nullptr};

  Restored() { recorder = JournalRecorder::Restore(g_path, controller, dispatcher, kPolicy); }
};

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace butterfly;
  // tmpfs: the journal's fsyncs cost nothing there.
  g_dir = "/dev/shm/butterfly-fuzz-journal-" + std::to_string(getpid());
  std::filesystem::create_directories(g_dir);
  g_path = g_dir + "/state.journal";
  std::atexit([] { std::filesystem::remove_all(g_dir); });
  SetLogLevel(LogLevel::kNone);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  if (size < 1) return -1;
  std::string file;
  if (data[0] & 1) {
    file = StateJournal::Header();
    fuzz::ByteReader in(data + 1, size - 1);
    while (!in.empty()) {
      size_t length = in.U8();
      std::string_view record = in.Take(length);
      if (!record.empty()) StateJournal::AppendFrame(&file, record);
    }
  } else {
    file.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  }
  WriteFile(file);
  std::string dump;
  {
    Restored first;
    if (!first.recorder.ok()) {
      FUZZ_CHECK(first.recorder.error().find(g_path) != std::string::npos,
                 "the error does not name the file: %s", first.recorder.error().c_str());
      FUZZ_CHECK(fuzz::DumpModel(first.controller).empty(), "a refused journal left a state");
      return 0;
    }
    fuzz::CheckDataplaneMatchesModel(first.controller, first.dataplane);
    dump = fuzz::DumpModel(first.controller);
  }
  // The journal as compacted at start holds the same state.
  Restored second;
  FUZZ_CHECK(second.recorder.ok(), "the compacted journal does not open: %s",
             second.recorder.error().c_str());
  FUZZ_CHECK(fuzz::DumpModel(second.controller) == dump,
             "the compacted journal restores another state:\n%s\nbefore:\n%s",
             fuzz::DumpModel(second.controller).c_str(), dump.c_str());
  return 0;
}
