// butterfly keygen server DIR | keygen client FILE --server PUB [--authorize DIR]
#include <filesystem>
#include <memory>

#include "command.h"
#include "core/curve_keys.h"

namespace butterfly::cli {
namespace {

int Report(const Status& status, const Output& output) {
  if (status) return 0;
  output.err << "butterfly keygen: " << status.error() << "\n";
  return 1;
}

Status MakeServerKeys(const std::string& dir, const Output& output) {
  std::error_code error;
  std::filesystem::create_directories(dir + "/clients", error);
  if (error) return Fail("cannot create '" + dir + "/clients': " + error.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  auto pair = GenerateCurveKeyPair();
  if (!pair) return Error{pair.error()};
  if (auto written =
          WriteNewFile(dir + "/server.key",
                       "public=" + pair->public_key + "\nsecret=" + pair->secret_key + "\n", 0600);
      !written) {
    return written;
  }
  if (auto written = WriteNewFile(dir + "/server.pub", "public=" + pair->public_key + "\n", 0644);
      !written) {
    return written;
  }
  if (output.json) {
    output.PrintJson(JsonValue::Object{{"server_key", dir + "/server.key"},
                                       {"server_pub", dir + "/server.pub"},
                                       {"public", pair->public_key}});
  } else {
    output.out << "wrote " << dir << "/server.key (secret, 0600) and " << dir << "/server.pub\n"
               << "start the daemon with: butterflyd --curve-keys " << dir << "\n";
  }
  return Ok();
}

Status MakeClientKeys(const std::string& file, const std::string& server,
                      const std::string& authorize_dir, const Output& output) {
  std::string server_pub = std::filesystem::is_directory(server) ? server + "/server.pub" : server;
  auto server_key = ReadPublicKeyFile(server_pub);
  if (!server_key) return Error{server_key.error()};
  auto pair = GenerateCurveKeyPair();
  if (!pair) return Error{pair.error()};
  if (auto written = WriteNewFile(file,
                                  "public=" + pair->public_key + "\nsecret=" + pair->secret_key +
                                      "\nserver=" + *server_key + "\n",
                                  0600);
      !written) {
    return written;
  }
  std::string pub = "public=" + pair->public_key + "\n";
  if (auto written = WriteNewFile(file + ".pub", pub, 0644); !written) return written;
  std::string authorized;
  if (!authorize_dir.empty()) {
    authorized =
        authorize_dir + "/clients/" + std::filesystem::path(file).filename().string() + ".pub";
    if (auto written = WriteNewFile(authorized, pub, 0644); !written) return written;
  }
  if (output.json) {
    output.PrintJson(JsonValue::Object{
        {"key_file", file}, {"public", pair->public_key}, {"authorized", authorized}});
  } else {
    output.out << "wrote " << file << " (secret, 0600) and " << file << ".pub\n";
    if (!authorized.empty()) {
      output.out << "authorised it: " << authorized << " (restart butterflyd to load it)\n";
    } else {
      output.out << "authorise it: copy " << file
                 << ".pub into the daemon's <curve-keys>/clients/\n";
    }
    output.out << "use it with: butterfly -k " << file << " ...\n";
  }
  return Ok();
}

}  // namespace

void AddKeygenCommand(CLI::App& app, Command* command) {
  CLI::App* keygen =
      app.add_subcommand("keygen", "Make ZeroMQ CURVE keys that authenticate and encrypt the API");
  keygen->require_subcommand(1);
  keygen->footer(
      "Example:\n"
      "  butterfly keygen server /etc/butterfly/curve\n"
      "  butterfly keygen client ~/.butterfly.key --server /etc/butterfly/curve "
      "--authorize /etc/butterfly/curve\n"
      "  butterflyd --curve-keys /etc/butterfly/curve ...\n"
      "  butterfly -k ~/.butterfly.key status");

  auto dir = std::make_shared<std::string>();
  CLI::App* server = keygen->add_subcommand("server", "Make the daemon's key pair in DIR");
  server->add_option("DIR", *dir, "key directory (server.key, server.pub, clients/)")->required();
  server->footer("Example:\n  butterfly keygen server /etc/butterfly/curve");
  server->callback([dir, command] {
    command->name = "keygen server";
    command->run_local = [dir](const Output& output) {
      return Report(MakeServerKeys(*dir, output), output);
    };
  });

  auto file = std::make_shared<std::string>();
  auto server_pub = std::make_shared<std::string>();
  auto authorize = std::make_shared<std::string>();
  CLI::App* client = keygen->add_subcommand("client", "Make a client key file for -k/--key");
  client->add_option("FILE", *file, "client key file to write (and FILE.pub)")->required();
  client->add_option("--server", *server_pub, "the daemon's server.pub, or its key directory")
      ->required();
  client->add_option("--authorize", *authorize,
                     "also authorise the key: write it into DIR/clients/ of this daemon key dir");
  client->footer(
      "Example:\n  butterfly keygen client admin.key --server /etc/butterfly/curve "
      "--authorize /etc/butterfly/curve");
  client->callback([file, server_pub, authorize, command] {
    command->name = "keygen client";
    command->run_local = [file, server_pub, authorize](const Output& output) {
      return Report(MakeClientKeys(*file, *server_pub, *authorize, output), output);
    };
  });
}

}  // namespace butterfly::cli
