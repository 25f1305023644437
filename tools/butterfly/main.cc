// butterfly: the admin CLI of butterflyd. Commands chained with ` + ` are sent as one batch.
#include <cstdlib>
#include <iostream>
#include <set>

#include "client.h"
#include "command.h"
#include "core/curve_keys.h"
#include "core/daemon_config.h"
#include "core/version.h"

namespace butterfly::cli {
namespace {

struct GlobalOptions {
  std::string endpoint;
  bool verbose = false;
  double timeout_seconds = 5;
  bool json = false;
  std::string key_file;
};

void AddGlobalOptions(CLI::App& app, GlobalOptions& globals) {
  app.add_option("-e,--endpoint", globals.endpoint,
                 std::string("butterflyd's API endpoint (default $BUTTERFLY_ENDPOINT or ") +
                     kDefaultEndpoint + ")");
  app.add_flag("-v,--verbose", globals.verbose,
               "print requests and answers (protobuf text) on stderr");
  app.add_option("-t,--timeout", globals.timeout_seconds,
                 "seconds to wait for an answer (default 5)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", globals.json, "print JSON (one document per command, one per line)");
  app.add_option(
      "-k,--key", globals.key_file,
      "CURVE client key file (from `butterfly keygen`), for a daemon run with --curve-keys");
}

const char* kDescription =
    "butterfly: drive butterflyd, the Butterfly virtual switch.\n"
    "Chain commands with ' + ' to send them as one batch (applied in order, each answered).";

const char* kFooter =
    "Examples:\n"
    "  butterfly nic add --id vnic_1 --mac 52:54:00:12:34:01 --vni 42 --ip 198.18.0.1 --sg sg-web\n"
    "  butterfly sg rule add sg-web --ip-proto tcp --port 80 --cidr 0.0.0.0/0\n"
    "  butterfly sg add sg-db + sg member add sg-db 198.18.0.7 + nic sg add vnic_1 sg-db\n"
    "  butterfly --json nic details\n"
    "Every command takes -h/--help (or the word help) and shows an example.\n"
    "Exit codes: 0 success, 1 the daemon refused or could not be reached (message on stderr),\n"
    "2 bad usage.";

// The original CLI accepted the word `help` where a subcommand may follow ("butterfly nic help",
// "butterfly sg rule add help"); map it to --help.
std::vector<std::string> HelpWordToFlag(std::vector<std::string> args) {
  static const std::set<std::string> kCommandWords = {
      "nic",    "sg",     "add",    "update", "del",      "list", "details", "stats",
      "rule",   "member", "set",    "status", "shutdown", "dump", "request", "config",
      "keygen", "server", "client", "stats",  "fdb",      "vni",  "peers",   "export"};
  static const std::set<std::string> kGlobalsWithValue = {"-e",        "--endpoint", "-t",
                                                          "--timeout", "-k",         "--key"};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "help") {
      args[i] = "--help";
      break;
    }
    if (kGlobalsWithValue.contains(args[i])) {
      ++i;  // skip the option's value
    } else if (!kCommandWords.contains(args[i]) && (args[i].empty() || args[i][0] != '-')) {
      break;  // an argument: "help" after it is a value (e.g. a group named help)
    }
  }
  return args;
}

std::unique_ptr<CLI::App> BuildApp(GlobalOptions& globals, Command* command) {
  auto app = std::make_unique<CLI::App>(kDescription, "butterfly");
  app->set_version_flag("-V,--version", std::string("butterfly ") + kButterflyVersion);
  app->require_subcommand(1);
  AddGlobalOptions(*app, globals);
  AddNicCommands(*app, command);
  AddSgCommands(*app, command);
  AddAppCommands(*app, command);
  AddDataplaneCommands(*app, command);
  AddKeygenCommand(*app, command);
  for (CLI::App* sub : app->get_subcommands({})) sub->fallthrough();
  // Set last: subcommands copy their parent's footer when they are created.
  app->footer(kFooter);
  return app;
}

int Run(int argc, char** argv) {
  // Split the command line into segments at each lone '+'.
  std::vector<std::vector<std::string>> segments(1);
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "+") {
      segments.emplace_back();
    } else {
      segments.back().push_back(argv[i]);
    }
  }
  GlobalOptions globals;
  std::vector<Command> commands;
  for (auto& segment : segments) {
    Command command;
    auto app = BuildApp(globals, &command);
    std::vector<std::string> args = HelpWordToFlag(segment);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    try {
      app->parse(args);
    } catch (const CLI::CallForHelp&) {
      // Help of the deepest subcommand named.
      CLI::App* deepest = app.get();
      std::string path = "butterfly";
      while (!deepest->get_subcommands().empty()) {
        deepest = deepest->get_subcommands().front();
        path += " " + deepest->get_name();
      }
      // CLI11 names only the last word in "Usage:"; show the whole command.
      std::string help = deepest->help();
      if (deepest != app.get()) {
        std::string usage = "Usage: " + deepest->get_name();
        if (auto at = help.find(usage); at != std::string::npos) {
          help.replace(at, usage.size(), "Usage: " + path);
        }
      }
      std::cout << help;
      return 0;
    } catch (const CLI::CallForVersion&) {
      std::cout << "butterfly " << kButterflyVersion << "\n";
      return 0;
    } catch (const CLI::ParseError& error) {
      std::cerr << "butterfly: " << error.what() << "\n";
      std::string path;
      for (CLI::App* sub = app.get(); sub && !sub->get_subcommands().empty();) {
        sub = sub->get_subcommands().front();
        path += " " + sub->get_name();
      }
      std::cerr << "Run 'butterfly" << path << " --help' for usage.\n";
      return 2;
    }
    if (command.run_local) {
      if (segments.size() > 1) {
        std::cerr << "butterfly: " << command.name << " cannot be chained with other commands\n";
        return 2;
      }
      return command.run_local(Output{globals.json, std::cout, std::cerr});
    }
    if (!command.build && !command.raw_batch) {
      std::cerr << "butterfly: no command given; run 'butterfly --help'\n";
      return 2;
    }
    commands.push_back(std::move(command));
  }
  for (const Command& command : commands) {
    if (command.raw_batch && commands.size() > 1) {
      std::cerr << "butterfly: `request` cannot be chained with other commands\n";
      return 2;
    }
  }

  ClientOptions client_options;
  const char* env_endpoint = std::getenv("BUTTERFLY_ENDPOINT");
  client_options.endpoint = !globals.endpoint.empty() ? globals.endpoint
                            : env_endpoint            ? env_endpoint
                                                      : kDefaultEndpoint;
  client_options.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(globals.timeout_seconds * 1000));
  client_options.verbose = globals.verbose;
  if (!globals.key_file.empty()) {
    auto keys = ReadClientKeyFile(globals.key_file);
    if (!keys) {
      std::cerr << "butterfly: " << keys.error() << "\n";
      return 2;
    }
    client_options.server_public_key = keys->server_public;
    client_options.client_public_key = keys->public_key;
    client_options.client_secret_key = keys->secret_key;
  }
  Client client(client_options);
  Output output{globals.json, std::cout, std::cerr};

  proto::Messages batch;
  std::vector<size_t> counts;
  for (Command& command : commands) {
    if (command.raw_batch) {
      batch = *command.raw_batch;
      counts.push_back(batch.messages_size());
      continue;
    }
    std::vector<MessageV0_Request> requests;
    if (auto built = command.build(client, requests); !built) {
      std::cerr << "butterfly " << command.name << ": " << built.error() << "\n";
      return 1;
    }
    for (const auto& request : requests) {
      proto::Message* message = batch.add_messages();
      message->set_revision(0);
      *message->mutable_message_0()->mutable_request() = request;
    }
    counts.push_back(requests.size());
  }
  auto answer = client.RoundTrip(batch);
  if (!answer) {
    std::cerr << "butterfly: " << answer.error() << "\n";
    return 1;
  }
  if (answer->messages_size() != batch.messages_size()) {
    std::string reason = answer->messages_size() == 1 && answer->messages(0).has_error()
                             ? proto::Error_Code_Name(answer->messages(0).error().code())
                             : std::to_string(answer->messages_size()) + " answers to " +
                                   std::to_string(batch.messages_size()) + " requests";
    std::cerr << "butterfly: the daemon refused the batch: " << reason << "\n";
    return 1;
  }
  bool ok = true;
  int next = 0;
  for (size_t c = 0; c < commands.size(); ++c) {
    std::vector<const proto::Message*> answers;
    for (size_t n = 0; n < counts[c]; ++n) answers.push_back(&answer->messages(next++));
    if (!commands[c].render(answers, output)) ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace butterfly::cli

int main(int argc, char** argv) { return butterfly::cli::Run(argc, argv); }
