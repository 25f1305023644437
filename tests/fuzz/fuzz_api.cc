// Fuzz target: the API. A frame is decoded and dispatched to the controller, with the dataplane
// faked behind its interface (tests/fuzz/fake_dataplane.h). Invariants: every input gets an
// answer that decodes as proto.Messages, one answer per message; a refused request changes
// nothing (the model dumped before equals the model dumped after); the dataplane is kept in line
// with the model; the messages of a frame applied one frame each end in the same state as the
// whole frame.
#include "api/dispatcher.h"
#include "api_model.h"
#include "core/log.h"

namespace butterfly {
namespace {

using fuzz::DumpModel;
using fuzz::FakeDataplane;

constexpr DispatcherLimits kLimits{1 << 20, 32};

struct Api {
  FakeDataplane dataplane;
  Controller controller{"/tmp/butterfly-fuzz-sockets", dataplane};
  Dispatcher dispatcher{controller, kLimits};
};

proto::Messages Answer(Dispatcher& dispatcher, std::string_view frame) {
  proto::Messages answer;
  FUZZ_CHECK(answer.ParseFromString(dispatcher.HandleFrame(frame)),
             "the answer does not decode as Messages");
  return answer;
}

bool Refused(const proto::Message& answer) {
  return answer.has_error() || !answer.message_0().response().status().status();
}

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  SetLogLevel(LogLevel::kNone);  // app_config may have changed it
  std::string_view frame(reinterpret_cast<const char*>(data), size);

  // The whole frame at once.
  Api whole;
  proto::Messages answer = Answer(whole.dispatcher, frame);
  proto::Messages request;
  proto::Error::Code refusal;
  if (!whole.dispatcher.DecodeFrame(frame, &request, &refusal) || request.has_encrypted() ||
      request.messages_size() == 0) {
    FUZZ_CHECK(answer.messages_size() == 1 && answer.messages(0).has_error());
    FUZZ_CHECK(DumpModel(whole.controller).empty(), "a refused frame changed the model");
    return 0;
  }
  FUZZ_CHECK(answer.messages_size() == request.messages_size(), "one answer per message");
  fuzz::CheckDataplaneMatchesModel(whole.controller, whole.dataplane);

  // The same messages, one frame each: a refused one changes nothing.
  Api single;
  for (int i = 0; i < request.messages_size(); ++i) {
    proto::Messages one;
    *one.add_messages() = request.messages(i);
    std::string before = DumpModel(single.controller);
    proto::Messages reply = Answer(single.dispatcher, one.SerializePartialAsString());
    FUZZ_CHECK(reply.messages_size() == 1);
    if (Refused(reply.messages(0))) {
      FUZZ_CHECK(DumpModel(single.controller) == before,
                 "message %d was refused (%s) but changed the model", i,
                 reply.messages(0).ShortDebugString().c_str());
    }
    fuzz::CheckDataplaneMatchesModel(single.controller, single.dataplane);
  }
  FUZZ_CHECK(DumpModel(single.controller) == DumpModel(whole.controller),
             "the frame's messages one by one end elsewhere than the frame");
  return 0;
}
