#include "core/state_journal.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/crc32c.h"

namespace butterfly {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The background syncer works a few microseconds at a time (start a write, reap it) while the
// thread that woke it is busy applying a batch, often on the same core (EAL pins the daemon's
// main thread). Linux's EEVDF scheduler lets a woken thread wait for the running one's slice to
// end: measured here, 0.7-1.7 ms, as long as the batch itself, so the sync did not overlap it.
// Asking for a short slice (sched_attr.sched_runtime, honoured since Linux 6.12) makes the
// wakeup preempt: 10 us. Best effort: older kernels ignore it, and failing changes nothing else.
// The thread's policy and nice value are kept (an administrator's chrt or Nice= stays in force).
void RequestShortSchedulingSlice() {
  if (sched_getscheduler(0) != SCHED_OTHER) return;
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);  // this thread's: Linux keeps one per thread
  if (errno != 0) return;
  struct SchedAttr {  // struct sched_attr of <linux/sched/types.h>, which clashes with glibc's
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
  } attr{};
  attr.size = sizeof(attr);
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = nice;
  attr.sched_runtime = 100'000;  // ns
  (void)syscall(SYS_sched_setattr, 0, &attr, 0);
}

// write() until everything is written or it fails.
bool WriteAll(int fd, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t written = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    data.remove_prefix(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return true;
}

Result<std::string> ReadAll(int fd, const std::string& path) {
  struct stat info {};
  if (fstat(fd, &info) != 0) return Fail(Errno("cannot stat state file '" + path + "'"));
  if (!S_ISREG(info.st_mode)) return Fail("state file '" + path + "' is not a regular file");
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Fail(Errno("cannot read state file '" + path + "'"));
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

// The directory entry of a renamed or created file is durable only once its directory is synced.
Status SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(Errno("cannot open directory '" + dir + "'"));
  int synced = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  if (synced != 0) return Fail(Errno("cannot sync directory '" + dir + "'"));
  return Ok();
}

// Creates the state file's directory when missing, readable by root only: the journal holds the
// whole network configuration of the host.
Status EnsureDirectory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) return Ok();
  std::error_code error;
  if (std::filesystem::exists(dir, error)) return Ok();
  std::filesystem::create_directories(dir, error);
  if (error)
    return Fail("cannot create the state directory '" + dir.string() + "': " + error.message());
  if (chmod(dir.c_str(), 0700) != 0) return Fail(Errno("cannot chmod 0700 '" + dir.string() + "'"));
  return Ok();
}

// Writes `bytes` as a complete new file at `path` through PATH.tmp: the caller gets an open
// descriptor on the new file, which from then on is the journal.
Result<int> ReplaceFile(const std::string& path, std::string_view bytes) {
  std::string temporary = path + ".tmp";
  int fd = open(temporary.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(Errno("cannot create '" + temporary + "'"));
  std::string error;
  if (!WriteAll(fd, bytes, 0)) {
    error = Errno("cannot write '" + temporary + "'");
  } else if (fsync(fd) != 0) {
    error = Errno("cannot sync '" + temporary + "'");
  } else if (rename(temporary.c_str(), path.c_str()) != 0) {
    error = Errno("cannot rename '" + temporary + "' to '" + path + "'");
  }
  if (!error.empty()) {
    close(fd);
    unlink(temporary.c_str());
    return Fail(error);
  }
  if (auto synced = SyncDirectoryOf(path); !synced) {
    close(fd);
    return Fail(synced.error());
  }
  return fd;
}

// Checks the header and splits the records; stops at the first record that is cut short or whose
// checksum is wrong.
Status ParseJournal(std::string_view bytes, const std::string& path, JournalLoad* load,
                    uint64_t* intact_size) {
  std::string not_ours = "state file '" + path + "' is not a Butterfly state journal";
  if (bytes.size() < StateJournal::kHeaderBytes) {
    return Fail(not_ours + " (" + std::to_string(bytes.size()) + " bytes, shorter than a header)");
  }
  if (bytes.substr(0, 8) != std::string_view(StateJournal::kMagic, 8)) {
    return Fail(not_ours + " (it does not start with BFJOURNL)");
  }
  if (GetU32(bytes, 12) != Crc32c(bytes.substr(0, 12))) {
    return Fail("state file '" + path + "': its header is corrupt (checksum mismatch)");
  }
  if (uint32_t version = GetU32(bytes, 8); version != StateJournal::kFormatVersion) {
    return Fail("state file '" + path + "' has journal format " + std::to_string(version) +
                "; this butterflyd reads format " + std::to_string(StateJournal::kFormatVersion));
  }
  size_t at = StateJournal::kHeaderBytes;
  while (at < bytes.size()) {
    std::string number = "record " + std::to_string(load->records.size() + 1);
    size_t left = bytes.size() - at;
    if (left < StateJournal::kRecordHeaderBytes) {
      load->dropped_reason = number + " is cut short in its header";
      break;
    }
    uint32_t length = GetU32(bytes, at);
    if (length == 0) {
      // Zeros to the end: the space written ahead, the normal end of the records.
      if (bytes.find_first_not_of('\0', at) == std::string_view::npos) {
        *intact_size = at;
        return Ok();
      }
      load->dropped_reason = number + " has length 0 and data follows (a torn write)";
      break;
    }
    if (length > left - StateJournal::kRecordHeaderBytes) {
      load->dropped_reason = number + " is cut short (" + std::to_string(length) +
                             " bytes announced, " +
                             std::to_string(left - StateJournal::kRecordHeaderBytes) + " present)";
      break;
    }
    std::string_view payload = bytes.substr(at + StateJournal::kRecordHeaderBytes, length);
    if (GetU32(bytes, at + 4) != Crc32c(payload, Crc32c(bytes.substr(at, 4)))) {
      load->dropped_reason = number + " fails its checksum";
      break;
    }
    load->records.emplace_back(payload);
    at += StateJournal::kRecordHeaderBytes + length;
  }
  *intact_size = at;
  if (at < bytes.size()) {
    load->dropped_at = at;
    load->dropped_bytes = bytes.size() - at;
  }
  return Ok();
}

}  // namespace

std::string StateJournal::Header() {
  std::string header(kMagic, sizeof(kMagic));
  PutU32(&header, kFormatVersion);
  PutU32(&header, Crc32c(header));
  return header;
}

void StateJournal::AppendFrame(std::string* out, std::string_view record) {
  size_t start = out->size();
  PutU32(out, static_cast<uint32_t>(record.size()));
  uint32_t crc = Crc32c(record, Crc32c(std::string_view(*out).substr(start, 4)));
  PutU32(out, crc);
  out->append(record);
}

Result<std::unique_ptr<StateJournal>> StateJournal::Open(const std::string& path, JournalLoad* load,
                                                         JournalPolicy policy) {
  *load = JournalLoad{};
  if (auto made = EnsureDirectory(path); !made) return Error{made.error()};

  // Two daemons appending to one journal would interleave their records.
  std::string lock_path = path + ".lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return Fail(Errno("cannot open the state lock file '" + lock_path + "'"));
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::string message = errno == EWOULDBLOCK
                              ? "state file '" + path + "' is in use by another butterflyd"
                              : Errno("cannot lock '" + lock_path + "'");
    close(lock_fd);
    return Fail(message);
  }
  auto fail = [lock_fd](const std::string& message) {
    close(lock_fd);
    return Fail(message);
  };

  std::string temporary = path + ".tmp";
  if (unlink(temporary.c_str()) == 0) load->removed_temporary = true;

  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    auto created = ReplaceFile(path, Header());
    if (!created) return fail(created.error());
    load->created = true;
    return std::unique_ptr<StateJournal>(
        new StateJournal(path, *created, lock_fd, kHeaderBytes, kHeaderBytes, policy));
  }
  if (fd < 0) return fail(Errno("cannot open state file '" + path + "'"));

  auto bytes = ReadAll(fd, path);
  uint64_t intact_size = 0;
  Status parsed = bytes ? ParseJournal(*bytes, path, load, &intact_size) : Error{bytes.error()};
  if (!parsed) {
    close(fd);
    return fail(parsed.error());
  }
  if (load->dropped_bytes > 0) {
    // Cut the tail off now: records appended after garbage would never be read back.
    if (ftruncate(fd, static_cast<off_t>(intact_size)) != 0 || fsync(fd) != 0) {
      std::string message = Errno("state file '" + path + "': cannot truncate its torn tail");
      close(fd);
      return fail(message);
    }
  }
  uint64_t file_size = load->dropped_bytes > 0 ? intact_size : bytes->size();
  std::unique_ptr<StateJournal> journal(
      new StateJournal(path, fd, lock_fd, intact_size, file_size, policy));
  journal->record_count_ = load->records.size();
  return journal;
}

StateJournal::StateJournal(std::string path, int fd, int lock_fd, uint64_t size, uint64_t file_size,
                           JournalPolicy policy)
    : path_(std::move(path)),
      fd_(fd),
      lock_fd_(lock_fd),
      size_(size),
      file_size_(file_size),
      snapshot_size_(size),
      policy_(policy) {}

StateJournal::~StateJournal() {
  if (syncer_.joinable()) {
    (void)FinishBackgroundSync();
    {
      std::lock_guard lock(syncer_mutex_);
      stop_syncer_ = true;
    }
    syncer_wake_.notify_one();
    syncer_.join();
  }
  close(fd_);
  close(lock_fd_);  // releases the lock
}

void StateJournal::Append(std::string_view record) {
  AppendFrame(&pending_, record);
  ++record_count_;
}

Status StateJournal::Sync() { return WriteDurably(pending_); }

void StateJournal::SyncInBackground() {
  if (!syncer_.joinable()) syncer_ = std::thread([this] { RunSyncer(); });
  {
    std::lock_guard lock(syncer_mutex_);
    in_flight_.swap(pending_);
    sync_requested_ = true;
    sync_started_ = true;
  }
  pending_.clear();
  syncer_wake_.notify_one();
}

Status StateJournal::FinishBackgroundSync() {
  std::unique_lock lock(syncer_mutex_);
  if (!sync_started_) return Ok();
  syncer_wake_.wait(lock, [this] { return !sync_requested_; });
  sync_started_ = false;
  return in_flight_result_;
}

void StateJournal::RunSyncer() {
  RequestShortSchedulingSlice();
  std::unique_lock lock(syncer_mutex_);
  while (true) {
    syncer_wake_.wait(lock, [this] { return sync_requested_ || stop_syncer_; });
    if (!sync_requested_) return;
    lock.unlock();
    // in_flight_ and the file are this thread's alone until sync_requested_ is cleared.
    Status result = WriteDurably(in_flight_);
    lock.lock();
    in_flight_result_ = result;
    sync_requested_ = false;
    syncer_wake_.notify_all();
  }
}

Status StateJournal::WriteDurably(std::string& bytes) {
  if (broken_) return Fail("state journal '" + path_ + "' needs a rewrite after a failed write");
  if (bytes.empty()) return Ok();
  Preallocate(size_ + bytes.size());
  std::string error;
  if (broken_) {
    error = Errno("cannot sync state journal '" + path_ + "'");
  } else if (!WriteAll(fd_, bytes, size_)) {
    error = Errno("cannot write state journal '" + path_ + "'");
  } else if (fdatasync(fd_) != 0) {
    error = Errno("cannot sync state journal '" + path_ + "'");
  }
  if (!error.empty()) {
    // A failed fdatasync leaves the page cache in an unknown state, and a short write may have
    // left a partial record: neither may be appended to. The next Rewrite starts afresh.
    broken_ = true;
    bytes.clear();
    return Fail(error);
  }
  size_ += bytes.size();
  file_size_ = std::max(file_size_, size_);
  bytes.clear();
  return Ok();
}

bool StateJournal::Preallocate(uint64_t end) {
  if (end <= file_size_ || policy_.preallocate_bytes == 0) return true;
  uint64_t chunk = policy_.preallocate_bytes;
  uint64_t new_size = (end + chunk - 1) / chunk * chunk;
  std::string zeros(new_size - file_size_, '\0');
  // One full fsync makes the new size and extents durable now, so that the fdatasyncs of the
  // records written into this space have only data to flush.
  if (!WriteAll(fd_, zeros, file_size_)) return false;  // no room: append without space ahead
  if (fsync(fd_) != 0) {
    broken_ = true;  // what the file holds is now unknown
    return false;
  }
  file_size_ = new_size;
  return true;
}

Status StateJournal::Rewrite(const std::vector<std::string>& records) {
  (void)FinishBackgroundSync();  // its records are in the snapshot; the old file is replaced
  std::string bytes = Header();
  for (const std::string& record : records) AppendFrame(&bytes, record);
  auto fd = ReplaceFile(path_, bytes);
  if (!fd) return Error{fd.error()};
  close(fd_);
  fd_ = *fd;
  size_ = bytes.size();
  file_size_ = size_;
  snapshot_size_ = size_;
  pending_.clear();
  record_count_ = records.size();
  broken_ = false;
  return Ok();
}

bool StateJournal::WantsCompaction() const {
  return size_ > std::max(policy_.compact_min_bytes, policy_.compact_ratio * snapshot_size_);
}

}  // namespace butterfly
