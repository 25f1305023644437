// Fuzz target: the CLI's request files (`butterfly request FILE`: protobuf text format of
// proto.Messages, as `butterfly dump` prints). The text is parsed as the CLI parses it; what
// parses is sent to the API (dataplane faked) as the CLI sends it, and the answer must decode
// and print back (`--stdout`) to text that parses to the same answer. A refused message
// changes nothing.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "api/dispatcher.h"
#include "api_model.h"
#include "core/log.h"

namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string& message) override {
    if (text.empty()) text = message;
  }
  std::string text;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  SetLogLevel(LogLevel::kNone);
  std::string text(reinterpret_cast<const char*>(data), size);
  proto::Messages batch;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &batch)) return 0;
  std::string frame;
  FUZZ_CHECK(batch.SerializeToString(&frame), "a parsed request file does not serialize");

  fuzz::FakeDataplane dataplane;
  Controller controller("/tmp/butterfly-fuzz-sockets", dataplane);
  Dispatcher dispatcher(controller, DispatcherLimits{1 << 20, 32});
  proto::Messages answer;
  FUZZ_CHECK(answer.ParseFromString(dispatcher.HandleFrame(frame)));
  bool refused_all = true;
  for (const proto::Message& message : answer.messages()) {
    if (!message.has_error() && message.message_0().response().status().status()) {
      refused_all = false;
    }
  }
  if (refused_all) FUZZ_CHECK(fuzz::DumpModel(controller).empty(), "refused, yet changed");
  fuzz::CheckDataplaneMatchesModel(controller, dataplane);

  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(answer, &printed));
  proto::Messages reparsed;
  FUZZ_CHECK(google::protobuf::TextFormat::ParseFromString(printed, &reparsed),
             "the printed answer does not parse:\n%s", printed.c_str());
  FUZZ_CHECK(reparsed.SerializeAsString() == answer.SerializeAsString());
  return 0;
}
