// The API's answers to good and bad frames, driven without a socket.
#include "api/dispatcher.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "core/controller.h"
#include "core/log.h"

namespace butterfly {
namespace {

class DispatcherTest : public ::testing::Test {
 protected:
  proto::Messages Send(const std::string& text) {
    proto::Messages request;
    google::protobuf::TextFormat::Parser parser;
    parser.AllowPartialMessage(true);  // so tests can send messages missing required fields
    EXPECT_TRUE(parser.ParseFromString(text, &request)) << text;
    return SendBytes(request.SerializePartialAsString());
  }
  proto::Messages SendBytes(const std::string& bytes) {
    proto::Messages answer;
    EXPECT_TRUE(answer.ParseFromString(dispatcher.HandleFrame(bytes)))
        << "every answer must decode as Messages";
    return answer;
  }
  // One request, wrapped; returns its response.
  MessageV0_Response One(const std::string& request_text) {
    proto::Messages answer =
        Send("messages { revision: 0 message_0 { request { " + request_text + " } } }");
    EXPECT_EQ(answer.messages_size(), 1);
    return answer.messages(0).message_0().response();
  }
  static std::string Error(const MessageV0_Response& response) {
    return response.status().status() ? "" : response.status().error().description();
  }
  std::string Dump() {
    return One("nic_details: \"\"").DebugString() + One("sg_details: \"\"").DebugString();
  }

  DisabledDataplane dataplane{"no dataplane in this test"};
  Controller controller{"/tmp/sockets", dataplane};
  Dispatcher dispatcher{controller, DispatcherLimits{1 << 20, 32}};
};

TEST_F(DispatcherTest, GarbageBytesGetAParseErrorAnswer) {
  proto::Messages answer = SendBytes(std::string("\xff\xff\xff\x0fgarbage", 11));
  ASSERT_EQ(answer.messages_size(), 1);
  EXPECT_EQ(answer.messages(0).error().code(), proto::Error::PARSE_ERROR);
  EXPECT_EQ(answer.messages(0).revision(), kProtocolRevision);
}

TEST_F(DispatcherTest, EmptyBatchGetsEmptyRequest) {
  EXPECT_EQ(SendBytes("").messages(0).error().code(), proto::Error::EMPTY_REQUEST);
}

TEST_F(DispatcherTest, MessageWithoutMessageV0IsVersionNotManaged) {
  proto::Messages answer = Send("messages { revision: 7 }");
  ASSERT_EQ(answer.messages_size(), 1);
  EXPECT_EQ(answer.messages(0).error().code(), proto::Error::VERSION_NOT_MANAGED);
}

TEST_F(DispatcherTest, EncryptedEnvelopeIsRejected) {
  proto::Messages answer = Send("encrypted { aes256cbc_sha512: \"abc\" }");
  EXPECT_EQ(answer.messages(0).error().code(), proto::Error::REJECTED);
}

TEST_F(DispatcherTest, HugeFrameIsRejectedUnparsed) {
  EXPECT_EQ(SendBytes(std::string((1 << 20) + 1, '\0')).messages(0).error().code(),
            proto::Error::REJECTED);
}

TEST_F(DispatcherTest, DeeplyNestedFrameIsAParseError) {
  // Unknown group fields nested 200 deep: a valid encoding no Butterfly message has.
  std::string bytes = "\x0a\x00";  // keeps the frame non-empty
  std::string nested;
  for (int i = 0; i < 200; ++i) nested += "\xfb\x07";  // start group, field 127
  for (int i = 0; i < 200; ++i) nested += "\xfc\x07";  // end group
  EXPECT_EQ(SendBytes(nested).messages(0).error().code(), proto::Error::PARSE_ERROR);
}

TEST_F(DispatcherTest, AnyRevisionIsAcceptedAndAnswersCarry6AndTheId) {
  for (int revision : {0, 6, 99}) {
    proto::Messages answer =
        Send("messages { revision: " + std::to_string(revision) +
             " message_0 { message_id: \"abc\" request { nic_list: true } } }");
    ASSERT_EQ(answer.messages_size(), 1);
    EXPECT_EQ(answer.messages(0).revision(), 6u);
    EXPECT_EQ(answer.messages(0).message_0().message_id(), "abc");
    EXPECT_TRUE(answer.messages(0).message_0().response().status().status());
  }
}

TEST_F(DispatcherTest, ErrorsSayWhatAndWhere) {
  EXPECT_EQ(Error(One("nic_add { id: \"vnic_3\" mac: \"52:54:00:zz:34:02\" vni: 1 }")),
            "nic vnic_3: mac '52:54:00:zz:34:02' is not a MAC address");
  EXPECT_EQ(Error(One("nic_add { id: \"vnic_3\" mac: \"52:54:00:12:34:02\" vni: 16777216 }")),
            "nic vnic_3: vni 16777216 is not below 2^24 (16777216)");
  EXPECT_EQ(
      Error(One("nic_add { id: \"vnic_3\" mac: \"52:54:00:12:34:02\" vni: 1 ip: \"10.0.0\" }")),
      "nic vnic_3: ip '10.0.0' is not an IPv4 or IPv6 address");
  EXPECT_EQ(
      Error(One("sg_rule_add { sg_id: \"sg-web\" rule { direction: INBOUND protocol: 6 "
                "port_start: 90 port_end: 80 cidr { address: \"0.0.0.0\" mask_size: 0 } } }")),
      "sg sg-web: rule (inbound protocol 6 ports 90-80 from 0.0.0.0/0): port_start is "
      "greater than port_end");
  EXPECT_EQ(Error(One("sg_rule_add { sg_id: \"sg-web\" rule { direction: INBOUND protocol: 300 "
                      "cidr { address: \"0.0.0.0\" mask_size: 0 } } }")),
            "sg sg-web: rule (inbound protocol 300 from 0.0.0.0/0): protocol 300 is not -1 (all) "
            "or 0-255");
  EXPECT_EQ(Error(One("sg_rule_add { sg_id: \"sg-web\" rule { direction: INBOUND protocol: 1 "
                      "cidr { address: \"10.0.0.0\" mask_size: 33 } } }")),
            "sg sg-web: rule: cidr 10.0.0.0/33: mask size must be 0-32");
  EXPECT_EQ(Error(One("sg_member_add { sg_id: \"sg-web\" member: \"fe80::zz\" }")),
            "sg sg-web: member 'fe80::zz' is not an IPv4 or IPv6 address");
  EXPECT_EQ(Error(One("nic_details: \"ghost\"")), "nic ghost: no such nic");
  EXPECT_EQ(Error(One("nic_stats: \"ghost\"")), "nic ghost: no such nic");
  EXPECT_EQ(Error(One("nic_export: \"ghost\"")), "nic ghost: no such nic");
  EXPECT_EQ(Error(One("sg_rule_list: \"ghost\"")), "sg ghost: no such security group");
  EXPECT_EQ(Error(One("sg_member_list: \"ghost\"")), "sg ghost: no such security group");
  EXPECT_EQ(Error(One("sg_details: \"ghost\"")), "sg ghost: no such security group");
  EXPECT_EQ(Error(One("app_config { log_level: \"loud\" }")),
            "log level 'loud' is not one of none, error, warning, info, debug");
  EXPECT_TRUE(controller.model().vnics().empty());
  EXPECT_TRUE(controller.model().security_groups().empty()) << "failed calls change nothing";
}

TEST_F(DispatcherTest, MissingRequiredFieldsAreAnsweredPerMessage) {
  proto::Messages answer = Send(
      "messages { revision: 0 message_0 { request { nic_add { id: \"a\" vni: 1 } } } }"
      "messages { revision: 0 message_0 { request { nic_list: true } } }");
  ASSERT_EQ(answer.messages_size(), 2);
  EXPECT_EQ(answer.messages(0).message_0().response().status().error().description(),
            "missing required field(s): request.nic_add.mac");
  EXPECT_TRUE(answer.messages(1).message_0().response().status().status());
}

TEST_F(DispatcherTest, ExactlyOneOperationPerRequest) {
  EXPECT_EQ(Error(One("nic_list: true sg_list: true")),
            "request sets 2 operations (nic_list, sg_list); set exactly one");
  EXPECT_EQ(Error(One("")), "request sets no operation this server knows");
}

TEST_F(DispatcherTest, BatchAppliesValidMessagesAndAnswersEachInOrder) {
  proto::Messages answer = Send(R"(
    messages { revision: 0 message_0 { request { nic_add { id: "b" mac: "52:54:00:00:00:02" vni: 2 } } } }
    messages { revision: 0 message_0 { request { nic_add { id: "x" mac: "bad" vni: 2 } } } }
    messages { revision: 0 message_0 { request { nic_add { id: "a" mac: "52:54:00:00:00:01" vni: 1 } } } }
    messages { revision: 0 message_0 { request { nic_list: true } } })");
  ASSERT_EQ(answer.messages_size(), 4);
  EXPECT_EQ(answer.messages(0).message_0().response().nic_add().path(),
            "/tmp/sockets/qemu-vhost-b");
  EXPECT_FALSE(answer.messages(1).message_0().response().status().status());
  EXPECT_TRUE(answer.messages(2).message_0().response().status().status());
  const auto& list = answer.messages(3).message_0().response().nic_list();
  ASSERT_EQ(list.size(), 2);
  EXPECT_EQ(list[0], "a") << "lists come in id order";
  EXPECT_EQ(list[1], "b");
}

TEST_F(DispatcherTest, SgIdsAreAcceptedBeforeTheGroupExists) {
  EXPECT_EQ(Error(One("nic_add { id: \"a\" mac: \"52:54:00:00:00:01\" vni: 1 "
                      "security_group: \"later\" }")),
            "");
  EXPECT_EQ(Error(One("nic_update { id: \"a\" security_group: \"even-later\" }")), "");
  EXPECT_EQ(One("nic_details: \"a\"").nic_details(0).security_group(0), "even-later");
}

TEST_F(DispatcherTest, NicUpdateReplacesListsAndEmptyStringClears) {
  One("nic_add { id: \"a\" mac: \"52:54:00:00:00:01\" vni: 1 ip: \"198.18.0.1\" "
      "security_group: \"s1\" }");
  One("nic_update { id: \"a\" ip: \"198.18.0.2\" ip: \"2001:db8::2\" }");
  auto nic = One("nic_details: \"a\"").nic_details(0);
  ASSERT_EQ(nic.ip_size(), 2);
  EXPECT_EQ(nic.ip(1), "2001:db8::2");
  EXPECT_EQ(nic.security_group(0), "s1") << "a list not sent is kept";
  One("nic_update { id: \"a\" ip: \"\" }");
  EXPECT_EQ(One("nic_details: \"a\"").nic_details(0).ip_size(), 0);
  EXPECT_EQ(Error(One("nic_update { id: \"a\" ip: \"\" ip: \"198.18.0.1\" }")),
            "nic a: ip list contains an empty value");
}

TEST_F(DispatcherTest, NicDetailsKeepsTheTypeAndSaysTheLinkIsNotConnected) {
  One("nic_add { id: \"t\" mac: \"52:54:00:00:00:01\" vni: 1 type: TAP }");
  auto nic = One("nic_details: \"t\"").nic_details(0);
  EXPECT_EQ(nic.type(), MessageV0_NicType_TAP);
  EXPECT_EQ(nic.path(), "t");
  EXPECT_EQ(nic.state().link(), "disabled");
}

// Found by tests/fuzz/fuzz_api: the update of an existing vnic stayed after its fw_data failed.
TEST_F(DispatcherTest, NicAddWhoseFlowsFailLeavesTheVnicAsItWas) {
  One("nic_add { id: \"a\" mac: \"52:54:00:00:00:01\" vni: 1 ip: \"198.18.0.1\" }");
  std::string before = Dump();
  // This dataplane imports no flows: the nic_add is refused.
  EXPECT_NE(Error(One("nic_add { id: \"a\" mac: \"52:54:00:00:00:01\" vni: 2 "
                      "fw_data { data: \"flows\" } }")),
            "");
  EXPECT_EQ(Dump(), before) << "a refused nic_add changes nothing";
  EXPECT_NE(Error(One("nic_add { id: \"b\" mac: \"52:54:00:00:00:02\" vni: 2 "
                      "fw_data { data: \"flows\" } }")),
            "");
  EXPECT_EQ(Dump(), before);
}

TEST_F(DispatcherTest, StatusHasCountersAndAGraph) {
  One("nic_add { id: \"vnic_1\" mac: \"52:54:00:00:00:01\" vni: 42 security_group: \"sg-web\" }");
  One("sg_rule_add { sg_id: \"sg-web\" rule { direction: INBOUND protocol: 6 port_start: 22 "
      "port_end: 22 security_group: \"sg-admin\" } }");
  proto::Messages request;
  auto status = One("app_status: true").app_status();
  EXPECT_GE(status.request_counter(), 3u);
  EXPECT_GE(status.current_date(), status.start_date());
  EXPECT_NE(status.dataplane().find("disabled"), std::string::npos);
  const std::string& dot = status.graph_dot();
  EXPECT_EQ(dot.rfind("digraph butterfly {", 0), 0u);
  for (const char* needle :
       {"\"nic:vnic_1\"", "\"vni:42\"", "\"sg:sg-web\"", "\"sg:sg-admin\"", "members"}) {
    EXPECT_NE(dot.find(needle), std::string::npos) << needle;
  }
}

TEST_F(DispatcherTest, AppQuitIsAnsweredThenStops) {
  EXPECT_FALSE(dispatcher.quit_requested());
  EXPECT_EQ(Error(One("app_quit: true")), "");
  EXPECT_TRUE(dispatcher.quit_requested());
}

TEST_F(DispatcherTest, AppConfigChangesTheLogLevel) {
  EXPECT_EQ(Error(One("app_config { log_level: \"debug\" }")), "");
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);
  EXPECT_EQ(Error(One("app_config { log_level: \"error\" }")), "");
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
}

class Recorder final : public ChangeRecorder {
 public:
  void Record(const MessageV0_Request& request) override {
    recorded.push_back(request.DebugString());
  }
  std::vector<uint64_t> WriteAhead(const std::vector<std::string_view>& frames) override {
    if (!write_ahead) return {};
    std::vector<uint64_t> numbers;
    for (std::string_view frame : frames) {
      numbers.push_back(100 + written_ahead.size());
      written_ahead.emplace_back(frame);
    }
    return numbers;
  }
  void RecordRefused(uint64_t frame_record, const std::vector<uint32_t>& messages) override {
    refused.emplace_back(frame_record, messages);
  }
  Status Commit() override {
    ++commits;
    return Ok();
  }
  bool write_ahead = false;
  std::vector<std::string> recorded;
  std::vector<std::string> written_ahead;
  std::vector<std::pair<uint64_t, std::vector<uint32_t>>> refused;
  int commits = 0;
};

std::string Frame(const std::string& text) {
  proto::Messages request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request)) << text;
  return request.SerializeAsString();
}

TEST_F(DispatcherTest, RecordsOnlySuccessfulChangesAndCommitsOncePerBatch) {
  Recorder recorder;
  dispatcher.set_recorder(&recorder);
  Send(R"(
    messages { revision: 0 message_0 { request { sg_member_add { sg_id: "s" member: "198.18.0.1" } } } }
    messages { revision: 0 message_0 { request { sg_member_add { sg_id: "s" member: "bad" } } } }
    messages { revision: 0 message_0 { request { sg_list: true } } })");
  EXPECT_EQ(recorder.recorded.size(), 1u);
  EXPECT_EQ(recorder.commits, 1);
}

// Written ahead, a frame is in the journal before it is applied: nothing is recorded after, and
// what the replay must skip is exactly its state changes that did not apply (reads, app_* and
// malformed messages are never replayed, so they are not listed).
TEST_F(DispatcherTest, WriteAheadListsTheStateChangesThatDidNotApply) {
  Recorder recorder;
  recorder.write_ahead = true;
  dispatcher.set_recorder(&recorder);
  std::string first = Frame(R"(
    messages { revision: 0 message_0 { request { sg_add { id: "s" } } } }
    messages { revision: 0 message_0 { request { sg_member_add { sg_id: "s" member: "bad" } } } }
    messages { revision: 0 message_0 { request { sg_list: true } } }
    messages { revision: 0 message_0 { request { nic_add { id: "x" mac: "bad" vni: 1 } } } }
    messages { revision: 0 message_0 { request { app_config { log_level: "nonsense" } } } }
    messages { revision: 0 message_0 { request { sg_member_add { sg_id: "s" member: "198.18.0.1" } } } })");
  std::string second = Frame(R"(
    messages { revision: 0 message_0 { request { sg_del: "s" } } })");
  std::string garbage("\xff\xff\xff\x0fgarbage", 11);
  std::vector<std::string> answers = dispatcher.HandleGroup({first, second, garbage});
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(recorder.written_ahead, (std::vector<std::string>{first, second, garbage}));
  EXPECT_TRUE(recorder.recorded.empty());
  ASSERT_EQ(recorder.refused.size(), 1u)
      << "the second frame applied whole, the third is no change";
  EXPECT_EQ(recorder.refused[0].first, 100u);
  EXPECT_EQ(recorder.refused[0].second, (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(recorder.commits, 1);
  EXPECT_EQ(Dump().find("sg_details"), std::string::npos) << "the second frame deleted s";
}

TEST_F(DispatcherTest, IsStateChangeIsTheOperationsThatChangeTheModel) {
  auto message = [](const std::string& request) {
    proto::Message parsed;
    google::protobuf::TextFormat::Parser parser;
    parser.AllowPartialMessage(true);
    EXPECT_TRUE(
        parser.ParseFromString("revision: 0 message_0 { request { " + request + " } }", &parsed));
    return parsed;
  };
  for (const char* change :
       {"nic_add { id: \"a\" mac: \"52:54:00:00:00:01\" vni: 1 }", "nic_update { id: \"a\" }",
        "nic_del: \"a\"", "sg_add { id: \"s\" }", "sg_del: \"s\"",
        "sg_rule_add { sg_id: \"s\" rule { direction: INBOUND protocol: 6 } }",
        "sg_rule_del { sg_id: \"s\" rule { direction: INBOUND protocol: 6 } }",
        "sg_member_add { sg_id: \"s\" member: \"198.18.0.1\" }",
        "sg_member_del { sg_id: \"s\" member: \"198.18.0.1\" }", "vni_peers_set { vni: 1 }",
        "fdb_add { vni: 1 mac: \"52:54:00:00:00:01\" vtep: \"198.18.0.9\" }",
        "fdb_del { vni: 1 mac: \"52:54:00:00:00:01\" }"}) {
    EXPECT_TRUE(IsStateChange(message(change))) << change;
  }
  for (const char* other :
       {"nic_list: true", "sg_details: \"\"", "app_status: true", "app_quit: true",
        "app_config { log_level: \"debug\" }", "dp_stats: true", "nic_del: \"a\" sg_del: \"s\""}) {
    EXPECT_FALSE(IsStateChange(message(other))) << other;
  }
  EXPECT_FALSE(IsStateChange(proto::Message())) << "no message_0";
}

TEST_F(DispatcherTest, DumpIsStableAcrossIdenticalHistories) {
  One("sg_add { id: \"sg\" member: \"2001:db8::1\" member: \"198.18.0.1\" }");
  std::string first = Dump();
  One("sg_add { id: \"sg\" member: \"198.18.0.1\" member: \"2001:db8::1\" }");
  EXPECT_EQ(Dump(), first) << "same content in another order is the same state";
}

// Protobuf `string` fields must be UTF-8: proto2 parsing lets any bytes through, and they would
// come back in answers (which strict decoders refuse), socket names and the CLI's JSON.
TEST_F(DispatcherTest, StringFieldsThatAreNotUtf8AreRefusedAndChangeNothing) {
  std::string before = Dump();
  auto send = [&](auto fill) {
    proto::Messages request;
    proto::Message* message = request.add_messages();
    message->set_revision(0);
    message->mutable_message_0()->set_message_id("m1");
    fill(message->mutable_message_0()->mutable_request());
    proto::Messages answer = SendBytes(request.SerializeAsString());
    EXPECT_EQ(answer.messages_size(), 1);
    return answer.messages(0).message_0();
  };
  MessageV0 answer = send([](MessageV0_Request* request) {
    MessageV0_Nic* nic = request->mutable_nic_add();
    nic->set_id(
        std::string("\xff\xfe"
                    "FPZ"));
    nic->set_mac("52:54:00:00:00:01");
    nic->set_vni(42);
  });
  EXPECT_FALSE(answer.response().status().status());
  EXPECT_EQ(answer.response().status().error().description(),
            "request.nic_add.id is not valid UTF-8 (byte 0 of '\\xff\\xfeFPZ')");
  EXPECT_EQ(answer.message_id(), "m1");
  answer = send([](MessageV0_Request* request) {
    request->mutable_sg_rule_add()->set_sg_id("sg");
    MessageV0_Rule* rule = request->mutable_sg_rule_add()->mutable_rule();
    rule->set_direction(MessageV0_Rule::INBOUND);
    rule->set_protocol(6);
    rule->set_port_start(80);
    rule->set_port_end(80);
    rule->mutable_cidr()->set_address(std::string("198.18.0.1\xc0\x80", 12));  // overlong NUL
    rule->mutable_cidr()->set_mask_size(32);
  });
  EXPECT_EQ(answer.response().status().error().description(),
            "request.sg_rule_add.rule.cidr.address is not valid UTF-8 (byte 10 of "
            "'198.18.0.1\\xc0\\x80')");
  answer = send([](MessageV0_Request* request) {
    request->mutable_sg_add()->set_id("sg");
    request->mutable_sg_add()->add_member("198.18.0.1");
    request->mutable_sg_add()->add_member(std::string("\xed\xa0\x80", 3));  // a surrogate
  });
  EXPECT_EQ(answer.response().status().error().description(),
            "request.sg_add.member[1] is not valid UTF-8 (byte 0 of '\\xed\\xa0\\x80')");
  EXPECT_EQ(Dump(), before);

  // An id of the message that is not text is not echoed; the request is refused all the same.
  proto::Messages request;
  proto::Message* message = request.add_messages();
  message->set_revision(0);
  message->mutable_message_0()->set_message_id(std::string("\x80", 1));
  message->mutable_message_0()->mutable_request()->set_nic_list(true);
  proto::Messages reply = SendBytes(request.SerializeAsString());
  EXPECT_FALSE(reply.messages(0).message_0().has_message_id());
  EXPECT_EQ(reply.messages(0).message_0().response().status().error().description(),
            "message_id is not valid UTF-8 (byte 0 of '\\x80')");
  // Text that is UTF-8 but not ASCII passes the check (ids are refused later, by their rule).
  EXPECT_EQ(
      Error(One("sg_member_add { sg_id: \"sg-\xc3\xa9t\xc3\xa9\" member: \"198.18.0.9\" }")),
      "security group id 'sg-\\xc3\\xa9t\\xc3\\xa9' holds a character outside A-Z a-z 0-9 _ - . : "
      "(1-255 characters from A-Z a-z 0-9 _ - . :, starting with a letter, a digit or '_')");
}

TEST_F(DispatcherTest, IdsOutsideTheSafeSetAreRefusedWithTheRule) {
  std::string before = Dump();
  for (const char* id : {"-rf", "*", "a;b", "~root", ".hidden", "a b", "a/b", "$(reboot)"}) {
    std::string text =
        std::string("nic_add { id: \"") + id + "\" mac: \"52:54:00:00:00:01\" vni: 42 type: TAP }";
    std::string error = Error(One(text));
    EXPECT_NE(error.find("(1-255 characters from A-Z a-z 0-9 _ - . :"), std::string::npos)
        << id << ": " << error;
    EXPECT_NE(Error(One(std::string("sg_add { id: \"") + id + "\" }")), "") << id;
  }
  EXPECT_EQ(Dump(), before);
  EXPECT_EQ(Error(One("sg_add { id: \"8c0e7c2a-5b1f-4c53-9d0c-3f5b8f1d9e11\" }")), "");
  EXPECT_EQ(Error(One("sg_add { id: \"tenant_7.web:80\" }")), "");
}

TEST_F(DispatcherTest, CachedReadsAnswerExactlyAsUncachedOnesAndFollowChanges) {
  One("sg_add { id: \"sg\" member: \"198.18.0.1\" }");
  One("sg_rule_add { sg_id: \"sg\" rule { direction: INBOUND protocol: 6 port_start: 80 "
      "port_end: 80 cidr { address: \"198.18.0.0\" mask_size: 16 } } }");
  const std::string batch =
      "messages { revision: 0 message_0 { message_id: \"a\" request { sg_details: \"\" } } } "
      "messages { revision: 0 message_0 { request { nic_add { id: \"v\" } } } } "
      "messages { revision: 3 message_0 { message_id: \"b\" request { sg_details: \"sg\" } } } "
      "messages { revision: 0 message_0 { message_id: \"c\" request { sg_rule_list: \"none\" } } }";
  uint64_t cached_before = dispatcher.read_cache_hits();
  proto::Messages first = Send(batch);
  proto::Messages second = Send(batch);
  EXPECT_EQ(dispatcher.read_cache_hits() - cached_before, 3u);
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  ASSERT_EQ(second.messages_size(), 4);
  EXPECT_EQ(second.messages(0).message_0().message_id(), "a");
  EXPECT_EQ(second.messages(0).revision(), kProtocolRevision);
  EXPECT_EQ(second.messages(0).message_0().response().sg_details(0).rule_size(), 1);
  EXPECT_FALSE(second.messages(1).message_0().response().status().status());
  EXPECT_EQ(second.messages(2).message_0().message_id(), "b");
  EXPECT_EQ(Error(second.messages(3).message_0().response()), "sg none: no such security group");
  // What the cache answers is what a fresh dispatcher (no cache yet) answers.
  Dispatcher fresh{controller, DispatcherLimits{1 << 20, 32}};
  proto::Messages request;
  google::protobuf::TextFormat::ParseFromString(batch, &request);
  EXPECT_EQ(fresh.HandleFrame(request.SerializePartialAsString()), first.SerializeAsString());

  // A change of state is seen by the next read.
  One("sg_member_add { sg_id: \"sg\" member: \"198.18.0.2\" }");
  EXPECT_EQ(Send(batch).messages(0).message_0().response().sg_details(0).member_size(), 2);
  // A failed change leaves the cache as it was (nothing changed).
  uint64_t cached = dispatcher.read_cache_hits();
  EXPECT_NE(Error(One("sg_member_add { sg_id: \"sg\" member: \"nope\" }")), "");
  Send(batch);
  EXPECT_EQ(dispatcher.read_cache_hits() - cached, 3u);
}

}  // namespace
}  // namespace butterfly
