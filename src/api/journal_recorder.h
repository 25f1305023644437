// Makes the API state durable (F-PERSIST): every request that changed the state is appended to the
// state journal (src/core/state_journal.h) and synced once per batch before its answer leaves,
// and at start the journal is replayed through the Dispatcher, the code path of live requests.
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
  // Syncs the batch's records (one fdatasync). After a failed sync, rewrites a full snapshot
  // instead, which brings the file back in line with the state in memory.
  Status Commit() override;

  const StateJournal& journal() const { return *journal_; }

 private:
  JournalRecorder(std::unique_ptr<StateJournal> journal, Controller& controller);
  Status Compact();

  std::unique_ptr<StateJournal> journal_;
  Controller& controller_;
  std::string scratch_;
};

// butterflyd's entry point: nullptr when `state_file` is "none" (no persistence).
Result<std::unique_ptr<JournalRecorder>> StartPersistence(const std::string& state_file,
                                                          Controller& controller,
                                                          Dispatcher& dispatcher);

}  // namespace butterfly
