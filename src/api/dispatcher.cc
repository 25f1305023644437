#include "api/dispatcher.h"

#include <google/protobuf/io/coded_stream.h>

#include <optional>
#include <vector>

#include "api/proto_convert.h"
#include "api/status_graph.h"
#include "core/log.h"
#include "core/text.h"
#include "core/version.h"

namespace butterfly {
namespace {

using google::protobuf::FieldDescriptor;

void SetStatus(MessageV0_Response* response, const Status& status) {
  response->mutable_status()->set_status(status.ok());
  if (!status.ok()) response->mutable_status()->mutable_error()->set_description(status.error());
}

std::string SerializeOrEmpty(const proto::Messages& messages) {
  std::string bytes;
  messages.SerializeToString(&bytes);
  return bytes;
}

proto::Messages ErrorAnswer(proto::Error::Code code) {
  proto::Messages answer;
  proto::Message* message = answer.add_messages();
  message->set_revision(kProtocolRevision);
  message->mutable_error()->set_code(code);
  return answer;
}

// The operations a request sets (one, when it is valid).
std::vector<const FieldDescriptor*> OperationsOf(const MessageV0_Request& request) {
  std::vector<const FieldDescriptor*> fields;
  request.GetReflection()->ListFields(request, &fields);
  return fields;
}

// The first `string` field of `message` (searched depth first) that is not UTF-8, named by its
// path: proto2 decoding lets any bytes through, and what is stored comes back in answers, file
// names and the CLI's JSON, where strict decoders refuse it.
Status CheckStringsAreUtf8(const google::protobuf::Message& message, const std::string& path) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  std::string scratch;
  for (const FieldDescriptor* field : fields) {
    std::string name = path.empty() ? field->name() : path + "." + field->name();
    int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      std::string where = field->is_repeated() ? name + "[" + std::to_string(i) + "]" : name;
      if (field->type() == FieldDescriptor::TYPE_STRING) {
        const std::string& text =
            field->is_repeated()
                ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                : reflection->GetStringReference(message, field, &scratch);
        size_t bad = 0;
        if (!IsValidUtf8(text, &bad)) {
          return Fail(where + " is not valid UTF-8 (byte " + std::to_string(bad) + " of " +
                      QuoteForMessage(text) + ")");
        }
      } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const google::protobuf::Message& nested =
            field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                 : reflection->GetMessage(message, field);
        if (Status checked = CheckStringsAreUtf8(nested, where); !checked) return checked;
      }
    }
  }
  return Ok();
}

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void AppendVarintField(int field, uint64_t value, std::string* out) {
  AppendVarint(static_cast<uint64_t>(field) << 3 | 0, out);
  AppendVarint(value, out);
}

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// A length-delimited field's key and length, its `length` bytes to follow.
void AppendTag(int field, size_t length, std::string* out) {
  AppendVarint(static_cast<uint64_t>(field) << 3 | 2, out);
  AppendVarint(length, out);
}

// The bytes a length-delimited field of `length` bytes takes, key and length included.
size_t FieldSize(int field, size_t length) {
  return VarintSize(static_cast<uint64_t>(field) << 3 | 2) + VarintSize(length) + length;
}

void AppendLengthDelimited(int field, std::string_view bytes, std::string* out) {
  AppendTag(field, bytes.size(), out);
  out->append(bytes);
}

}  // namespace

bool IsStateChange(const proto::Message& message) {
  if (!message.has_message_0()) return false;
  const MessageV0& request = message.message_0();
  if (!request.IsInitialized() || !request.has_request()) return false;
  const Dispatcher::Operation* operation = Dispatcher::SoleOperation(request.request());
  return operation && operation->effect == Dispatcher::Effect::kChange;
}

Dispatcher::Dispatcher(Controller& controller, DispatcherLimits limits)
    : controller_(controller), limits_(limits), start_date_(std::time(nullptr)) {}

std::string Dispatcher::HandleFrame(std::string_view frame) {
  return std::move(HandleGroup({frame})[0]);
}

std::vector<std::string> Dispatcher::HandleGroup(const std::vector<std::string_view>& frames) {
  // Frames journaled ahead: their record numbers, by index in `frames`. Frames refused unread
  // for their size are not worth a record.
  std::vector<std::optional<uint64_t>> ahead(frames.size());
  if (recorder_) {
    std::vector<std::string_view> journaled;
    std::vector<size_t> which;
    for (size_t i = 0; i < frames.size(); ++i) {
      if (frames[i].size() > limits_.max_frame_bytes) continue;
      journaled.push_back(frames[i]);
      which.push_back(i);
    }
    std::vector<uint64_t> records = recorder_->WriteAhead(journaled);
    for (size_t k = 0; k < records.size(); ++k) ahead[which[k]] = records[k];
  }
  std::vector<std::string> answers(frames.size());
  std::vector<bool> changed(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    write_ahead_record_ = ahead[i];
    refused_.clear();
    bool frame_changed = false;
    answers[i] = HandleFrameUncommitted(frames[i], &frame_changed);
    changed[i] = frame_changed;
    if (ahead[i] && !refused_.empty()) recorder_->RecordRefused(*ahead[i], refused_);
  }
  write_ahead_record_.reset();
  // A change that forbids is enforced before its answer leaves, once for the whole group. Left
  // to the publication window, a removed rule still passed traffic for as long as the journal's
  // sync below took: 12 ms after its answer in the churn soak (tests/integration/test_soak.py).
  controller_.FlushRestrictions();
  // Committed even when nothing changed: a commit is also when a broken journal is repaired.
  if (!Commit()) {
    for (size_t i = 0; i < frames.size(); ++i) {
      if (changed[i]) answers[i] = InternalErrorAnswer();
    }
  }
  return answers;
}

std::string Dispatcher::InternalErrorAnswer() {
  return SerializeOrEmpty(ErrorAnswer(proto::Error::INTERNAL_ERROR));
}

Status Dispatcher::Commit() {
  if (!recorder_) return Ok();
  Status committed = recorder_->Commit();
  if (!committed) {
    LOG_ERROR("api: could not make changes durable: %s", committed.error().c_str());
  }
  return committed;
}

bool Dispatcher::DecodeFrame(std::string_view frame, proto::Messages* request,
                             proto::Error::Code* refusal) const {
  if (frame.size() > limits_.max_frame_bytes) {
    LOG_WARNING("api: rejected a %zu-byte request (limit %zu bytes)", frame.size(),
                limits_.max_frame_bytes);
    *refusal = proto::Error::REJECTED;
    return false;
  }
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(frame.data()),
                                               static_cast<int>(frame.size()));
  input.SetRecursionLimit(limits_.max_nesting);
  // Parse partially: a message missing a required field is answered on its own, not with a
  // PARSE_ERROR for the whole batch.
  if (!request->MergePartialFromCodedStream(&input) || !input.ConsumedEntireMessage()) {
    LOG_DEBUG("api: undecodable request (%zu bytes)", frame.size());
    *refusal = proto::Error::PARSE_ERROR;
    return false;
  }
  return true;
}

std::string Dispatcher::HandleFrameUncommitted(std::string_view frame, bool* changed) {
  *changed = false;
  ++request_counter_;
  proto::Messages request;
  proto::Error::Code refusal{};
  if (!DecodeFrame(frame, &request, &refusal)) return SerializeOrEmpty(ErrorAnswer(refusal));
  uint64_t recorded_before = recorded_changes_;
  std::string answer = HandleUncommitted(request);
  *changed = recorded_changes_ != recorded_before;
  return answer;
}

proto::Messages Dispatcher::Handle(const proto::Messages& request) {
  uint64_t recorded_before = recorded_changes_;
  proto::Messages answer;
  answer.ParseFromString(HandleUncommitted(request));
  if (!Commit() && recorded_changes_ != recorded_before) {
    return ErrorAnswer(proto::Error::INTERNAL_ERROR);
  }
  return answer;
}

std::string Dispatcher::HandleUncommitted(const proto::Messages& request) {
  if (request.has_encrypted()) {
    LOG_WARNING(
        "api: rejected a request using the original's pre-shared-key encryption "
        "(not supported; use CURVE)");
    return SerializeOrEmpty(ErrorAnswer(proto::Error::REJECTED));
  }
  if (request.messages_size() == 0)
    return SerializeOrEmpty(ErrorAnswer(proto::Error::EMPTY_REQUEST));

  // Built message by message, as proto::Messages would serialize them (field 1, repeated), so
  // that an answer from the read cache is spliced in without being parsed again.
  std::string answer;
  std::string message_bytes;
  for (int i = 0; i < request.messages_size(); ++i) {
    const proto::Message& in = request.messages(i);
    if (AnswerFromReadCache(in, &answer)) continue;
    proto::Message out;
    bool applied = HandleMessage(in, &out);
    if (write_ahead_record_ && !applied && IsStateChange(in)) {
      refused_.push_back(static_cast<uint32_t>(i));
    }
    message_bytes.clear();
    out.AppendToString(&message_bytes);
    AppendLengthDelimited(proto::Messages::kMessagesFieldNumber, message_bytes, &answer);
  }
  controller_.PublishPolicies();
  return answer;
}

bool Dispatcher::AnswerFromReadCache(const proto::Message& in, std::string* out) {
  if (!in.has_message_0()) return false;
  const MessageV0& request = in.message_0();
  if (!request.IsInitialized() || !request.has_request()) return false;
  const Operation* operation = SoleOperation(request.request());
  if (!operation || operation->effect != Effect::kCachedRead) return false;
  if (!IsValidUtf8(request.message_id()) || !CheckStringsAreUtf8(request.request(), "")) {
    return false;
  }
  std::string key;
  request.request().SerializeToString(&key);
  auto cached = read_cache_.find(key);
  if (cached != read_cache_.end()) {
    ++read_cache_hits_;
  } else {
    MessageV0_Response response;
    bool changed = HandleRequest(request.request(), &response);
    (void)changed;  // a read
    std::string bytes;
    response.SerializeToString(&bytes);
    // Bounded: past the bound, the oldest state's answers are the ones dropped, all at once.
    if (read_cache_bytes_ + bytes.size() > kReadCacheBytes) ClearReadCache();
    read_cache_bytes_ += key.size() + bytes.size();
    cached = read_cache_.emplace(std::move(key), std::move(bytes)).first;
  }
  // Message { revision = 1; message_0 = 3 { response = 2; message_id = 3 } }, its lengths worked
  // out first so that the cached bytes are copied once, straight into the answer.
  const std::string& response = cached->second;
  size_t inner = FieldSize(MessageV0::kResponseFieldNumber, response.size());
  if (request.has_message_id()) {
    inner += FieldSize(MessageV0::kMessageIdFieldNumber, request.message_id().size());
  }
  size_t message = VarintSize(proto::Message::kRevisionFieldNumber << 3) +
                   VarintSize(kProtocolRevision) +
                   FieldSize(proto::Message::kMessage0FieldNumber, inner);
  out->reserve(out->size() + FieldSize(proto::Messages::kMessagesFieldNumber, message));
  AppendTag(proto::Messages::kMessagesFieldNumber, message, out);
  AppendVarintField(proto::Message::kRevisionFieldNumber, kProtocolRevision, out);
  AppendTag(proto::Message::kMessage0FieldNumber, inner, out);
  AppendLengthDelimited(MessageV0::kResponseFieldNumber, response, out);
  if (request.has_message_id()) {
    AppendLengthDelimited(MessageV0::kMessageIdFieldNumber, request.message_id(), out);
  }
  return true;
}

void Dispatcher::ClearReadCache() {
  read_cache_.clear();
  read_cache_bytes_ = 0;
}

bool Dispatcher::HandleMessage(const proto::Message& in, proto::Message* out) {
  out->set_revision(kProtocolRevision);
  if (!in.has_message_0()) {
    out->mutable_error()->set_code(proto::Error::VERSION_NOT_MANAGED);
    return false;
  }
  const MessageV0& request = in.message_0();
  MessageV0* answer = out->mutable_message_0();
  // An id that is not text is not echoed: the answer would carry the same bad bytes.
  if (request.has_message_id() && IsValidUtf8(request.message_id())) {
    answer->set_message_id(request.message_id());
  }
  MessageV0_Response* response = answer->mutable_response();
  if (Status text = CheckStringsAreUtf8(request, ""); !text) {
    SetStatus(response, text);
    LOG_INFO("api: refused a request: %s", text.error().c_str());
    return false;
  }
  if (!request.IsInitialized()) {
    SetStatus(response, Fail("missing required field(s): " + request.InitializationErrorString()));
    return false;
  }
  if (!request.has_request()) {
    SetStatus(response, Fail("message has no request"));
    return false;
  }
  if (!HandleRequest(request.request(), response)) return false;
  ClearReadCache();
  if (recorder_) {
    // A frame journaled ahead is already in the journal, this message with it.
    if (!write_ahead_record_) recorder_->Record(request.request());
    ++recorded_changes_;
  }
  return true;
}

const Dispatcher::Operation* Dispatcher::FindOperation(int field) {
  using Request = MessageV0_Request;
  // Every operation of the API, declared once. nic_details (link states) and the stats (they
  // move by themselves) are reads that are never cached.
  static constexpr Operation kOperations[] = {
      {Request::kNicAddFieldNumber, &Dispatcher::NicAdd, Effect::kChange},
      {Request::kNicUpdateFieldNumber, &Dispatcher::NicUpdate, Effect::kChange},
      {Request::kNicDelFieldNumber, &Dispatcher::NicDel, Effect::kChange},
      {Request::kNicListFieldNumber, &Dispatcher::NicList, Effect::kCachedRead},
      {Request::kNicDetailsFieldNumber, &Dispatcher::NicDetails, Effect::kRead},
      {Request::kNicExportFieldNumber, &Dispatcher::NicExport, Effect::kRead},
      {Request::kNicStatsFieldNumber, &Dispatcher::NicStats, Effect::kRead},
      {Request::kSgAddFieldNumber, &Dispatcher::SgAdd, Effect::kChange},
      {Request::kSgDelFieldNumber, &Dispatcher::SgDel, Effect::kChange},
      {Request::kSgListFieldNumber, &Dispatcher::SgList, Effect::kCachedRead},
      {Request::kSgDetailsFieldNumber, &Dispatcher::SgDetails, Effect::kCachedRead},
      {Request::kSgRuleAddFieldNumber, &Dispatcher::SgRuleAdd, Effect::kChange},
      {Request::kSgRuleDelFieldNumber, &Dispatcher::SgRuleDel, Effect::kChange},
      {Request::kSgRuleListFieldNumber, &Dispatcher::SgRuleList, Effect::kCachedRead},
      {Request::kSgMemberAddFieldNumber, &Dispatcher::SgMemberAdd, Effect::kChange},
      {Request::kSgMemberDelFieldNumber, &Dispatcher::SgMemberDel, Effect::kChange},
      {Request::kSgMemberListFieldNumber, &Dispatcher::SgMemberList, Effect::kCachedRead},
      {Request::kAppStatusFieldNumber, &Dispatcher::AppStatus, Effect::kRead},
      {Request::kAppQuitFieldNumber, &Dispatcher::AppQuit, Effect::kRead},
      {Request::kAppConfigFieldNumber, &Dispatcher::AppConfig, Effect::kRead},
      {Request::kDpStatsFieldNumber, &Dispatcher::DpStats, Effect::kRead},
      {Request::kVniPeersSetFieldNumber, &Dispatcher::VniPeersSet, Effect::kChange},
      {Request::kFdbAddFieldNumber, &Dispatcher::FdbAdd, Effect::kChange},
      {Request::kFdbDelFieldNumber, &Dispatcher::FdbDel, Effect::kChange},
      {Request::kFdbListFieldNumber, &Dispatcher::FdbList, Effect::kRead},
  };
  for (const Operation& operation : kOperations) {
    if (operation.field == field) return &operation;
  }
  return nullptr;
}

const Dispatcher::Operation* Dispatcher::SoleOperation(const MessageV0_Request& request) {
  std::vector<const FieldDescriptor*> fields = OperationsOf(request);
  return fields.size() == 1 ? FindOperation(fields[0]->number()) : nullptr;
}

bool Dispatcher::HandleRequest(const MessageV0_Request& request, MessageV0_Response* response) {
  std::vector<const FieldDescriptor*> fields = OperationsOf(request);
  if (fields.size() != 1) {
    std::string names;
    for (const FieldDescriptor* field : fields)
      names += (names.empty() ? "" : ", ") + field->name();
    SetStatus(response, Fail(fields.empty() ? "request sets no operation this server knows"
                                            : "request sets " + std::to_string(fields.size()) +
                                                  " operations (" + names + "); set exactly one"));
    return false;
  }
  const FieldDescriptor* field = fields[0];
  const Operation* operation = FindOperation(field->number());
  Status status = operation ? (this->*operation->handle)(request, response)
                            : Fail("request field " + field->name() + " is not handled");
  SetStatus(response, status);
  if (!status.ok()) LOG_INFO("api: %s failed: %s", field->name().c_str(), status.error().c_str());
  return operation && operation->effect == Effect::kChange && status.ok();
}

namespace {

// The vnic a request names, or the error that says it is missing.
Result<const Vnic*> ExistingVnic(const Model& model, const std::string& id) {
  if (const Vnic* vnic = model.FindVnic(id)) return vnic;
  return Fail("nic " + id + ": no such nic");
}

// The security group a request names, or the error that says it is missing.
Result<const SecurityGroup*> ExistingSg(const Model& model, const std::string& id) {
  if (const SecurityGroup* sg = model.FindSg(id)) return sg;
  return Fail("sg " + id + ": no such security group");
}

// The member address of an sg_member_add or sg_member_del, or the error that names its group.
Result<IpAddress> ParseMember(const std::string& sg_id, const std::string& member) {
  auto address = IpAddress::Parse(member);
  if (!address) return Fail("sg " + sg_id + ": member " + address.error());
  return address;
}

// The rule of an sg_rule_add or sg_rule_del, or the error that names its group.
Result<Rule> ParseRule(const std::string& sg_id, const MessageV0_Rule& rule) {
  auto parsed = RuleFromProto(rule);
  if (!parsed) return Fail("sg " + sg_id + ": " + parsed.error());
  return parsed;
}

// The MAC address of an fdb_add or fdb_del, or the error that names its VNI.
Result<MacAddress> ParseFdbMac(const MessageV0_FdbEntry& entry) {
  auto mac = MacAddress::Parse(entry.mac());
  if (!mac) return Fail("fdb vni " + std::to_string(entry.vni()) + ": mac " + mac.error());
  return mac;
}

}  // namespace

Status Dispatcher::NicAdd(const MessageV0_Request& request, MessageV0_Response* response) {
  const MessageV0_Nic& nic = request.nic_add();
  auto vnic = VnicFromProto(nic);
  if (!vnic) return Error{vnic.error()};
  auto path = nic.has_fw_data()
                  ? controller_.AddVnicWithFlows(std::move(*vnic), nic.fw_data().data())
                  : controller_.AddVnic(std::move(*vnic));
  if (!path) return Error{path.error()};
  response->mutable_nic_add()->set_path(*path);
  return Ok();
}

Status Dispatcher::NicUpdate(const MessageV0_Request& request, MessageV0_Response*) {
  auto update = VnicUpdateFromProto(request.nic_update());
  return update ? controller_.UpdateVnic(*update) : Status(Error{update.error()});
}

Status Dispatcher::NicDel(const MessageV0_Request& request, MessageV0_Response*) {
  return controller_.RemoveVnic(request.nic_del());
}

Status Dispatcher::NicList(const MessageV0_Request&, MessageV0_Response* response) {
  for (const auto& [id, vnic] : controller_.model().vnics()) response->add_nic_list(id);
  return Ok();
}

Status Dispatcher::NicDetails(const MessageV0_Request& request, MessageV0_Response* response) {
  auto add = [&](const Vnic& vnic) {
    MessageV0_Nic* nic = response->add_nic_details();
    *nic = VnicToProto(vnic, controller_.PathOf(vnic));
    VnicLink link = controller_.Link(vnic);
    nic->mutable_state()->set_link(link.state);
    if (!link.detail.empty()) nic->mutable_state()->set_detail(link.detail);
  };
  const std::string& id = request.nic_details();
  if (id.empty()) {
    for (const auto& [vnic_id, vnic] : controller_.model().vnics()) add(vnic);
    return Ok();
  }
  auto vnic = ExistingVnic(controller_.model(), id);
  if (!vnic) return Error{vnic.error()};
  add(**vnic);
  return Ok();
}

Status Dispatcher::NicExport(const MessageV0_Request& request, MessageV0_Response* response) {
  auto vnic = ExistingVnic(controller_.model(), request.nic_export());
  if (!vnic) return Error{vnic.error()};
  auto flows = controller_.ExportFlows(**vnic);
  if (!flows) return Fail("nic " + (*vnic)->id + ": " + flows.error());
  response->mutable_nic_export()->mutable_fw_data()->set_data(*flows);
  return Ok();
}

Status Dispatcher::NicStats(const MessageV0_Request& request, MessageV0_Response* response) {
  auto vnic = ExistingVnic(controller_.model(), request.nic_stats());
  if (!vnic) return Error{vnic.error()};
  CountersToProto(controller_.Counters(**vnic), response->mutable_nic_stats());
  return Ok();
}

Status Dispatcher::SgAdd(const MessageV0_Request& request, MessageV0_Response*) {
  auto sg = SgFromProto(request.sg_add());
  return sg ? controller_.PutSecurityGroup(*sg) : Status(Error{sg.error()});
}

Status Dispatcher::SgDel(const MessageV0_Request& request, MessageV0_Response*) {
  return controller_.RemoveSecurityGroup(request.sg_del());
}

Status Dispatcher::SgList(const MessageV0_Request&, MessageV0_Response* response) {
  for (const auto& [id, sg] : controller_.model().security_groups()) response->add_sg_list(id);
  return Ok();
}

Status Dispatcher::SgDetails(const MessageV0_Request& request, MessageV0_Response* response) {
  const std::string& id = request.sg_details();
  if (id.empty()) {
    for (const auto& [sg_id, sg] : controller_.model().security_groups()) {
      *response->add_sg_details() = SgToProto(sg);
    }
    return Ok();
  }
  auto sg = ExistingSg(controller_.model(), id);
  if (!sg) return Error{sg.error()};
  *response->add_sg_details() = SgToProto(**sg);
  return Ok();
}

Status Dispatcher::SgRuleAdd(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_SgRuleAddReq& add = request.sg_rule_add();
  auto rule = ParseRule(add.sg_id(), add.rule());
  return rule ? controller_.AddRule(add.sg_id(), *rule) : Status(Error{rule.error()});
}

Status Dispatcher::SgRuleDel(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_SgRuleDelReq& del = request.sg_rule_del();
  auto rule = ParseRule(del.sg_id(), del.rule());
  return rule ? controller_.RemoveRule(del.sg_id(), *rule) : Status(Error{rule.error()});
}

Status Dispatcher::SgRuleList(const MessageV0_Request& request, MessageV0_Response* response) {
  auto sg = ExistingSg(controller_.model(), request.sg_rule_list());
  if (!sg) return Error{sg.error()};
  for (const Rule& rule : (*sg)->rules()) *response->add_sg_rule_list() = RuleToProto(rule);
  return Ok();
}

Status Dispatcher::SgMemberAdd(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_SgMemberAddReq& add = request.sg_member_add();
  auto member = ParseMember(add.sg_id(), add.member());
  return member ? controller_.AddMember(add.sg_id(), *member) : Status(Error{member.error()});
}

Status Dispatcher::SgMemberDel(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_SgMemberDelReq& del = request.sg_member_del();
  auto member = ParseMember(del.sg_id(), del.member());
  return member ? controller_.RemoveMember(del.sg_id(), *member) : Status(Error{member.error()});
}

Status Dispatcher::SgMemberList(const MessageV0_Request& request, MessageV0_Response* response) {
  auto sg = ExistingSg(controller_.model(), request.sg_member_list());
  if (!sg) return Error{sg.error()};
  for (const IpAddress& member : (*sg)->members()) response->add_sg_member_list(member.ToString());
  return Ok();
}

Status Dispatcher::AppStatus(const MessageV0_Request&, MessageV0_Response* response) {
  MessageV0_AppStatusRes* status = response->mutable_app_status();
  status->set_start_date(static_cast<uint64_t>(start_date_));
  status->set_current_date(static_cast<uint64_t>(std::time(nullptr)));
  status->set_request_counter(request_counter_);
  status->set_graph_dot(StatusGraphDot(controller_));
  status->set_version(kButterflyVersion);
  status->set_dataplane(controller_.DataplaneDescription());
  return Ok();
}

Status Dispatcher::AppQuit(const MessageV0_Request&, MessageV0_Response*) {
  LOG_INFO("api: app_quit received, stopping");
  quit_requested_ = true;
  return Ok();
}

Status Dispatcher::AppConfig(const MessageV0_Request& request, MessageV0_Response*) {
  if (!request.app_config().has_log_level()) return Ok();
  auto level = ParseLogLevel(request.app_config().log_level());
  if (!level) return Error{level.error()};
  SetLogLevel(*level);
  LOG_INFO("api: log level set to %s", LogLevelName(*level));
  return Ok();
}

Status Dispatcher::DpStats(const MessageV0_Request&, MessageV0_Response* response) {
  DataplaneStatsToProto(controller_, response->mutable_dp_stats());
  return Ok();
}

Status Dispatcher::VniPeersSet(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_VniPeers& set = request.vni_peers_set();
  // A lone empty peer clears the list.
  bool clear = set.peer_size() == 1 && set.peer(0).empty();
  std::vector<IpAddress> peers;
  for (int i = 0; i < set.peer_size() && !clear; ++i) {
    auto peer = IpAddress::Parse(set.peer(i));
    if (!peer) return Fail("vni " + std::to_string(set.vni()) + ": peer " + peer.error());
    peers.push_back(*peer);
  }
  return controller_.SetVniPeers(set.vni(), peers);
}

Status Dispatcher::FdbAdd(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_FdbEntry& entry = request.fdb_add();
  auto mac = ParseFdbMac(entry);
  if (!mac) return Error{mac.error()};
  auto vtep = IpAddress::Parse(entry.vtep());
  if (!vtep) return Fail("fdb vni " + std::to_string(entry.vni()) + ": vtep " + vtep.error());
  return controller_.AddStaticMac(entry.vni(), *mac, *vtep);
}

Status Dispatcher::FdbDel(const MessageV0_Request& request, MessageV0_Response*) {
  const MessageV0_FdbEntry& entry = request.fdb_del();
  auto mac = ParseFdbMac(entry);
  return mac ? controller_.RemoveStaticMac(entry.vni(), *mac) : Status(Error{mac.error()});
}

Status Dispatcher::FdbList(const MessageV0_Request& request, MessageV0_Response* response) {
  FdbToProto(controller_, request.fdb_list(), response);
  return Ok();
}

}  // namespace butterfly
