#include "command.h"

namespace butterfly::cli {

const MessageV0_Response* ResponseOrReport(const proto::Message& answer, const std::string& command,
                                           const Output& output) {
  std::string error;
  if (answer.has_error()) {
    error = "the daemon answered " + proto::Error_Code_Name(answer.error().code());
  } else if (!answer.has_message_0() || !answer.message_0().has_response()) {
    error = "the daemon's answer has no response";
  } else if (!answer.message_0().response().status().status()) {
    const auto& status = answer.message_0().response().status();
    error = status.has_error() && status.error().has_description() ? status.error().description()
                                                                   : "failed (no details given)";
  } else {
    return &answer.message_0().response();
  }
  output.err << "butterfly " << command << ": " << error << "\n";
  if (output.json) {
    output.PrintJson(JsonValue::Object{{"ok", false}, {"error", error}});
  }
  return nullptr;
}

bool RenderStatusOnly(const std::string& command, const std::vector<const proto::Message*>& answers,
                      const Output& output) {
  bool ok = true;
  for (const proto::Message* answer : answers) {
    if (!ResponseOrReport(*answer, command, output)) ok = false;
  }
  if (ok && output.json) output.PrintJson(JsonValue::Object{{"ok", true}});
  return ok;
}

void UsageError(const std::string& message) { throw CLI::ValidationError(message); }

}  // namespace butterfly::cli
