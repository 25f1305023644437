// Persistence through the Dispatcher: what the journal records, what a restart restores, and the
// answer a client gets when the journal cannot be written.
#include "api/journal_recorder.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "core/controller.h"

namespace butterfly {
namespace {

namespace fs = std::filesystem;

// One daemon's worth of state: controller, dispatcher and (optionally) the journal.
struct Daemon {
  DisabledDataplane dataplane{"no dataplane in this test"};
  Controller controller{"/tmp/sockets", dataplane};
  Dispatcher dispatcher{controller};
  std::unique_ptr<JournalRecorder> recorder;

  // Sends one frame as the API socket does (HandleGroup).
  proto::Messages Send(const std::string& text) { return Group({text})[0]; }
  // Sends the requests (text of MessageV0.Request each) as one batch.
  proto::Messages Batch(const std::vector<std::string>& requests) {
    std::string text;
    for (const auto& r : requests)
      text += "messages { revision: 0 message_0 { request { " + r + " } } } ";
    return Send(text);
  }
  bool Ok(const std::string& request) {
    proto::Messages answer = Batch({request});
    return answer.messages_size() == 1 && !answer.messages(0).has_error() &&
           answer.messages(0).message_0().response().status().status();
  }
  std::string Dump() { return Batch({"nic_details: \"\"", "sg_details: \"\""}).DebugString(); }
  // Sends frames (text of proto::Messages each) as a group received together, as the API socket
  // does; returns their answers.
  std::vector<proto::Messages> Group(const std::vector<std::string>& texts) {
    std::vector<std::string> frames;
    for (const auto& text : texts) {
      proto::Messages request;
      EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request)) << text;
      frames.push_back(request.SerializeAsString());
    }
    std::vector<std::string> answers =
        dispatcher.HandleGroup(std::vector<std::string_view>(frames.begin(), frames.end()));
    std::vector<proto::Messages> decoded(answers.size());
    for (size_t i = 0; i < answers.size(); ++i) EXPECT_TRUE(decoded[i].ParseFromString(answers[i]));
    return decoded;
  }
};

// The text of a frame holding `requests` (text of MessageV0.Request each).
std::string FrameText(const std::vector<std::string>& requests) {
  std::string text;
  for (const auto& r : requests) {
    text += "messages { revision: 0 message_0 { request { " + r + " } } } ";
  }
  return text;
}

bool AllOk(const proto::Messages& answer) {
  for (const auto& message : answer.messages()) {
    if (message.has_error() || !message.message_0().response().status().status()) return false;
  }
  return true;
}

// Every frame journaled ahead of being applied (the threshold at 0 bytes).
constexpr JournalPolicy kAlwaysAhead{.write_ahead_bytes = 0};

class JournalRecorderTest : public ::testing::Test {
 public:  // for the helpers that run one test under several policies
  void SetUp() override {
    char pattern[] = "/tmp/butterfly-recorder-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/state.journal";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Daemon> Start(JournalPolicy policy = {}) {
    auto daemon = std::make_unique<Daemon>();
    auto recorder = JournalRecorder::Restore(path_, daemon->controller, daemon->dispatcher, policy);
    EXPECT_TRUE(recorder.ok()) << (recorder.ok() ? "" : recorder.error());
    if (recorder.ok()) {
      daemon->recorder = std::move(*recorder);
      daemon->dispatcher.set_recorder(daemon->recorder.get());
    }
    return daemon;
  }

  // Writes a journal of `records` at the state path, as a daemon would have left it.
  void WriteJournal(const std::vector<std::string>& records) {
    fs::remove(path_);
    JournalLoad load;
    auto journal = StateJournal::Open(path_, &load);
    ASSERT_TRUE(journal.ok());
    for (const std::string& record : records) (*journal)->Append(record);
    ASSERT_TRUE((*journal)->Sync().ok());
  }
  static std::string SgAdd(const std::string& id) {
    MessageV0_Request request;
    request.mutable_sg_add()->set_id(id);
    return request.SerializeAsString();
  }

  static std::vector<std::string> SomeChanges() {
    return {
        "nic_add { id: \"vnic_1\" mac: \"52:54:00:00:00:01\" vni: 42 ip: \"198.18.0.1\" "
        "security_group: \"sg-web\" ip_anti_spoof: true }",
        "nic_add { id: \"vnic_2\" mac: \"52:54:00:00:00:02\" vni: 42 type: TAP }",
        "nic_add { id: \"vnic_3\" mac: \"52:54:00:00:00:03\" vni: 7 type: VHOST_USER_CLIENT "
        "path: \"/run/qemu/vnic_3.sock\" }",
        "sg_rule_add { sg_id: \"sg-web\" rule { direction: INBOUND protocol: 6 port_start: 80 "
        "port_end: 80 cidr { address: \"0.0.0.0\" mask_size: 0 } } }",
        "sg_rule_add { sg_id: \"sg-web\" rule { direction: OUTBOUND protocol: -1 "
        "security_group: \"sg-db\" } }",
        "sg_member_add { sg_id: \"sg-db\" member: \"198.18.0.7\" }",
        "sg_member_add { sg_id: \"sg-db\" member: \"2001:db8::7\" }",
        "nic_update { id: \"vnic_2\" ip: \"198.18.0.2\" security_group: \"sg-db\" }",
        "nic_del: \"vnic_1\"",
        "sg_member_del { sg_id: \"sg-db\" member: \"198.18.0.7\" }",
    };
  }

  std::string dir_;
  std::string path_;
};

TEST_F(JournalRecorderTest, RestartRestoresExactlyTheDumpBeforeIt) {
  std::string before;
  {
    auto daemon = Start();
    for (const auto& change : SomeChanges()) ASSERT_TRUE(daemon->Ok(change)) << change;
    before = daemon->Dump();
  }
  auto restarted = Start();
  EXPECT_EQ(restarted->Dump(), before);
  EXPECT_NE(before.find("/run/qemu/vnic_3.sock"), std::string::npos)
      << "a client-mode vnic keeps QEMU's socket";
  // And again, now from the snapshot the first restart compacted the journal into.
  restarted.reset();
  EXPECT_EQ(Start()->Dump(), before);
}

TEST_F(JournalRecorderTest, RefusedRequestsAndReadsAreNotJournaled) {
  auto daemon = Start();
  uint64_t empty = daemon->recorder->journal().size_bytes();
  EXPECT_FALSE(daemon->Ok("nic_add { id: \"bad\" mac: \"52:54:00:zz:00:01\" vni: 1 }"));
  EXPECT_FALSE(daemon->Ok("sg_member_add { sg_id: \"sg-x\" member: \"300.1.1.1\" }"));
  EXPECT_TRUE(daemon->Ok("nic_list: true"));
  EXPECT_TRUE(daemon->Ok("sg_details: \"\""));
  EXPECT_EQ(daemon->recorder->journal().size_bytes(), empty);
  EXPECT_TRUE(daemon->Ok("sg_add { id: \"sg-x\" }"));
  EXPECT_GT(daemon->recorder->journal().size_bytes(), empty);
  daemon.reset();
  std::string dump = Start()->Dump();
  EXPECT_EQ(dump.find("\"bad\""), std::string::npos);
  EXPECT_NE(dump.find("sg-x"), std::string::npos);
}

TEST_F(JournalRecorderTest, ABatchIsOneSyncAndKeepsOnlyItsValidMessages) {
  auto daemon = Start();
  proto::Messages answer =
      daemon->Batch({"sg_add { id: \"a\" }", "nic_add { id: \"x\" mac: \"bad\" vni: 1 }",
                     "sg_add { id: \"b\" }"});
  ASSERT_EQ(answer.messages_size(), 3);
  EXPECT_FALSE(answer.messages(1).message_0().response().status().status());
  std::string before = daemon->Dump();
  daemon.reset();
  EXPECT_EQ(Start()->Dump(), before);
}

// Frames journaled ahead, mixed with reads, refused changes and frames recorded after (small
// ones), restore exactly what applied, before and after the start's compaction.
TEST_F(JournalRecorderTest, WriteAheadGroupsRestoreExactlyWhatApplied) {
  JournalPolicy policy{.write_ahead_bytes = 400};  // groups of at least 400 bytes: ahead
  std::string before;
  uint64_t records = 0;
  {
    auto daemon = Start(policy);
    std::vector<std::string> changes = SomeChanges();
    changes.insert(changes.begin() + 3, "nic_add { id: \"refused\" mac: \"bad\" vni: 1 }");
    changes.insert(changes.begin() + 5, "sg_list: true");
    changes.push_back("sg_member_add { sg_id: \"sg-db\" member: \"300.1.1.1\" }");
    auto answers = daemon->Group({FrameText(changes), FrameText({"sg_add { id: \"sg-small\" }"})});
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_FALSE(AllOk(answers[0])) << "two of its changes are refused";
    EXPECT_TRUE(AllOk(answers[1]));
    // Two frame records and one listing the first frame's refused changes.
    EXPECT_EQ(daemon->recorder->journal().record_count(), 3u);
    // A small group is recorded after, one record per change that applied.
    auto small = daemon->Group({FrameText({"sg_del: \"sg-small\"", "nic_del: \"refused\""})});
    EXPECT_EQ(daemon->recorder->journal().record_count(), 5u);
    // A group of one big frame that changes nothing but app_config: journaled, never replayed.
    std::vector<std::string> reads(60, "nic_list: true");
    reads.push_back("app_config { log_level: \"info\" }");
    EXPECT_TRUE(AllOk(daemon->Group({FrameText(reads)})[0]));
    EXPECT_TRUE(daemon->Ok("nic_del: \"vnic_2\""));
    before = daemon->Dump();
    records = daemon->recorder->journal().record_count();
  }
  EXPECT_EQ(records, 7u);
  EXPECT_EQ(before.find("refused"), std::string::npos);
  EXPECT_EQ(before.find("sg-small"), std::string::npos);
  EXPECT_EQ(before.find("vnic_2"), std::string::npos);
  EXPECT_NE(before.find("vnic_3"), std::string::npos);
  auto restarted = Start(policy);
  EXPECT_EQ(restarted->Dump(), before);
  restarted.reset();
  EXPECT_EQ(Start(policy)->Dump(), before) << "from the snapshot the first restart wrote";
}

// A refusal record makes the replay skip a change that would apply now (it did not when it was
// received: a refusal the replay cannot reproduce, e.g. a failure of the dataplane). Without the
// refusal record (a crash between the two syncs), the whole frame is replayed: its answer never
// left, so either outcome is one the client may see.
TEST_F(JournalRecorderTest, ReplaySkipsTheMessagesAFrameRecordsAsRefused) {
  std::string frame;
  {
    proto::Messages request;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
        FrameText({"sg_add { id: \"was-refused\" }", "nic_list: true", "sg_add { id: \"applied\" }",
                   "app_quit: true"}),
        &request));
    frame = request.SerializeAsString();
  }
  std::string frame_record = std::string("\0\1", 2) + frame;
  std::string refusal(std::string("\0\2", 2));
  PutU32(&refusal, 1);  // the record just before
  PutU32(&refusal, 0);  // its first message
  for (bool with_refusal : {true, false}) {
    WriteJournal(with_refusal ? std::vector{frame_record, refusal} : std::vector{frame_record});
    auto daemon = Start();
    std::string dump = daemon->Dump();
    EXPECT_NE(dump.find("\"applied\""), std::string::npos) << with_refusal;
    EXPECT_EQ(dump.find("was-refused") == std::string::npos, with_refusal) << dump;
    EXPECT_FALSE(daemon->dispatcher.quit_requested()) << "app_quit is not a change to replay";
    EXPECT_FALSE(fs::exists(path_ + ".replay-failed")) << "everything replayed applied";
  }
}

TEST_F(JournalRecorderTest, RefusalRecordOfNoFrameIsReportedNotApplied) {
  std::string refusal(std::string("\0\2", 2));
  PutU32(&refusal, 1);  // points at the request: not a frame
  PutU32(&refusal, 0);
  WriteJournal({SgAdd("kept"), refusal, std::string("\0\7unknown", 9)});
  EXPECT_NE(Start()->Dump().find("kept"), std::string::npos);
  EXPECT_TRUE(fs::exists(path_ + ".replay-failed")) << "two records did not apply";
}

TEST_F(JournalRecorderTest, CompactionDuringAStreamKeepsTheState) {
  JournalPolicy eager{.compact_ratio = 2, .compact_min_bytes = 2000};
  auto daemon = Start(eager);
  for (int i = 0; i < 300; ++i) {
    std::string sg = "sg-" + std::to_string(i % 7);
    ASSERT_TRUE(daemon->Ok("sg_member_add { sg_id: \"" + sg + "\" member: \"10.0." +
                           std::to_string(i / 200) + "." + std::to_string(i % 200) + "\" }"));
    if (i % 3 == 0) {
      ASSERT_TRUE(daemon->Ok("sg_member_del { sg_id: \"" + sg + "\" member: \"10.0." +
                             std::to_string(i / 200) + "." + std::to_string(i % 200) + "\" }"));
    }
  }
  // 400 records of about 40 bytes each would be 16 kB; compaction keeps it near the state's size.
  EXPECT_LT(daemon->recorder->journal().size_bytes(), 8000u);
  std::string before = daemon->Dump();
  daemon.reset();
  EXPECT_EQ(Start(eager)->Dump(), before);
}

TEST_F(JournalRecorderTest, PeersAndStaticMacsSurviveRestartAndCompaction) {
  std::string before;
  {
    auto daemon = Start();
    ASSERT_TRUE(daemon->Ok("vni_peers_set { vni: 42 peer: \"198.18.1.1\" peer: \"198.18.1.2\" }"));
    ASSERT_TRUE(daemon->Ok("vni_peers_set { vni: 7 peer: \"198.18.1.3\" }"));
    ASSERT_TRUE(daemon->Ok("vni_peers_set { vni: 7 peer: \"\" }"));  // cleared again
    ASSERT_TRUE(daemon->Ok("fdb_add { vni: 42 mac: \"52:54:00:00:10:01\" vtep: \"198.18.1.1\" }"));
    ASSERT_TRUE(daemon->Ok("fdb_add { vni: 42 mac: \"52:54:00:00:10:02\" vtep: \"198.18.1.2\" }"));
    ASSERT_TRUE(daemon->Ok("fdb_del { vni: 42 mac: \"52:54:00:00:10:02\" }"));
    before = daemon->Batch({"fdb_list { }"}).DebugString();
  }
  EXPECT_NE(before.find("198.18.1.2"), std::string::npos) << before;
  EXPECT_NE(before.find("52:54:00:00:10:01"), std::string::npos) << before;
  EXPECT_EQ(before.find("52:54:00:00:10:02"), std::string::npos) << before;
  EXPECT_EQ(before.find("198.18.1.3"), std::string::npos) << before;
  // The first restart replays the journal and compacts it into a snapshot; the second restores
  // from that snapshot alone.
  EXPECT_EQ(Start()->Batch({"fdb_list { }"}).DebugString(), before);
  EXPECT_EQ(Start()->Batch({"fdb_list { }"}).DebugString(), before);
}

TEST_F(JournalRecorderTest, TornTailIsDroppedAndTheRestRestored) {
  uint64_t records_end = 0;
  {
    auto daemon = Start();
    ASSERT_TRUE(daemon->Ok("sg_add { id: \"first\" }"));
    ASSERT_TRUE(daemon->Ok("sg_add { id: \"second\" }"));
    records_end = daemon->recorder->journal().size_bytes();
  }
  fs::resize_file(path_, records_end - 3);  // the last record loses its last bytes
  auto daemon = Start();
  std::string dump = daemon->Dump();
  EXPECT_NE(dump.find("first"), std::string::npos);
  EXPECT_EQ(dump.find("second"), std::string::npos);
  EXPECT_TRUE(daemon->Ok("sg_add { id: \"third\" }"));
  daemon.reset();
  dump = Start()->Dump();
  EXPECT_NE(dump.find("third"), std::string::npos) << "appends after the repaired tail are read";
}

TEST_F(JournalRecorderTest, UnreadableJournalIsAnErrorNotAnEmptyState) {
  std::ofstream(path_) << "this is not a journal\n";
  Daemon daemon;
  auto recorder = JournalRecorder::Restore(path_, daemon.controller, daemon.dispatcher);
  ASSERT_FALSE(recorder.ok());
  EXPECT_NE(recorder.error().find("is not a Butterfly state journal"), std::string::npos);
}

TEST_F(JournalRecorderTest, RecordsThatNoLongerApplyAreReportedAndTheJournalKept) {
  MessageV0_Request refused;
  refused.mutable_sg_member_add()->set_sg_id("x");
  refused.mutable_sg_member_add()->set_member("not an ip");
  WriteJournal({SgAdd("kept"), "\xff\xff not a request", refused.SerializeAsString()});
  auto daemon = Start();
  std::string dump = daemon->Dump();
  EXPECT_NE(dump.find("kept"), std::string::npos);
  EXPECT_TRUE(fs::exists(path_ + ".replay-failed"));
  EXPECT_GT(fs::file_size(path_ + ".replay-failed"), fs::file_size(path_));
}

// The answer to a batch whose changes could not be made durable must not claim success; the next
// batch rewrites the journal from memory, so a restart then restores what the daemon was serving.
void FailedJournalWriteAnswersInternalErrorThenRecovers(JournalRecorderTest& test,
                                                        JournalPolicy policy) {
  auto daemon = test.Start(policy);
  ASSERT_TRUE(daemon->Ok("sg_add { id: \"durable\" }"));

  std::signal(SIGXFSZ, SIG_IGN);
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &original), 0);
  rlimit full = original;
  full.rlim_cur = daemon->recorder->journal().size_bytes();  // not one more byte
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  proto::Messages answer = daemon->Batch({"sg_add { id: \"not-durable\" }"});
  ASSERT_EQ(answer.messages_size(), 1);
  EXPECT_EQ(answer.messages(0).error().code(), proto::Error::INTERNAL_ERROR);
  EXPECT_TRUE(daemon->Ok("nic_list: true")) << "reads still answer";
  EXPECT_EQ(daemon->Batch({"sg_add { id: \"also-not\" }"}).messages(0).error().code(),
            proto::Error::INTERNAL_ERROR)
      << "no change is acknowledged while the journal cannot be written";
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &original), 0);

  ASSERT_TRUE(daemon->Ok("sg_add { id: \"after\" }"));
  EXPECT_FALSE(daemon->recorder->journal().broken());
  std::string before = daemon->Dump();
  daemon.reset();
  EXPECT_EQ(test.Start(policy)->Dump(), before);
}

TEST_F(JournalRecorderTest, FailedJournalWriteAnswersInternalErrorThenRecovers) {
  FailedJournalWriteAnswersInternalErrorThenRecovers(*this, JournalPolicy{});
}

TEST_F(JournalRecorderTest, FailedWriteAheadAnswersInternalErrorThenRecovers) {
  FailedJournalWriteAnswersInternalErrorThenRecovers(*this, kAlwaysAhead);
}

TEST_F(JournalRecorderTest, SnapshotIsWhatDumpPrints) {
  auto daemon = Start();
  for (const auto& change : SomeChanges()) ASSERT_TRUE(daemon->Ok(change));
  std::vector<MessageV0_Request> snapshot = SnapshotRequests(daemon->controller);
  proto::Messages details = daemon->Batch({"nic_details: \"\"", "sg_details: \"\""});
  const auto& nics = details.messages(0).message_0().response().nic_details();
  const auto& sgs = details.messages(1).message_0().response().sg_details();
  ASSERT_EQ(snapshot.size(), static_cast<size_t>(nics.size() + sgs.size()));
  for (int i = 0; i < nics.size(); ++i) {
    MessageV0_Nic nic = nics[i];
    nic.clear_state();  // live state, as `butterfly dump` leaves out
    EXPECT_EQ(snapshot[i].nic_add().DebugString(), nic.DebugString());
  }
  for (int i = 0; i < sgs.size(); ++i) {
    EXPECT_EQ(snapshot[nics.size() + i].sg_add().DebugString(), sgs[i].DebugString());
  }
}

}  // namespace
}  // namespace butterfly
