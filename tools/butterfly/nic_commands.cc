// butterfly nic add|update|del|list|details|stats|sg ...
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "command.h"
#include "core/model.h"
#include "core/net_types.h"

namespace butterfly::cli {
namespace {

std::string CheckedMac(const std::string& option, const std::string& text) {
  auto mac = MacAddress::Parse(text);
  if (!mac) UsageError(option + ": " + mac.error());
  return mac->ToString();
}

void CheckIps(const std::string& option, const std::vector<std::string>& ips, bool allow_clear) {
  for (const std::string& ip : ips) {
    if (allow_clear && ip.empty() && ips.size() == 1) continue;
    if (auto parsed = IpAddress::Parse(ip); !parsed) UsageError(option + ": " + parsed.error());
  }
}

bool ParseBoolWord(const std::string& option, const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  UsageError(option + ": '" + text + "' is not true or false");
}

// The vnic types: the CLI's word and the API's enum name (both accepted).
struct NicTypeWord {
  MessageV0_NicType type;
  const char* word;
  const char* api_name;
};
constexpr NicTypeWord kNicTypes[] = {
    {MessageV0_NicType_VHOST_USER_SERVER, "vhost", "VHOST_USER_SERVER"},
    {MessageV0_NicType_TAP, "tap", "TAP"},
    {MessageV0_NicType_BENCH, "bench", "BENCH"},
    {MessageV0_NicType_VHOST_USER_CLIENT, "vhost-client", "VHOST_USER_CLIENT"}};

MessageV0_NicType ParseType(const std::string& text) {
  for (const NicTypeWord& type : kNicTypes) {
    if (text == type.word || text == type.api_name) return type.type;
  }
  UsageError("--type: '" + text + "' is not vhost, tap, bench or vhost-client");
}

std::string TypeWord(MessageV0_NicType type) {
  for (const NicTypeWord& known : kNicTypes) {
    if (known.type == type) return known.word;
  }
  return "vhost";
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

JsonValue NicJson(const MessageV0_Nic& nic) {
  JsonValue::Object object{
      {"id", nic.id()},
      {"mac", nic.mac()},
      {"vni", nic.vni()},
      {"type", TypeWord(nic.type())},
      {"path", nic.path()},
      {"ips", JsonValue::StringArray({nic.ip().begin(), nic.ip().end()})},
      {"security_groups",
       JsonValue::StringArray({nic.security_group().begin(), nic.security_group().end()})},
      {"ip_anti_spoof", nic.ip_anti_spoof()},
      {"bypass_filtering", nic.bypass_filtering()},
      {"packet_trace", nic.packet_trace()},
      {"packet_trace_path", nic.packet_trace_path()},
      {"link", nic.state().link()},
      {"link_detail", nic.state().detail()},
  };
  if (nic.type() == MessageV0_NicType_BENCH) {
    object.emplace_back("btype", nic.btype());
    object.emplace_back("dip", nic.dip());
    object.emplace_back("dmac", nic.dmac());
  }
  return object;
}

void PrintNicHuman(const MessageV0_Nic& nic, std::ostream& out) {
  out << "nic " << nic.id() << "\n"
      << "  type              " << TypeWord(nic.type()) << "\n"
      << "  path              " << nic.path() << "\n"
      << "  link              " << nic.state().link()
      << (nic.state().detail().empty() ? "" : " (" + nic.state().detail() + ")") << "\n"
      << "  mac               " << nic.mac() << "\n"
      << "  vni               " << nic.vni() << "\n"
      << "  ips               " << Join(nic.ip()) << "\n"
      << "  security groups   " << Join(nic.security_group()) << "\n"
      << "  ip antispoof      " << (nic.ip_anti_spoof() ? "on" : "off") << "\n"
      << "  bypass filtering  " << (nic.bypass_filtering() ? "yes" : "no") << "\n"
      << "  packet trace      " << (nic.packet_trace() ? "on" : "off")
      << (nic.packet_trace_path().empty() ? "" : " (" + nic.packet_trace_path() + ")") << "\n";
  if (nic.type() == MessageV0_NicType_BENCH) {
    out << "  bench             " << nic.btype() << " dip " << nic.dip() << " dmac " << nic.dmac()
        << "\n";
  }
}

// Fetches one vnic's details (for read-modify-write commands).
Result<MessageV0_Nic> FetchNic(Client& client, const std::string& id) {
  MessageV0_Request request;
  request.set_nic_details(id);
  auto answer = client.RoundTrip(SingleRequest(request));
  if (!answer) return Error{answer.error()};
  if (answer->messages_size() != 1 || !answer->messages(0).has_message_0()) {
    return Fail("unexpected answer to nic_details");
  }
  const auto& response = answer->messages(0).message_0().response();
  if (!response.status().status()) return Fail(response.status().error().description());
  if (response.nic_details_size() != 1) return Fail("nic " + id + ": no such nic");
  return response.nic_details(0);
}

void AddNicAdd(CLI::App& nic, Command* command) {
  struct Args {
    std::string id, mac, type = "vhost", btype, dip, dmac, packet_trace, trace_path, path, flows;
    uint32_t vni = 0;
    std::vector<std::string> ips, sgs;
    bool antispoof = false, bypass = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* add = nic.add_subcommand("add",
                                     "Create a vnic (or update it: the same content again "
                                     "is a no-op) and print its socket path");
  add->add_option("--id", args->id, "vnic id (names its socket, or its TAP interface)")->required();
  add->add_option("--mac", args->mac, "MAC address of the VM's NIC, xx:xx:xx:xx:xx:xx")->required();
  add->add_option("--vni", args->vni, "VXLAN network, 0 to 16777215")
      ->required()
      ->check(CLI::Range(0u, (1u << 24) - 1));
  add->add_option("--ip", args->ips, "an IP of the VM (repeat for several, v4 and v6)");
  add->add_option("--sg", args->sgs, "a security group of the vnic (repeat for several)");
  add->add_flag("--enable-antispoof", args->antispoof, "check ARP/NDP senders against --ip");
  add->add_option("--type", args->type,
                  "vhost (default: Butterfly is the vhost-user server), vhost-client (QEMU is "
                  "the server, at --path), tap (a kernel interface named after --id), bench; the "
                  "original's VHOST_USER_SERVER, TAP, BENCH are accepted too");
  add->add_option("--path", args->path, "vhost-client only: QEMU's vhost-user socket");
  add->add_option("--btype", args->btype, "bench only: ICMP_SND_LIKE or ICMP_RCV_LIKE");
  add->add_option("--dip", args->dip, "bench only: destination IP");
  add->add_option("--dmac", args->dmac, "bench only: destination MAC");
  add->add_flag("--bypass-filtering", args->bypass, "no security group filtering for this vnic");
  add->add_option("--packet-trace", args->packet_trace, "true or false: trace its packets (pcap)");
  add->add_option("--trace-path", args->trace_path, "where the packet trace goes");
  add->add_option("--flows", args->flows,
                  "import tracked flows saved by `nic export` on the VM's previous host");
  add->footer(
      "Example:\n"
      "  butterfly nic add --id vnic_1 --mac 52:54:00:12:34:01 --vni 42 --ip 198.18.0.1 "
      "--sg sg-web\n"
      "  -> /tmp/qemu-vhost-vnic_1   (give it to QEMU: -chardev socket,path=...,reconnect=1)");
  add->callback([args, command] {
    MessageV0_Request request;
    MessageV0_Nic* nic = request.mutable_nic_add();
    nic->set_id(args->id);
    nic->set_mac(CheckedMac("--mac", args->mac));
    nic->set_vni(args->vni);
    CheckIps("--ip", args->ips, false);
    for (const auto& ip : args->ips) nic->add_ip(ip);
    for (const auto& sg : args->sgs) nic->add_security_group(sg);
    nic->set_ip_anti_spoof(args->antispoof);
    nic->set_bypass_filtering(args->bypass);
    nic->set_type(ParseType(args->type));
    if (!args->path.empty()) {
      if (nic->type() != MessageV0_NicType_VHOST_USER_CLIENT) {
        UsageError("--path applies to --type vhost-client only");
      }
      nic->set_path(args->path);
    }
    if (!args->packet_trace.empty()) {
      nic->set_packet_trace(ParseBoolWord("--packet-trace", args->packet_trace));
    }
    if (!args->trace_path.empty()) nic->set_packet_trace_path(args->trace_path);
    if (!args->btype.empty()) nic->set_btype(args->btype);
    if (!args->dip.empty()) nic->set_dip(args->dip);
    if (!args->dmac.empty()) nic->set_dmac(args->dmac);
    if (!args->flows.empty()) {
      std::ifstream file(args->flows, std::ios::binary);
      if (!file) UsageError("--flows: cannot read '" + args->flows + "'");
      std::stringstream bytes;
      bytes << file.rdbuf();
      nic->mutable_fw_data()->set_data(bytes.str());
    }
    std::string id = args->id;
    command->name = "nic add";
    command->build = [request](Client&, std::vector<MessageV0_Request>& out) {
      out.push_back(request);
      return Ok();
    };
    command->render = [id](const std::vector<const proto::Message*>& answers,
                           const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic add", output);
      if (!response) return false;
      if (output.json) {
        output.PrintJson(JsonValue::Object{{"id", id}, {"path", response->nic_add().path()}});
      } else {
        output.out << response->nic_add().path() << "\n";
      }
      return true;
    };
  });
}

void AddNicUpdate(CLI::App& nic, Command* command) {
  struct Args {
    std::string id, antispoof, packet_trace, trace_path;
    std::vector<std::string> ips, sgs;
  };
  auto args = std::make_shared<Args>();
  CLI::App* update = nic.add_subcommand("update", "Change some settings of a vnic in place");
  update->add_option("--id", args->id, "vnic id")->required();
  update->add_option("--ip", args->ips, "replaces the vnic's IPs (repeat; --ip '' clears them)");
  update->add_option("--sg", args->sgs, "replaces its security groups (repeat; --sg '' clears)");
  update->add_option("--enable-antispoof", args->antispoof, "true or false");
  update->add_option("--packet-trace", args->packet_trace, "true or false");
  update->add_option("--trace-path", args->trace_path, "where the packet trace goes");
  update->footer(
      "Example:\n  butterfly nic update --id vnic_1 --ip 198.18.0.1 --ip 2001:db8::1 "
      "--enable-antispoof true");
  update->callback([args, command] {
    MessageV0_Request request;
    auto* message = request.mutable_nic_update();
    message->set_id(args->id);
    CheckIps("--ip", args->ips, true);
    for (const auto& ip : args->ips) message->add_ip(ip);
    for (const auto& sg : args->sgs) message->add_security_group(sg);
    if (!args->antispoof.empty()) {
      message->set_ip_anti_spoof(ParseBoolWord("--enable-antispoof", args->antispoof));
    }
    if (!args->packet_trace.empty()) {
      message->set_packet_trace(ParseBoolWord("--packet-trace", args->packet_trace));
    }
    if (!args->trace_path.empty()) message->set_packet_trace_path(args->trace_path);
    command->name = "nic update";
    command->build = [request](Client&, std::vector<MessageV0_Request>& out) {
      out.push_back(request);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("nic update", answers, output);
    };
  });
}

void AddNicDel(CLI::App& nic, Command* command) {
  auto ids = std::make_shared<std::vector<std::string>>();
  CLI::App* del = nic.add_subcommand("del", "Delete vnics (a missing one is not an error)");
  del->add_option("ID", *ids, "vnic ids")->required();
  del->footer("Example:\n  butterfly nic del vnic_1 vnic_2");
  del->callback([ids, command] {
    command->name = "nic del";
    command->build = [ids](Client&, std::vector<MessageV0_Request>& out) {
      for (const auto& id : *ids) out.emplace_back().set_nic_del(id);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("nic del", answers, output);
    };
  });
}

void AddNicList(CLI::App& nic, Command* command) {
  CLI::App* list = nic.add_subcommand("list", "List vnic ids, one per line");
  list->footer("Example:\n  butterfly nic list\n  butterfly --json nic list   # [\"vnic_1\",...]");
  list->callback([command] {
    command->name = "nic list";
    command->build = [](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_nic_list(true);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic list", output);
      if (!response) return false;
      std::vector<std::string> ids(response->nic_list().begin(), response->nic_list().end());
      if (output.json) {
        output.PrintJson(JsonValue::StringArray(ids));
      } else {
        for (const auto& id : ids) output.out << id << "\n";
      }
      return true;
    };
  });
}

void AddNicDetails(CLI::App& nic, Command* command) {
  auto id = std::make_shared<std::string>();
  CLI::App* details = nic.add_subcommand("details", "Show a vnic's settings and link state");
  details->add_option("ID", *id, "vnic id (all vnics when omitted)");
  details->footer("Example:\n  butterfly nic details vnic_1\n  butterfly --json nic details");
  details->callback([id, command] {
    command->name = "nic details";
    command->build = [id](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_nic_details(*id);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic details", output);
      if (!response) return false;
      if (output.json) {
        JsonValue::Array nics;
        for (const auto& nic : response->nic_details()) nics.push_back(NicJson(nic));
        output.PrintJson(nics);
      } else {
        for (const auto& nic : response->nic_details()) PrintNicHuman(nic, output.out);
      }
      return true;
    };
  });
}

void AddNicStats(CLI::App& nic, Command* command) {
  auto id = std::make_shared<std::string>();
  CLI::App* stats = nic.add_subcommand("stats", "Show a vnic's traffic counters and drops");
  stats->add_option("ID", *id, "vnic id")->required();
  stats->footer(
      "Example:\n  butterfly nic stats vnic_1\n"
      "in = from the VM, out = to the VM (bytes and packets).");
  stats->callback([id, command] {
    command->name = "nic stats";
    command->build = [id](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_nic_stats(*id);
      return Ok();
    };
    command->render = [id](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic stats", output);
      if (!response) return false;
      const auto& stats = response->nic_stats();
      if (output.json) {
        JsonValue::Object drops;
        for (const auto& drop : stats.drops()) drops.emplace_back(drop.name(), drop.value());
        output.PrintJson(JsonValue::Object{{"id", *id},
                                           {"bytes_in", stats.in()},
                                           {"bytes_out", stats.out()},
                                           {"packets_in", stats.packets_in()},
                                           {"packets_out", stats.packets_out()},
                                           {"drops", drops}});
      } else {
        Table table({"COUNTER", "VALUE"});
        table.AddRow({"bytes in (from VM)", std::to_string(stats.in())});
        table.AddRow({"bytes out (to VM)", std::to_string(stats.out())});
        table.AddRow({"packets in", std::to_string(stats.packets_in())});
        table.AddRow({"packets out", std::to_string(stats.packets_out())});
        for (const auto& drop : stats.drops()) {
          table.AddRow({"drop " + drop.name(), std::to_string(drop.value())});
        }
        table.Print(output.out);
      }
      return true;
    };
  });
}

void AddNicExport(CLI::App& nic, Command* command) {
  struct Args {
    std::string id, out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* exported = nic.add_subcommand(
      "export", "Save a vnic's tracked flows, for the VM's next host (nic add --flows)");
  exported->add_option("ID", args->id, "vnic id")->required();
  exported->add_option("--out", args->out, "file to write")->required();
  exported->footer(
      "Example (live migration):\n  butterfly nic export vnic_1 --out vnic_1.flows\n"
      "  butterfly -e tcp://NEW_HOST:9999 nic add --id vnic_1 ... --flows vnic_1.flows");
  exported->callback([args, command] {
    command->name = "nic export";
    command->build = [args](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_nic_export(args->id);
      return Ok();
    };
    command->render = [args](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic export", output);
      if (!response) return false;
      const std::string& data = response->nic_export().fw_data().data();
      std::ofstream file(args->out, std::ios::binary | std::ios::trunc);
      if (!file.write(data.data(), static_cast<std::streamsize>(data.size()))) {
        output.err << "butterfly nic export: cannot write '" << args->out << "'\n";
        return false;
      }
      if (output.json) {
        output.PrintJson(JsonValue::Object{
            {"id", args->id}, {"file", args->out}, {"bytes", static_cast<uint64_t>(data.size())}});
      } else {
        output.out << "wrote " << data.size() << " bytes of flows to " << args->out << "\n";
      }
      return true;
    };
  });
}

void AddNicSg(CLI::App& nic, Command* command) {
  CLI::App* sg = nic.add_subcommand("sg", "List or change the security groups of a vnic");
  sg->require_subcommand(1);
  sg->footer("Example:\n  butterfly nic sg add vnic_1 sg-web");
  struct Args {
    std::string nic;
    std::vector<std::string> sgs;
  };
  for (const char* verb : {"list", "add", "del", "set"}) {
    auto args = std::make_shared<Args>();
    std::string what = verb;
    CLI::App* sub = sg->add_subcommand(
        verb, what == "list"  ? "Print the vnic's security groups"
              : what == "add" ? "Add security groups to the vnic"
              : what == "del" ? "Remove security groups from the vnic"
                              : "Replace the vnic's security groups (none: clear them)");
    sub->add_option("NIC", args->nic, "vnic id")->required();
    if (what != "list") {
      auto* option = sub->add_option("SG", args->sgs, "security group ids");
      if (what != "set") option->required();
    }
    sub->footer("Example:\n  butterfly nic sg " + what + " vnic_1" +
                (what == "list" ? "" : " sg-web sg-admin"));
    sub->callback([args, what, command] {
      command->name = "nic sg " + what;
      if (what == "list") {
        command->build = [args](Client&, std::vector<MessageV0_Request>& out) {
          out.emplace_back().set_nic_details(args->nic);
          return Ok();
        };
        command->render = [](const auto& answers, const Output& output) {
          const MessageV0_Response* response = ResponseOrReport(*answers[0], "nic sg list", output);
          if (!response) return false;
          std::vector<std::string> sgs;
          if (response->nic_details_size() == 1) {
            const auto& list = response->nic_details(0).security_group();
            sgs.assign(list.begin(), list.end());
          }
          if (output.json) {
            output.PrintJson(JsonValue::StringArray(sgs));
          } else {
            for (const auto& sg : sgs) output.out << sg << "\n";
          }
          return true;
        };
        return;
      }
      command->build = [args, what](Client& client, std::vector<MessageV0_Request>& out) -> Status {
        std::vector<std::string> sgs;
        if (what != "set") {
          auto nic = FetchNic(client, args->nic);
          if (!nic) return Error{nic.error()};
          sgs.assign(nic->security_group().begin(), nic->security_group().end());
        }
        for (const auto& sg : args->sgs) {
          auto found = std::find(sgs.begin(), sgs.end(), sg);
          if (what == "del") {
            if (found != sgs.end()) sgs.erase(found);
          } else if (found == sgs.end()) {
            sgs.push_back(sg);
          }
        }
        MessageV0_Request& request = out.emplace_back();
        request.mutable_nic_update()->set_id(args->nic);
        if (sgs.empty()) sgs.push_back("");  // a single "" clears the list
        for (const auto& sg : sgs) request.mutable_nic_update()->add_security_group(sg);
        return Ok();
      };
      command->render = [what](const auto& answers, const Output& output) {
        return RenderStatusOnly("nic sg " + what, answers, output);
      };
    });
  }
}

}  // namespace

void AddNicCommands(CLI::App& app, Command* command) {
  CLI::App* nic = app.add_subcommand("nic", "Manage vnics (VM network interfaces)");
  nic->require_subcommand(1);
  nic->footer(
      "Example:\n  butterfly nic add --id vnic_1 --mac 52:54:00:12:34:01 --vni 42\n"
      "Run 'butterfly nic COMMAND --help' for a command's options.");
  AddNicAdd(*nic, command);
  AddNicUpdate(*nic, command);
  AddNicDel(*nic, command);
  AddNicList(*nic, command);
  AddNicDetails(*nic, command);
  AddNicStats(*nic, command);
  AddNicExport(*nic, command);
  AddNicSg(*nic, command);
}

}  // namespace butterfly::cli
