// Answers API requests: one serialized proto::Messages in, one serialized proto::Messages out,
// whatever the input (garbage bytes included). Transport-free, so tests drive it directly.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/api_limits.h"
#include "core/controller.h"
#include "message.pb.h"

namespace butterfly {

inline constexpr uint32_t kProtocolRevision = 6;

// Whether the message asks for a change of state (nic_add, sg_rule_del, fdb_add...) that a replay
// of the journal must repeat, as opposed to a read (nic_list) or an order to this process
// (app_quit, app_config). A message that would be refused unread (no request, missing fields,
// several operations) is no change either.
bool IsStateChange(const proto::Message& message);

// Makes changes durable before their answer leaves (the journal). Optional. Two ways, chosen per
// group of frames received together:
// - after: every request that changed the state is recorded once applied;
// - ahead: the frames are journaled as received, before they are applied, and synced while they
//   are; then the messages that did not apply are recorded, so that a replay skips them.
class ChangeRecorder {
 public:
  virtual ~ChangeRecorder() = default;
  virtual void Record(const MessageV0_Request& request) = 0;
  // Journals `frames` ahead and starts their sync, returning each one's record number; or returns
  // nothing (and journals nothing) when they are too small for that to pay, so that they are
  // recorded after.
  virtual std::vector<uint64_t> WriteAhead(const std::vector<std::string_view>& frames) = 0;
  // The messages (indexes in the frame) of the frame journaled ahead as `frame_record` that were
  // state changes and did not apply.
  virtual void RecordRefused(uint64_t frame_record, const std::vector<uint32_t>& messages) = 0;
  // Called once per group, before the answers are sent; an error fails the answers of the frames
  // that changed something.
  virtual Status Commit() = 0;
};

struct DispatcherLimits {
  // Frames larger than this are answered with REJECTED without being parsed.
  size_t max_frame_bytes = kMaxRequestFrameBytes;
  // Protobuf nesting depth beyond which a frame is a PARSE_ERROR.
  int max_nesting = 32;
};

class Dispatcher {
 public:
  Dispatcher(Controller& controller, DispatcherLimits limits = {});

  // Always returns a serialized proto::Messages.
  std::string HandleFrame(std::string_view frame);
  proto::Messages Handle(const proto::Messages& request);

  // Group commit: answers frames received together, one answer per frame, with their changes
  // made durable by one journal sync before this returns. When that fails, the frames that
  // changed something are answered INTERNAL_ERROR.
  std::vector<std::string> HandleGroup(const std::vector<std::string_view>& frames);

  // Decodes a request frame as HandleFrame does; false, with the code of the error answer, when
  // the frame is refused unread (too large, undecodable).
  bool DecodeFrame(std::string_view frame, proto::Messages* request,
                   proto::Error::Code* refusal) const;

  bool quit_requested() const { return quit_requested_; }
  // Reads answered from the cache of serialized answers without being built again (read_cache_).
  uint64_t read_cache_hits() const { return read_cache_hits_; }
  uint64_t request_counter() const { return request_counter_; }
  void set_recorder(ChangeRecorder* recorder) { recorder_ = recorder; }

 private:
  std::string HandleFrameUncommitted(std::string_view frame, bool* changed);
  // The serialized answer to `request`.
  std::string HandleUncommitted(const proto::Messages& request);
  // Appends the answer to `in` (as an element of proto::Messages' repeated field) when it is a
  // read the cache answers, filling the cache on a miss; false, appending nothing, for every
  // other message.
  bool AnswerFromReadCache(const proto::Message& in, std::string* out);
  void ClearReadCache();
  Status Commit();
  static std::string InternalErrorAnswer();
  // True when the message changed the state.
  bool HandleMessage(const proto::Message& in, proto::Message* out);
  // True when the request changed the state.
  bool HandleRequest(const MessageV0_Request& request, MessageV0_Response* response);

  // What an operation does besides answering.
  enum class Effect {
    kRead,
    // A read whose answer depends on the model alone, so it stays right until the next change
    // of state (read_cache_).
    kCachedRead,
    // A change of state, recorded in the journal for a replay to repeat.
    kChange,
  };
  using Handler = Status (Dispatcher::*)(const MessageV0_Request& request,
                                         MessageV0_Response* response);
  // One operation of the API: the field of MessageV0_Request that asks for it.
  struct Operation {
    int field;
    Handler handle;
    Effect effect;
  };
  // The operation of a field of MessageV0_Request, from the one table that declares them all;
  // nothing for a field none serves.
  static const Operation* FindOperation(int field);
  // The one operation `request` asks for; nothing when it sets none, several, or one none serves.
  static const Operation* SoleOperation(const MessageV0_Request& request);
  friend bool IsStateChange(const proto::Message& message);  // reads the table

  // The operations, each answering its field of the request in `response`.
  Status NicAdd(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicUpdate(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicDel(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicList(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicDetails(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicExport(const MessageV0_Request& request, MessageV0_Response* response);
  Status NicStats(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgAdd(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgDel(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgList(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgDetails(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgRuleAdd(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgRuleDel(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgRuleList(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgMemberAdd(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgMemberDel(const MessageV0_Request& request, MessageV0_Response* response);
  Status SgMemberList(const MessageV0_Request& request, MessageV0_Response* response);
  Status AppStatus(const MessageV0_Request& request, MessageV0_Response* response);
  Status AppQuit(const MessageV0_Request& request, MessageV0_Response* response);
  Status AppConfig(const MessageV0_Request& request, MessageV0_Response* response);
  Status DpStats(const MessageV0_Request& request, MessageV0_Response* response);
  Status VniPeersSet(const MessageV0_Request& request, MessageV0_Response* response);
  Status FdbAdd(const MessageV0_Request& request, MessageV0_Response* response);
  Status FdbDel(const MessageV0_Request& request, MessageV0_Response* response);
  Status FdbList(const MessageV0_Request& request, MessageV0_Response* response);

  Controller& controller_;
  DispatcherLimits limits_;
  ChangeRecorder* recorder_ = nullptr;
  uint64_t request_counter_ = 0;
  uint64_t recorded_changes_ = 0;
  // While a frame journaled ahead is applied: its record number, and its state changes (message
  // indexes) that did not apply.
  std::optional<uint64_t> write_ahead_record_;
  std::vector<uint32_t> refused_;
  // Serialized answers (MessageV0_Response) of reads that depend on the model alone, by
  // serialized request, valid until the next change of state. A full listing of a large model
  // (sg_details of 100,000 rules: ~0.3 s to build) is built once per state, so clients that
  // repeat it, or leave before their answer, cost a copy each instead of stalling everyone.
  std::unordered_map<std::string, std::string> read_cache_;
  size_t read_cache_bytes_ = 0;
  static constexpr size_t kReadCacheBytes = size_t{64} << 20;
  uint64_t read_cache_hits_ = 0;
  std::time_t start_date_;
  bool quit_requested_ = false;
};

}  // namespace butterfly
