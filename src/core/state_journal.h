// The state file of butterflyd: an append-only journal of opaque records (the API requests that
// changed the state), each framed with its length and a CRC-32C so that a torn or corrupt tail
// (power loss mid-write) is detected, cut off, and everything before it kept.
//
// File layout (integers little-endian):
//   header  "BFJOURNL" | u32 format version (1) | u32 CRC-32C of the 12 bytes before it
//   record  u32 payload length (> 0) | u32 CRC-32C of the length bytes and the payload | payload
//   zeros   to the end of the file: space written ahead of the records (below)
//
// The file is extended with zeros a megabyte at a time, ahead of the records: appending inside
// space that is already written makes each fdatasync flush the data alone, not the file's new size
// and extents too, which halves its cost on ext4 (the same reason databases pre-zero their write-
// ahead logs). Zeros after the last record are therefore the normal end of a journal; a length of
// 0 followed by anything else is a torn write.
//
// Compaction replaces the whole file by a snapshot (records that rebuild the state from nothing)
// written to a temporary file, fsync'd, renamed over the journal, and the directory fsync'd: at
// every instant the path holds either the old journal or the new one, never a mix. Later changes
// are appended to the snapshot, so a replay is always "apply every record in order".
//
// This class knows nothing of what a record means (src/api/journal_recorder.h does).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.h"

namespace butterfly {

// What opening an existing journal found.
struct JournalLoad {
  std::vector<std::string> records;  // every intact record, in order
  bool created = false;              // there was no journal: an empty one was made
  uint64_t dropped_bytes = 0;        // torn or corrupt tail, cut off
  uint64_t dropped_at = 0;           // offset where the tail started
  std::string dropped_reason;        // e.g. "record 12 is cut short"
  bool removed_temporary = false;    // a compaction interrupted by a crash left its temp file
};

// The journal's integers: little-endian u32s.
inline void PutU32(std::string* out, uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) out->push_back(static_cast<char>(value >> shift));
}
inline uint32_t GetU32(std::string_view bytes, size_t at) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

struct JournalPolicy {
  // Compact once the records exceed `compact_ratio` times the last snapshot, and at least
  // `compact_min_bytes` (so a small state is not rewritten after every few changes; replaying
  // 4 MiB of records at start takes well under a second).
  uint64_t compact_ratio = 4;
  uint64_t compact_min_bytes = 4 << 20;
  // The file is extended by this much zeroed space at a time.
  uint64_t preallocate_bytes = 1 << 20;
  // Requests received together that add up to this many bytes are journaled before they are
  // applied, and synced while they are (src/api/journal_recorder.h): a big batch then pays
  // little more than its own work, not its work and then a whole sync.
  uint64_t write_ahead_bytes = 16 << 10;
};

class StateJournal {
 public:
  static constexpr char kMagic[8] = {'B', 'F', 'J', 'O', 'U', 'R', 'N', 'L'};
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kHeaderBytes = 16;
  static constexpr size_t kRecordHeaderBytes = 8;

  // Opens the journal at `path`, creating it (and its directory, mode 0700) when missing, and
  // reads every intact record into `load`. A torn or corrupt tail is truncated (and reported in
  // `load`). Fails, with a message naming the file, when the path cannot be read or written, is
  // not a Butterfly journal, or is in use by another process (an exclusive lock on PATH.lock).
  static Result<std::unique_ptr<StateJournal>> Open(const std::string& path, JournalLoad* load,
                                                    JournalPolicy policy = {});
  ~StateJournal();
  StateJournal(const StateJournal&) = delete;
  StateJournal& operator=(const StateJournal&) = delete;

  // Buffers one record; nothing reaches the file before Sync. Records are numbered from 0 in
  // the order they were appended to this file: the number of this one is record_count() before.
  void Append(std::string_view record);
  bool HasPending() const { return !pending_.empty(); }
  uint64_t record_count() const { return record_count_; }

  // Writes every buffered record with one write and one fdatasync (group commit). On failure the
  // journal is marked broken: what reached the disk is unknown, so only a Rewrite may follow.
  Status Sync();

  // Sync, on the journal's own thread, so the caller can work meanwhile. Records appended after
  // this call wait for a later Sync. Nothing else that writes (Sync, Rewrite) may run before
  // FinishBackgroundSync, which waits for it and returns what Sync would have.
  void SyncInBackground();
  Status FinishBackgroundSync();

  // Replaces the journal by `records` (a snapshot of the whole state); buffered records are
  // dropped, the snapshot holding their effect. On failure the previous file is left untouched.
  Status Rewrite(const std::vector<std::string>& records);

  // True after a failed Sync, until a Rewrite succeeds.
  bool broken() const { return broken_; }
  // True when the file has grown enough past the last snapshot to be worth a Rewrite.
  bool WantsCompaction() const;
  // Bytes of header and records (the zeroed space written ahead is not counted).
  uint64_t size_bytes() const { return size_; }
  const std::string& path() const { return path_; }
  const JournalPolicy& policy() const { return policy_; }

  // Frames `record` (length, checksum, payload) at the end of `out`.
  static void AppendFrame(std::string* out, std::string_view record);
  // The 16-byte header of a journal of the current format.
  static std::string Header();

 private:
  StateJournal(std::string path, int fd, int lock_fd, uint64_t size, uint64_t file_size,
               JournalPolicy policy);
  // Extends the zeroed space past `end` when the records are about to reach it; false when the
  // file cannot grow (the records are then appended without space ahead, which still works).
  bool Preallocate(uint64_t end);
  // Sync's work: writes `bytes` after the records, fdatasync, and clears `bytes`.
  Status WriteDurably(std::string& bytes);
  void RunSyncer();

  std::string path_;
  int fd_;
  int lock_fd_;
  uint64_t size_;           // header and records known to be durable in the file
  uint64_t file_size_;      // size_ plus the zeroed space after it
  uint64_t snapshot_size_;  // size right after the last Rewrite (or at open)
  JournalPolicy policy_;
  std::string pending_;
  uint64_t record_count_ = 0;
  bool broken_ = false;

  // The background sync. Only the syncer thread touches the file between SyncInBackground and
  // FinishBackgroundSync; the mutex hands `in_flight_` and the outcome over.
  std::thread syncer_;
  std::mutex syncer_mutex_;
  std::condition_variable syncer_wake_;
  std::string in_flight_;
  bool sync_requested_ = false;
  bool sync_started_ = false;  // by SyncInBackground, not yet finished by FinishBackgroundSync
  bool stop_syncer_ = false;
  Status in_flight_result_;
};

}  // namespace butterfly
