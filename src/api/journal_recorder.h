// Makes the API state durable: every request that changed the state is appended to the
// state journal (src/core/state_journal.h) and synced once per batch before its answer leaves,
// and at start the journal is replayed through the Dispatcher, the code path of live requests.
//
// A record is one of:
// - a MessageV0 request that changed the state (its encoding never starts with a zero byte);
// - 0x00 0x01, then a request frame as received (a serialized proto::Messages), journaled ahead:
//   before it was applied, so that its sync ran while it was (ChangeRecorder::WriteAhead). A
//   replay applies its state changes (IsStateChange) but those a later record lists as refused;
// - 0x00 0x02, then little-endian u32s: how many records back the frame is, and the indexes of
//   its state changes that did not apply when it was received.
//
// It lives in src/api rather than src/core because its records are serialized MessageV0 requests
// and its snapshots are built with the API's conversion functions (proto_convert.h), exactly as
// `butterfly dump` does; core stays free of the generated protocol code.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/dispatcher.h"
#include "core/controller.h"
#include "core/result.h"
#include "core/state_journal.h"

namespace butterfly {

// The requests that rebuild the current state from nothing: one nic_add per vnic, then one sg_add
// per security group (what `butterfly dump` prints).
std::vector<MessageV0_Request> SnapshotRequests(const Controller& controller);

class JournalRecorder final : public ChangeRecorder {
 public:
  // Opens (or creates) the journal at `path` and replays it through `dispatcher`, logging what it
  // restored and what it had to drop; then compacts it. Call before the API socket is bound and
  // before dispatcher.set_recorder(). Fails when the file cannot be used (the daemon must not
  // start on an empty state in place of one it could not read).
  static Result<std::unique_ptr<JournalRecorder>> Restore(const std::string& path,
                                                          Controller& controller,
                                                          Dispatcher& dispatcher,
                                                          JournalPolicy policy = {});

  void Record(const MessageV0_Request& request) override;
  // Write-ahead for groups of at least JournalPolicy::write_ahead_bytes.
  std::vector<uint64_t> WriteAhead(const std::vector<std::string_view>& frames) override;
  void RecordRefused(uint64_t frame_record, const std::vector<uint32_t>& messages) override;
  // Syncs the batch's records (one fdatasync; after a write-ahead, waits for its sync and syncs
  // the refusals, if any). After a failed sync, rewrites a full snapshot instead, which brings
  // the file back in line with the state in memory.
  Status Commit() override;

  const StateJournal& journal() const { return *journal_; }

 private:
  JournalRecorder(std::unique_ptr<StateJournal> journal, Controller& controller);
  Status Compact();

  std::unique_ptr<StateJournal> journal_;
  Controller& controller_;
  std::string scratch_;
  bool writing_ahead_ = false;  // a write-ahead sync runs until Commit
};

// butterflyd's entry point: nullptr when `state_file` is "none" (no persistence).
Result<std::unique_ptr<JournalRecorder>> StartPersistence(const std::string& state_file,
                                                          Controller& controller,
                                                          Dispatcher& dispatcher);

}  // namespace butterfly
