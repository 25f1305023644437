// Old clients keep working: messages encoded with today's proto/ decode with a frozen copy of the
// original message set (tests/api/frozen), and the other way round.
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "api/dispatcher.h"
#include "core/controller.h"
#include "message.pb.h"

namespace butterfly {
namespace {

using google::protobuf::Message;

// The frozen message set, loaded at run time into its own descriptor pool so that its names do
// not clash with today's compiled-in messages.
class FrozenProtocol {
 public:
  FrozenProtocol() {
    std::ifstream file(FROZEN_DESCRIPTORS, std::ios::binary);
    google::protobuf::FileDescriptorSet files;
    if (!files.ParseFromIstream(&file)) return;
    for (const auto& proto_file : files.file()) {
      if (!pool_.BuildFile(proto_file)) return;
    }
    descriptor_ = pool_.FindMessageTypeByName("proto.Messages");
  }
  std::unique_ptr<Message> NewMessages() const {
    return std::unique_ptr<Message>(factory_.GetPrototype(descriptor_)->New());
  }
  bool loaded() const { return descriptor_ != nullptr; }

 private:
  google::protobuf::DescriptorPool pool_;
  mutable google::protobuf::DynamicMessageFactory factory_;
  const google::protobuf::Descriptor* descriptor_ = nullptr;
};

proto::Messages TodaysRequestsWithEveryExtension() {
  proto::Messages batch;
  auto add = [&batch]() {
    proto::Message* message = batch.add_messages();
    message->set_revision(0);
    message->mutable_message_0()->set_message_id("m" + std::to_string(batch.messages_size()));
    return message->mutable_message_0()->mutable_request();
  };
  MessageV0_Nic* nic = add()->mutable_nic_add();
  nic->set_id("vnic_1");
  nic->set_mac("52:54:00:12:34:01");
  nic->set_vni(42);
  nic->add_ip("198.18.0.1");
  nic->add_ip("2001:db8::1");
  nic->add_security_group("sg-web");
  nic->set_type(MessageV0_NicType_TAP);
  nic->set_bypass_filtering(true);
  nic->mutable_state()->set_link("connected");  // an addition
  add()->mutable_nic_update()->set_id("vnic_1");
  MessageV0_Rule* rule = add()->mutable_sg_rule_add()->mutable_rule();
  rule->set_direction(MessageV0_Rule_Direction_OUTBOUND);
  rule->set_protocol(6);
  rule->set_port_start(80);
  rule->set_port_end(80);
  rule->mutable_cidr()->set_address("::");
  rule->mutable_cidr()->set_mask_size(0);
  batch.mutable_messages(2)
      ->mutable_message_0()
      ->mutable_request()
      ->mutable_sg_rule_add()
      ->set_sg_id("sg-web");
  add()->set_sg_details("");
  add()->set_app_status(true);
  return batch;
}

proto::Messages WithoutExtensions(proto::Messages batch) {
  for (auto& message : *batch.mutable_messages()) {
    if (!message.has_message_0()) continue;
    if (message.message_0().has_request() && message.message_0().request().has_nic_add()) {
      message.mutable_message_0()->mutable_request()->mutable_nic_add()->clear_state();
    }
    auto* response = message.mutable_message_0()->mutable_response();
    for (auto& nic : *response->mutable_nic_details()) nic.clear_state();
    if (response->has_nic_stats()) {
      response->mutable_nic_stats()->clear_packets_in();
      response->mutable_nic_stats()->clear_packets_out();
      response->mutable_nic_stats()->clear_drops();
    }
    if (response->has_app_status()) {
      response->mutable_app_status()->clear_version();
      response->mutable_app_status()->clear_dataplane();
    }
    if (message.message_0().response().ByteSizeLong() == 0) {
      message.mutable_message_0()->clear_response();
    }
  }
  return batch;
}

TEST(ProtoCompatTest, FrozenSetLoads) {
  FrozenProtocol frozen;
  ASSERT_TRUE(frozen.loaded());
}

TEST(ProtoCompatTest, TodaysRequestsDecodeWithTheOriginalSet) {
  FrozenProtocol frozen;
  proto::Messages today = TodaysRequestsWithEveryExtension();
  auto old = frozen.NewMessages();
  ASSERT_TRUE(old->ParseFromString(today.SerializeAsString()));
  ASSERT_TRUE(old->IsInitialized()) << old->InitializationErrorString();
  old->DiscardUnknownFields();
  EXPECT_EQ(old->SerializeAsString(), WithoutExtensions(today).SerializeAsString())
      << "every field the original knows must decode to the same value";
}

TEST(ProtoCompatTest, OriginalRequestsDecodeWithTodaysSet) {
  FrozenProtocol frozen;
  auto old = frozen.NewMessages();
  const char* text = R"(
    messages { revision: 0 message_0 { message_id: "a" request { nic_add {
      id: "vnic_2" mac: "52:54:00:12:34:02" vni: 51 ip: "198.18.0.2" security_group: "sg-web"
      ip_anti_spoof: true type: BENCH btype: "ICMP_SND_LIKE" dip: "198.18.0.1" } } } }
    messages { revision: 0 message_0 { request { sg_add { id: "sg-web" member: "198.18.0.9"
      rule { direction: INBOUND protocol: -1 cidr { address: "198.18.0.0" mask_size: 15 } }
      rule { direction: OUTBOUND protocol: 17 port_start: 53 port_end: 53
             security_group: "sg-dns" } } } } }
    messages { revision: 0 message_0 { request { nic_update { id: "vnic_2" ip: "" } } } })";
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, old.get()));
  proto::Messages today;
  ASSERT_TRUE(today.ParseFromString(old->SerializeAsString()));
  EXPECT_TRUE(today.IsInitialized());
  EXPECT_EQ(today.SerializeAsString(), old->SerializeAsString());
  EXPECT_TRUE(today.unknown_fields().empty());
  EXPECT_EQ(today.messages(0).message_0().request().nic_add().type(), MessageV0_NicType_BENCH);
}

TEST(ProtoCompatTest, OldClientsDecodeTodaysAnswers) {
  FrozenProtocol frozen;
  DisabledDataplane dataplane("test");
  Controller controller("/tmp", dataplane);
  Dispatcher dispatcher(controller);
  proto::Messages request = TodaysRequestsWithEveryExtension();
  MessageV0_Request* extra = request.add_messages()->mutable_message_0()->mutable_request();
  request.mutable_messages(request.messages_size() - 1)->set_revision(0);
  extra->set_nic_details("");
  MessageV0_Request* stats = request.add_messages()->mutable_message_0()->mutable_request();
  request.mutable_messages(request.messages_size() - 1)->set_revision(0);
  stats->set_nic_stats("vnic_1");

  std::string answer = dispatcher.HandleFrame(request.SerializeAsString());
  auto old = frozen.NewMessages();
  ASSERT_TRUE(old->ParseFromString(answer));
  EXPECT_TRUE(old->IsInitialized()) << old->InitializationErrorString();
  proto::Messages today;
  ASSERT_TRUE(today.ParseFromString(answer));
  ASSERT_EQ(today.messages_size(), request.messages_size());
  EXPECT_TRUE(today.messages(5).message_0().response().nic_details(0).has_state())
      << "the answer does carry additions, and the old set still decodes it";
  old->DiscardUnknownFields();
  EXPECT_EQ(old->SerializeAsString(), WithoutExtensions(today).SerializeAsString());
}

}  // namespace
}  // namespace butterfly
