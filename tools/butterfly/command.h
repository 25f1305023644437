// One CLI command ("nic add", "sg rule list", ...) once its arguments are parsed: the requests it
// sends and how it prints their answers. Commands chained with ` + ` go in one batch.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "client.h"
#include "core/result.h"
#include "message.pb.h"
#include "output.h"

namespace butterfly::cli {

struct Command {
  std::string name;
  // Builds the requests; may ask the daemon first (e.g. the current groups of a vnic).
  std::function<Status(Client&, std::vector<MessageV0_Request>&)> build;
  // Prints the answers to its requests, in order. Returns false when one of them failed (its
  // error is printed on stderr).
  std::function<bool(const std::vector<const proto::Message*>&, const Output&)> render;
  // `request FILE` sends a whole batch as written, not chainable with other commands.
  std::optional<proto::Messages> raw_batch;
  // Commands that need no daemon (keygen) run here and return the exit code.
  std::function<int(const Output&)> run_local;
};

// Each Add* function adds an area's subcommands to `app`; parsing one of them sets `*command`.
void AddNicCommands(CLI::App& app, Command* command);
void AddSgCommands(CLI::App& app, Command* command);
void AddAppCommands(CLI::App& app, Command* command);
void AddKeygenCommand(CLI::App& app, Command* command);
void AddDataplaneCommands(CLI::App& app, Command* command);

// The response of an answer, or nullptr after printing why there is none (error code, failed
// status) prefixed with the command's name.
const MessageV0_Response* ResponseOrReport(const proto::Message& answer, const std::string& command,
                                           const Output& output);
// Render for commands that print nothing but errors ({"ok":true} with --json).
bool RenderStatusOnly(const std::string& command, const std::vector<const proto::Message*>& answers,
                      const Output& output);
// A usage error found after parsing (exit code 2), e.g. a malformed MAC.
[[noreturn]] void UsageError(const std::string& message);

}  // namespace butterfly::cli
