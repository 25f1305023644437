#include "api/journal_recorder.h"

#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <utility>

#include "api/proto_convert.h"
#include "core/log.h"

namespace butterfly {
namespace {

// Replay sends the journal through the Dispatcher in batches of this many requests.
constexpr size_t kReplayBatch = 1000;
// Replay failures beyond this many are counted, not logged one by one.
constexpr size_t kReplayFailuresLogged = 10;

// The first two bytes of the records that are not a plain request (see journal_recorder.h).
constexpr char kTypedRecord = '\0';
constexpr char kFrameRecord = 1;
constexpr char kRefusedRecord = 2;

bool IsTyped(std::string_view record, char type) {
  return record.size() >= 2 && record[0] == kTypedRecord && record[1] == type;
}

struct ReplayOutcome {
  size_t applied = 0;
  size_t failed = 0;
};

void LogReplayFailure(ReplayOutcome& outcome, const std::string& what, const std::string& why) {
  if (++outcome.failed <= kReplayFailuresLogged) {
    LOG_ERROR("state: %s no longer applies and is dropped: %s", what.c_str(), why.c_str());
  }
}

// The refusal records, read first because they follow the frames they are about: for each frame
// record (by number), its messages to skip.
std::map<size_t, std::set<uint32_t>> RefusedMessages(const std::vector<std::string>& records,
                                                     ReplayOutcome& outcome) {
  std::map<size_t, std::set<uint32_t>> refused;
  for (size_t i = 0; i < records.size(); ++i) {
    std::string_view record = records[i];
    if (!IsTyped(record, kRefusedRecord)) continue;
    uint32_t back = record.size() >= 6 ? GetU32(record, 2) : 0;
    if ((record.size() - 2) % 4 != 0 || back == 0 || back > i ||
        !IsTyped(records[i - back], kFrameRecord)) {
      LogReplayFailure(outcome, "record " + std::to_string(i + 1),
                       "it lists refused messages of no frame record");
      continue;
    }
    for (size_t at = 6; at < record.size(); at += 4) refused[i - back].insert(GetU32(record, at));
  }
  return refused;
}

ReplayOutcome Replay(const std::vector<std::string>& records, Dispatcher& dispatcher) {
  ReplayOutcome outcome;
  std::map<size_t, std::set<uint32_t>> refused = RefusedMessages(records, outcome);
  proto::Messages batch;
  std::vector<std::string> sources;  // where each message of the batch comes from, for the logs
  auto apply = [&] {
    if (batch.messages_size() == 0) return;
    proto::Messages answer = dispatcher.Handle(batch);
    for (int i = 0; i < answer.messages_size(); ++i) {
      const proto::Message& message = answer.messages(i);
      const auto& status = message.message_0().response().status();
      if (message.has_error()) {
        LogReplayFailure(outcome, sources[i], proto::Error_Code_Name(message.error().code()));
      } else if (!status.status()) {
        LogReplayFailure(outcome, sources[i], status.error().description());
      } else {
        ++outcome.applied;
      }
    }
    batch.Clear();
    sources.clear();
  };
  auto add = [&](MessageV0_Request request, std::string source) {
    proto::Message* message = batch.add_messages();
    message->set_revision(0);
    *message->mutable_message_0()->mutable_request() = std::move(request);
    sources.push_back(std::move(source));
    if (static_cast<size_t>(batch.messages_size()) == kReplayBatch) apply();
  };
  for (size_t i = 0; i < records.size(); ++i) {
    std::string_view record = records[i];
    std::string source = "record " + std::to_string(i + 1);
    if (IsTyped(record, kRefusedRecord)) continue;
    if (IsTyped(record, kFrameRecord)) {
      proto::Messages frame;
      proto::Error::Code refusal{};
      // A frame refused as a whole when it was received changed nothing then, nor now.
      if (!dispatcher.DecodeFrame(record.substr(2), &frame, &refusal) || frame.has_encrypted()) {
        continue;
      }
      static const std::set<uint32_t> kNone;
      auto listed = refused.find(i);
      const std::set<uint32_t>& skip = listed != refused.end() ? listed->second : kNone;
      for (int m = 0; m < frame.messages_size(); ++m) {
        if (!IsStateChange(frame.messages(m)) || skip.contains(static_cast<uint32_t>(m))) continue;
        add(std::move(*frame.mutable_messages(m)->mutable_message_0()->mutable_request()),
            source + " message " + std::to_string(m + 1));
      }
      continue;
    }
    MessageV0_Request request;
    if (record.empty() || record[0] == kTypedRecord || !request.ParseFromString(records[i])) {
      LogReplayFailure(outcome, source, "it does not decode as a request");
      continue;
    }
    add(std::move(request), source);
  }
  apply();
  return outcome;
}

}  // namespace

std::vector<MessageV0_Request> SnapshotRequests(const Controller& controller) {
  std::vector<MessageV0_Request> requests;
  const Model& model = controller.model();
  requests.reserve(model.vnics().size() + model.security_groups().size());
  for (const auto& [id, vnic] : model.vnics()) {
    *requests.emplace_back().mutable_nic_add() = VnicToProto(vnic, controller.PathOf(vnic));
  }
  for (const auto& [id, sg] : model.security_groups()) {
    *requests.emplace_back().mutable_sg_add() = SgToProto(sg);
  }
  // Configuration the dataplane keeps apart from vnics and groups: without it a compaction would
  // forget head-end replication peers and static remote MACs.
  for (const auto& [vni, peers] : model.vni_peers()) {
    MessageV0_VniPeers* request = requests.emplace_back().mutable_vni_peers_set();
    request->set_vni(vni);
    for (const IpAddress& peer : peers) request->add_peer(peer.ToString());
  }
  for (const auto& [key, vtep] : model.static_fdb()) {
    MessageV0_FdbEntry* request = requests.emplace_back().mutable_fdb_add();
    request->set_vni(key.first);
    request->set_mac(key.second.ToString());
    request->set_vtep(vtep.ToString());
  }
  return requests;
}

JournalRecorder::JournalRecorder(std::unique_ptr<StateJournal> journal, Controller& controller)
    : journal_(std::move(journal)), controller_(controller) {}

Result<std::unique_ptr<JournalRecorder>> JournalRecorder::Restore(const std::string& path,
                                                                  Controller& controller,
                                                                  Dispatcher& dispatcher,
                                                                  JournalPolicy policy) {
  auto start = std::chrono::steady_clock::now();
  JournalLoad load;
  auto journal = StateJournal::Open(path, &load, policy);
  if (!journal) return Error{journal.error()};
  if (load.removed_temporary) {
    LOG_INFO("state: removed %s.tmp, left by a compaction that a stop interrupted", path.c_str());
  }
  if (load.created) {
    LOG_INFO("state: no state file at %s: starting empty and journaling from now on", path.c_str());
  }
  if (load.dropped_bytes > 0) {
    LOG_WARNING(
        "state: %s: dropped the last %llu bytes from offset %llu (%s: a write torn by a "
        "crash or power loss, or corruption); restoring the %zu intact record(s) before it",
        path.c_str(), static_cast<unsigned long long>(load.dropped_bytes),
        static_cast<unsigned long long>(load.dropped_at), load.dropped_reason.c_str(),
        load.records.size());
  }
  if (!load.records.empty()) {
    // A big journal takes a while: say what start-up is doing.
    LOG_INFO("state: replaying %zu records of %s", load.records.size(), path.c_str());
  }
  ReplayOutcome outcome = Replay(load.records, dispatcher);
  controller.FlushPolicies();
  double milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!load.created) {
    LOG_INFO("state: restored %zu vnics and %zu security groups from %zu records of %s in %.0f ms",
             controller.model().vnics().size(), controller.model().security_groups().size(),
             outcome.applied, path.c_str(), milliseconds);
  }
  std::unique_ptr<JournalRecorder> recorder(new JournalRecorder(std::move(*journal), controller));
  if (outcome.failed > 0) {
    // Compaction is about to drop the records that failed: keep the journal as it was for a
    // person to look at.
    std::string kept = path + ".replay-failed";
    unlink(kept.c_str());
    bool linked = link(path.c_str(), kept.c_str()) == 0;
    LOG_ERROR("state: %zu of %zu records did not apply%s", outcome.failed, load.records.size(),
              linked ? ("; the journal as it was is kept in " + kept).c_str() : "");
  }
  // Start from a snapshot: replay is fastest from one, and the file's size is known again.
  if (!load.created) {
    if (auto compacted = recorder->Compact(); !compacted) {
      LOG_WARNING("state: cannot compact %s at start (%s); appending to it as it is", path.c_str(),
                  compacted.error().c_str());
    }
  }
  return recorder;
}

void JournalRecorder::Record(const MessageV0_Request& request) {
  scratch_.clear();
  request.SerializeToString(&scratch_);
  journal_->Append(scratch_);
}

std::vector<uint64_t> JournalRecorder::WriteAhead(const std::vector<std::string_view>& frames) {
  size_t bytes = 0;
  for (std::string_view frame : frames) bytes += frame.size();
  // A broken journal is rewritten whole at the commit: nothing is appended to it meanwhile.
  if (frames.empty() || bytes < journal_->policy().write_ahead_bytes || journal_->broken()) {
    return {};
  }
  std::vector<uint64_t> numbers;
  for (std::string_view frame : frames) {
    numbers.push_back(journal_->record_count());
    scratch_.assign({kTypedRecord, kFrameRecord});
    scratch_.append(frame);
    journal_->Append(scratch_);
  }
  journal_->SyncInBackground();
  writing_ahead_ = true;
  return numbers;
}

void JournalRecorder::RecordRefused(uint64_t frame_record, const std::vector<uint32_t>& messages) {
  scratch_.assign({kTypedRecord, kRefusedRecord});
  PutU32(&scratch_, static_cast<uint32_t>(journal_->record_count() - frame_record));
  for (uint32_t message : messages) PutU32(&scratch_, message);
  journal_->Append(scratch_);
}

Status JournalRecorder::Commit() {
  bool wrote_ahead = std::exchange(writing_ahead_, false);
  // A failure leaves the journal broken, which the rewrite below repairs.
  if (wrote_ahead) (void)journal_->FinishBackgroundSync();
  if (journal_->broken()) {
    bool changed = wrote_ahead || journal_->HasPending();
    Status repaired = Compact();
    if (repaired) {
      LOG_INFO("state: %s rewritten from the state in memory after the earlier failure",
               journal_->path().c_str());
    }
    // A batch that changed nothing does not depend on the disk.
    return changed ? repaired : Ok();
  }
  if (!wrote_ahead && !journal_->HasPending()) return Ok();
  if (auto synced = journal_->Sync(); !synced) return synced;  // the refusals, after a write-ahead
  if (journal_->WantsCompaction()) {
    if (auto compacted = Compact(); !compacted) {
      // The journal itself is intact: the batch is durable, the file just stays long.
      LOG_WARNING("state: compaction failed (%s); the journal grows until it succeeds",
                  compacted.error().c_str());
    }
  }
  return Ok();
}

Status JournalRecorder::Compact() {
  std::vector<MessageV0_Request> requests = SnapshotRequests(controller_);
  std::vector<std::string> records(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) requests[i].SerializeToString(&records[i]);
  uint64_t before = journal_->size_bytes();
  if (auto rewritten = journal_->Rewrite(records); !rewritten) return rewritten;
  LOG_DEBUG("state: compacted %s from %llu to %llu bytes (%zu records)", journal_->path().c_str(),
            static_cast<unsigned long long>(before),
            static_cast<unsigned long long>(journal_->size_bytes()), records.size());
  return Ok();
}

Result<std::unique_ptr<JournalRecorder>> StartPersistence(const std::string& state_file,
                                                          Controller& controller,
                                                          Dispatcher& dispatcher) {
  if (state_file == "none") {
    LOG_WARNING("state: --state-file none: the state is lost when butterflyd stops");
    return std::unique_ptr<JournalRecorder>();
  }
  auto recorder = JournalRecorder::Restore(state_file, controller, dispatcher);
  if (!recorder) {
    return Fail(recorder.error() +
                " (butterflyd does not start on an empty state in place of one it cannot read: "
                "fix or move the file, or use --state-file none)");
  }
  dispatcher.set_recorder(recorder->get());
  return recorder;
}

}  // namespace butterfly
