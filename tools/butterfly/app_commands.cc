// butterfly status | shutdown | dump | request FILE | config
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "command.h"
#include "core/log.h"

namespace butterfly::cli {
namespace {

std::string Duration(uint64_t seconds) {
  std::string out;
  if (seconds >= 86400) out += std::to_string(seconds / 86400) + "d ";
  if (seconds >= 3600) out += std::to_string(seconds / 3600 % 24) + "h ";
  if (seconds >= 60) out += std::to_string(seconds / 60 % 60) + "m ";
  return out + std::to_string(seconds % 60) + "s";
}

std::string Date(uint64_t epoch) {
  std::time_t time = static_cast<std::time_t>(epoch);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

void AddStatus(CLI::App& app, Command* command) {
  auto dot_only = std::make_shared<bool>(false);
  CLI::App* status = app.add_subcommand("status",
                                        "Show uptime, request counter, dataplane state "
                                        "and the graph of VNIs, vnics and groups");
  status->add_flag("--dot", *dot_only, "print only the graphviz graph");
  status->footer("Examples:\n  butterfly status\n  butterfly status --dot | dot -Tsvg > graph.svg");
  status->callback([dot_only, command] {
    command->name = "status";
    command->build = [](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_app_status(true);
      return Ok();
    };
    command->render = [dot_only](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "status", output);
      if (!response) return false;
      const auto& s = response->app_status();
      uint64_t uptime = s.current_date() >= s.start_date() ? s.current_date() - s.start_date() : 0;
      if (output.json) {
        output.PrintJson(JsonValue::Object{{"version", s.version()},
                                           {"start_date", s.start_date()},
                                           {"current_date", s.current_date()},
                                           {"uptime_seconds", uptime},
                                           {"request_counter", s.request_counter()},
                                           {"dataplane", s.dataplane()},
                                           {"graph_dot", s.graph_dot()}});
      } else if (*dot_only) {
        output.out << s.graph_dot();
      } else {
        output.out << "version      " << s.version() << "\n"
                   << "started      " << Date(s.start_date()) << "\n"
                   << "uptime       " << Duration(uptime) << "\n"
                   << "requests     " << s.request_counter() << "\n"
                   << "dataplane    " << s.dataplane() << "\n"
                   << "graph (dot):\n"
                   << s.graph_dot();
      }
      return true;
    };
  });
}

void AddShutdown(CLI::App& app, Command* command) {
  CLI::App* shutdown = app.add_subcommand("shutdown", "Stop butterflyd cleanly");
  shutdown->footer("Example:\n  butterfly shutdown");
  shutdown->callback([command] {
    command->name = "shutdown";
    command->build = [](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_app_quit(true);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("shutdown", answers, output);
    };
  });
}

void AddConfig(CLI::App& app, Command* command) {
  auto level = std::make_shared<std::string>();
  CLI::App* config = app.add_subcommand("config", "Change butterflyd's settings at run time");
  config->add_option("--log-level", *level, "none, error, warning, info or debug")->required();
  config->footer("Example:\n  butterfly config --log-level debug");
  config->callback([level, command] {
    if (auto parsed = ParseLogLevel(*level); !parsed) UsageError("--log-level: " + parsed.error());
    command->name = "config";
    command->build = [level](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().mutable_app_config()->set_log_level(*level);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("config", answers, output);
    };
  });
}

void AddDump(CLI::App& app, Command* command) {
  CLI::App* dump = app.add_subcommand(
      "dump", "Print the whole state (vnics, security groups) as a request file");
  dump->footer(
      "Example (move the state to a fresh daemon):\n"
      "  butterfly dump > state.req\n"
      "  butterfly -e tcp://127.0.0.1:9998 request state.req");
  dump->callback([command] {
    command->name = "dump";
    command->build = [](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_nic_details("");
      out.emplace_back().set_sg_details("");
      out.emplace_back().mutable_fdb_list();
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      const MessageV0_Response* nics = ResponseOrReport(*answers[0], "dump", output);
      const MessageV0_Response* sgs = ResponseOrReport(*answers[1], "dump", output);
      const MessageV0_Response* fdb = ResponseOrReport(*answers[2], "dump", output);
      if (!nics || !sgs || !fdb) return false;
      proto::Messages requests;
      for (const auto& nic : nics->nic_details()) {
        proto::Message* message = requests.add_messages();
        message->set_revision(0);
        MessageV0_Nic* add = message->mutable_message_0()->mutable_request()->mutable_nic_add();
        *add = nic;
        add->clear_state();  // live state, not configuration
      }
      for (const auto& sg : sgs->sg_details()) {
        proto::Message* message = requests.add_messages();
        message->set_revision(0);
        *message->mutable_message_0()->mutable_request()->mutable_sg_add() = sg;
      }
      // Configuration only: peers of VNIs and static MACs (not local or learned ones).
      for (const auto& vni : fdb->vni_list()) {
        if (vni.peer_size() == 0) continue;
        proto::Message* message = requests.add_messages();
        message->set_revision(0);
        MessageV0_VniPeers* peers =
            message->mutable_message_0()->mutable_request()->mutable_vni_peers_set();
        peers->set_vni(vni.vni());
        *peers->mutable_peer() = vni.peer();
      }
      for (const auto& entry : fdb->fdb_list()) {
        if (entry.kind() != "static") continue;
        proto::Message* message = requests.add_messages();
        message->set_revision(0);
        MessageV0_FdbEntry* add =
            message->mutable_message_0()->mutable_request()->mutable_fdb_add();
        add->set_vni(entry.vni());
        add->set_mac(entry.mac());
        add->set_vtep(entry.vtep());
      }
      std::string text;
      google::protobuf::TextFormat::PrintToString(requests, &text);
      output.out << text;
      return true;
    };
  });
}

// Collects the text parser's complaints with their line and column.
class ParseErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (text.empty())
      text = "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string text;
};

void AddRequest(CLI::App& app, Command* command) {
  auto path = std::make_shared<std::string>();
  auto to_stdout = std::make_shared<bool>(false);
  CLI::App* request = app.add_subcommand(
      "request", "Send a request file (protobuf text format of proto.Messages, as `dump` prints)");
  request->add_option("FILE", *path, "request file ('-' reads stdin)")->required();
  request->add_flag("--stdout", *to_stdout, "print the daemon's answer (protobuf text format)");
  request->footer(
      "Example:\n  butterfly request state.req\n"
      "A file holds messages { revision: 0 message_0 { request { ... } } } blocks.");
  request->callback([path, to_stdout, command] {
    std::stringstream text;
    if (*path == "-") {
      text << std::cin.rdbuf();
    } else {
      std::ifstream file(*path);
      if (!file) UsageError("cannot read request file '" + *path + "'");
      text << file.rdbuf();
    }
    proto::Messages batch;
    google::protobuf::TextFormat::Parser parser;
    ParseErrors errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text.str(), &batch)) {
      UsageError(*path + ": " + (errors.text.empty() ? "not a request file" : errors.text));
    }
    command->name = "request";
    command->raw_batch = batch;
    command->render = [to_stdout](const auto& answers, const Output& output) {
      bool ok = true;
      for (const proto::Message* answer : answers) {
        if (*to_stdout) {
          std::string text;
          google::protobuf::TextFormat::PrintToString(*answer, &text);
          output.out << "messages {\n" << text << "}\n";
        }
        if (!ResponseOrReport(*answer, "request", output)) ok = false;
      }
      if (ok && output.json)
        output.PrintJson(JsonValue::Object{{"ok", true}, {"messages", answers.size()}});
      return ok;
    };
  });
}

}  // namespace

void AddAppCommands(CLI::App& app, Command* command) {
  AddStatus(app, command);
  AddShutdown(app, command);
  AddConfig(app, command);
  AddDump(app, command);
  AddRequest(app, command);
}

}  // namespace butterfly::cli
