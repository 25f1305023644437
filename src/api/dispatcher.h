// Answers API requests: one serialized proto::Messages in, one serialized proto::Messages out,
// whatever the input (garbage bytes included). Transport-free, so tests drive it directly.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>

#include "core/controller.h"
#include "message.pb.h"

namespace butterfly {

inline constexpr uint32_t kProtocolRevision = 6;

// Receives every request that changed the state, in order, so it can be made durable before the
// answer leaves (the journal). Optional.
class ChangeRecorder {
 public:
  virtual ~ChangeRecorder() = default;
  virtual void Record(const MessageV0_Request& request) = 0;
  // Called once per batch, before the answer is sent; an error fails the batch's answer.
  virtual Status Commit() = 0;
};

struct DispatcherLimits {
  // Frames larger than this are answered with REJECTED without being parsed.
  size_t max_frame_bytes = 64u << 20;
  // Protobuf nesting depth beyond which a frame is a PARSE_ERROR.
  int max_nesting = 32;
};

class Dispatcher {
 public:
  Dispatcher(Controller& controller, DispatcherLimits limits = {});

  // Always returns a serialized proto::Messages.
  std::string HandleFrame(std::string_view frame);
  proto::Messages Handle(const proto::Messages& request);

  // Group commit: answers a frame without making its changes durable, and says whether it made
  // any. The caller must Commit() before sending such answers, and send InternalErrorAnswer() in
  // their place if that fails.
  std::string HandleFrameUncommitted(std::string_view frame, bool* changed);
  // Makes the changes of every frame handled since the last commit durable (one journal sync).
  Status Commit();
  static std::string InternalErrorAnswer();

  bool quit_requested() const { return quit_requested_; }
  uint64_t request_counter() const { return request_counter_; }
  void set_recorder(ChangeRecorder* recorder) { recorder_ = recorder; }

 private:
  proto::Messages HandleUncommitted(const proto::Messages& request);
  void HandleMessage(const proto::Message& in, proto::Message* out);
  bool HandleRequest(const MessageV0_Request& request, MessageV0_Response* response);
  void AppStatus(MessageV0_AppStatusRes* status) const;

  Controller& controller_;
  DispatcherLimits limits_;
  ChangeRecorder* recorder_ = nullptr;
  uint64_t request_counter_ = 0;
  uint64_t recorded_changes_ = 0;
  std::time_t start_date_;
  bool quit_requested_ = false;
};

}  // namespace butterfly
