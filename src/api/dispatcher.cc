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

// The operations that change the state, by field number of MessageV0_Request.
bool ChangesState(int operation) {
  switch (operation) {
    case MessageV0_Request::kNicAddFieldNumber:
    case MessageV0_Request::kNicUpdateFieldNumber:
    case MessageV0_Request::kNicDelFieldNumber:
    case MessageV0_Request::kSgAddFieldNumber:
    case MessageV0_Request::kSgDelFieldNumber:
    case MessageV0_Request::kSgRuleAddFieldNumber:
    case MessageV0_Request::kSgRuleDelFieldNumber:
    case MessageV0_Request::kSgMemberAddFieldNumber:
    case MessageV0_Request::kSgMemberDelFieldNumber:
    case MessageV0_Request::kVniPeersSetFieldNumber:
    case MessageV0_Request::kFdbAddFieldNumber:
    case MessageV0_Request::kFdbDelFieldNumber:
      return true;
    default:
      return false;
  }
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

// Reads whose answer depends on the model alone, so that it stays right until the next change
// of state: security groups and the list of vnic ids. (nic_details carries link states, stats
// move by themselves: those are never cached.)
bool IsCachedRead(const MessageV0_Request& request) {
  std::vector<const FieldDescriptor*> operations = OperationsOf(request);
  if (operations.size() != 1) return false;
  switch (operations[0]->number()) {
    case MessageV0_Request::kNicListFieldNumber:
    case MessageV0_Request::kSgListFieldNumber:
    case MessageV0_Request::kSgDetailsFieldNumber:
    case MessageV0_Request::kSgRuleListFieldNumber:
    case MessageV0_Request::kSgMemberListFieldNumber:
      return true;
    default:
      return false;
  }
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
  std::vector<const FieldDescriptor*> operations = OperationsOf(request.request());
  return operations.size() == 1 && ChangesState(operations[0]->number());
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
  if (!request.IsInitialized() || !request.has_request() || !IsCachedRead(request.request())) {
    return false;
  }
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
  const Model& model = controller_.model();
  Status status;
  bool changes_state = ChangesState(fields[0]->number());

  switch (fields[0]->number()) {
    case MessageV0_Request::kNicAddFieldNumber: {
      auto vnic = VnicFromProto(request.nic_add());
      if (!vnic) {
        status = Error{vnic.error()};
        break;
      }
      std::string id = vnic->id;
      std::optional<Vnic> previous;
      if (const Vnic* existing = model.FindVnic(id)) previous = *existing;
      auto path = controller_.AddVnic(std::move(*vnic));
      if (!path) {
        status = Error{path.error()};
        break;
      }
      if (request.nic_add().has_fw_data()) {
        const Vnic& added = *model.FindVnic(id);
        if (auto imported =
                controller_.dataplane().ImportFlows(added, request.nic_add().fw_data().data());
            !imported) {
          // All or nothing: a vnic this call created goes away again, one it updated gets its
          // previous content back.
          if (!previous) {
            (void)controller_.RemoveVnic(id);
          } else if (auto restored = controller_.AddVnic(*previous); !restored) {
            LOG_ERROR("nic %s: could not restore it after a failed import: %s", id.c_str(),
                      restored.error().c_str());
          }
          status = Fail("nic " + id + ": fw_data: " + imported.error());
          break;
        }
      }
      response->mutable_nic_add()->set_path(*path);
      break;
    }
    case MessageV0_Request::kNicUpdateFieldNumber: {
      auto update = VnicUpdateFromProto(request.nic_update());
      status = update ? controller_.UpdateVnic(*update) : Status(Error{update.error()});
      break;
    }
    case MessageV0_Request::kNicDelFieldNumber:
      status = controller_.RemoveVnic(request.nic_del());
      break;
    case MessageV0_Request::kNicListFieldNumber:
      for (const auto& [id, vnic] : model.vnics()) response->add_nic_list(id);
      break;
    case MessageV0_Request::kNicDetailsFieldNumber: {
      const std::string& id = request.nic_details();
      auto add = [&](const Vnic& vnic) {
        MessageV0_Nic* nic = response->add_nic_details();
        *nic = VnicToProto(vnic, controller_.PathOf(vnic));
        VnicLink link = controller_.dataplane().Link(vnic);
        nic->mutable_state()->set_link(link.state);
        if (!link.detail.empty()) nic->mutable_state()->set_detail(link.detail);
      };
      if (id.empty()) {
        for (const auto& [vnic_id, vnic] : model.vnics()) add(vnic);
      } else if (const Vnic* vnic = model.FindVnic(id)) {
        add(*vnic);
      } else {
        status = Fail("nic " + id + ": no such nic");
      }
      break;
    }
    case MessageV0_Request::kNicExportFieldNumber: {
      const Vnic* vnic = model.FindVnic(request.nic_export());
      if (!vnic) {
        status = Fail("nic " + request.nic_export() + ": no such nic");
        break;
      }
      auto flows = controller_.dataplane().ExportFlows(*vnic);
      if (!flows) {
        status = Fail("nic " + vnic->id + ": " + flows.error());
        break;
      }
      response->mutable_nic_export()->mutable_fw_data()->set_data(*flows);
      break;
    }
    case MessageV0_Request::kNicStatsFieldNumber: {
      const Vnic* vnic = model.FindVnic(request.nic_stats());
      if (!vnic) {
        status = Fail("nic " + request.nic_stats() + ": no such nic");
        break;
      }
      CountersToProto(controller_.dataplane().Counters(*vnic), response->mutable_nic_stats());
      break;
    }
    case MessageV0_Request::kSgAddFieldNumber: {
      auto sg = SgFromProto(request.sg_add());
      status = sg ? controller_.PutSecurityGroup(*sg) : Status(Error{sg.error()});
      break;
    }
    case MessageV0_Request::kSgDelFieldNumber:
      status = controller_.RemoveSecurityGroup(request.sg_del());
      break;
    case MessageV0_Request::kSgListFieldNumber:
      for (const auto& [id, sg] : model.security_groups()) response->add_sg_list(id);
      break;
    case MessageV0_Request::kSgRuleAddFieldNumber: {
      const auto& add = request.sg_rule_add();
      auto rule = RuleFromProto(add.rule());
      status = rule ? controller_.AddRule(add.sg_id(), *rule)
                    : Status(Fail("sg " + add.sg_id() + ": " + rule.error()));
      break;
    }
    case MessageV0_Request::kSgRuleDelFieldNumber: {
      const auto& del = request.sg_rule_del();
      auto rule = RuleFromProto(del.rule());
      status = rule ? controller_.RemoveRule(del.sg_id(), *rule)
                    : Status(Fail("sg " + del.sg_id() + ": " + rule.error()));
      break;
    }
    case MessageV0_Request::kSgRuleListFieldNumber: {
      const SecurityGroup* sg = model.FindSg(request.sg_rule_list());
      if (!sg) {
        status = Fail("sg " + request.sg_rule_list() + ": no such security group");
        break;
      }
      for (const Rule& rule : sg->rules()) *response->add_sg_rule_list() = RuleToProto(rule);
      break;
    }
    case MessageV0_Request::kSgMemberAddFieldNumber:
    case MessageV0_Request::kSgMemberDelFieldNumber: {
      bool add = fields[0]->number() == MessageV0_Request::kSgMemberAddFieldNumber;
      const std::string& sg_id =
          add ? request.sg_member_add().sg_id() : request.sg_member_del().sg_id();
      const std::string& text =
          add ? request.sg_member_add().member() : request.sg_member_del().member();
      auto member = IpAddress::Parse(text);
      if (!member) {
        status = Fail("sg " + sg_id + ": member " + member.error());
        break;
      }
      status =
          add ? controller_.AddMember(sg_id, *member) : controller_.RemoveMember(sg_id, *member);
      break;
    }
    case MessageV0_Request::kSgMemberListFieldNumber: {
      const SecurityGroup* sg = model.FindSg(request.sg_member_list());
      if (!sg) {
        status = Fail("sg " + request.sg_member_list() + ": no such security group");
        break;
      }
      for (const IpAddress& member : sg->members()) response->add_sg_member_list(member.ToString());
      break;
    }
    case MessageV0_Request::kSgDetailsFieldNumber: {
      const std::string& id = request.sg_details();
      if (id.empty()) {
        for (const auto& [sg_id, sg] : model.security_groups()) {
          *response->add_sg_details() = SgToProto(sg);
        }
      } else if (const SecurityGroup* sg = model.FindSg(id)) {
        *response->add_sg_details() = SgToProto(*sg);
      } else {
        status = Fail("sg " + id + ": no such security group");
      }
      break;
    }
    case MessageV0_Request::kAppStatusFieldNumber:
      AppStatus(response->mutable_app_status());
      break;
    case MessageV0_Request::kAppQuitFieldNumber:
      LOG_INFO("api: app_quit received, stopping");
      quit_requested_ = true;
      break;
    case MessageV0_Request::kAppConfigFieldNumber: {
      if (request.app_config().has_log_level()) {
        auto level = ParseLogLevel(request.app_config().log_level());
        if (!level) {
          status = Error{level.error()};
          break;
        }
        SetLogLevel(*level);
        LOG_INFO("api: log level set to %s", LogLevelName(*level));
      }
      break;
    }
    case MessageV0_Request::kDpStatsFieldNumber:
      DataplaneStatsToProto(controller_.dataplane(), response->mutable_dp_stats());
      break;
    case MessageV0_Request::kVniPeersSetFieldNumber: {
      const auto& request_peers = request.vni_peers_set();
      std::vector<IpAddress> peers;
      bool clear = request_peers.peer_size() == 1 && request_peers.peer(0).empty();
      for (int i = 0; i < request_peers.peer_size() && !clear; ++i) {
        auto peer = IpAddress::Parse(request_peers.peer(i));
        if (!peer) {
          status = Fail("vni " + std::to_string(request_peers.vni()) + ": peer " + peer.error());
          break;
        }
        peers.push_back(*peer);
      }
      if (status) status = controller_.SetVniPeers(request_peers.vni(), peers);
      break;
    }
    case MessageV0_Request::kFdbAddFieldNumber:
    case MessageV0_Request::kFdbDelFieldNumber: {
      bool add = fields[0]->number() == MessageV0_Request::kFdbAddFieldNumber;
      const MessageV0_FdbEntry& entry = add ? request.fdb_add() : request.fdb_del();
      std::string where = "fdb vni " + std::to_string(entry.vni()) + ": ";
      auto mac = MacAddress::Parse(entry.mac());
      if (!mac) {
        status = Fail(where + "mac " + mac.error());
        break;
      }
      if (!add) {
        status = controller_.RemoveStaticMac(entry.vni(), *mac);
        break;
      }
      auto vtep = IpAddress::Parse(entry.vtep());
      status = vtep ? controller_.AddStaticMac(entry.vni(), *mac, *vtep)
                    : Status(Fail(where + "vtep " + vtep.error()));
      break;
    }
    case MessageV0_Request::kFdbListFieldNumber:
      FdbToProto(controller_, request.fdb_list(), response);
      break;
    default:
      status = Fail("request field " + fields[0]->name() + " is not handled");
  }
  SetStatus(response, status);
  if (!status.ok())
    LOG_INFO("api: %s failed: %s", fields[0]->name().c_str(), status.error().c_str());
  return changes_state && status.ok();
}

void Dispatcher::AppStatus(MessageV0_AppStatusRes* status) const {
  status->set_start_date(static_cast<uint64_t>(start_date_));
  status->set_current_date(static_cast<uint64_t>(std::time(nullptr)));
  status->set_request_counter(request_counter_);
  status->set_graph_dot(StatusGraphDot(controller_));
  status->set_version(kButterflyVersion);
  status->set_dataplane(controller_.dataplane().Describe());
}

}  // namespace butterfly
