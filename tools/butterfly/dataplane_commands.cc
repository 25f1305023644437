// butterfly stats | fdb add|del|list | vni peers
#include <cstdio>
#include <memory>

#include "command.h"
#include "core/net_types.h"

namespace butterfly::cli {
namespace {

std::string PerPacket(uint64_t cycles, uint64_t packets) {
  if (packets == 0) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(cycles) / packets);
  return text;
}

JsonValue CountersJson(const google::protobuf::RepeatedPtrField<MessageV0_Counter>& counters) {
  JsonValue::Object object;
  for (const auto& counter : counters) object.emplace_back(counter.name(), counter.value());
  return object;
}

void AddStats(CLI::App& app, Command* command) {
  auto all = std::make_shared<bool>(false);
  CLI::App* stats = app.add_subcommand(
      "stats", "Per worker and per stage counters: packets, drops, cycles per packet");
  stats->add_flag("--all", *all, "also list stages and drop reasons that saw nothing");
  stats->footer(
      "Example:\n  butterfly stats\n  butterfly --json stats\n"
      "cycles/pkt is TSC cycles per packet in that stage; busy% is the share of the "
      "worker's cycles spent on loops that found work.");
  stats->callback([all, command] {
    command->name = "stats";
    command->build = [](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_dp_stats(true);
      return Ok();
    };
    command->render = [all](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "stats", output);
      if (!response) return false;
      const auto& stats = response->dp_stats();
      if (output.json) {
        JsonValue::Array workers;
        for (const auto& worker : stats.workers()) {
          JsonValue::Object stages;
          for (const auto& stage : worker.stages()) {
            stages.emplace_back(stage.name(), JsonValue::Object{{"packets", stage.packets()},
                                                                {"drops", stage.drops()},
                                                                {"cycles", stage.cycles()},
                                                                {"calls", stage.calls()}});
          }
          workers.push_back(JsonValue::Object{{"id", worker.id()},
                                              {"lcore", worker.lcore()},
                                              {"vnics", worker.vnics()},
                                              {"loops", worker.loops()},
                                              {"busy_loops", worker.busy_loops()},
                                              {"sleeps", worker.sleeps()},
                                              {"busy_cycles", worker.busy_cycles()},
                                              {"idle_cycles", worker.idle_cycles()},
                                              {"stages", stages},
                                              {"drops", CountersJson(worker.drops())}});
        }
        output.PrintJson(JsonValue::Object{{"dataplane", stats.description()},
                                           {"tsc_hz", stats.tsc_hz()},
                                           {"workers", workers},
                                           {"filter", CountersJson(stats.filter())}});
        return true;
      }
      output.out << "dataplane  " << stats.description() << "\n";
      for (const auto& worker : stats.workers()) {
        uint64_t total = worker.busy_cycles() + worker.idle_cycles();
        char busy[16];
        std::snprintf(busy, sizeof(busy), "%.1f",
                      total ? 100.0 * static_cast<double>(worker.busy_cycles()) / total : 0.0);
        output.out << "\nworker " << worker.id() << " (lcore " << worker.lcore() << ", "
                   << worker.vnics() << " vnics): " << worker.loops() << " loops, " << busy
                   << "% busy, " << worker.sleeps() << " sleeps\n";
        Table table({"STAGE", "PACKETS", "DROPS", "CALLS", "CYCLES/PKT"});
        for (const auto& stage : worker.stages()) {
          if (!*all && stage.packets() == 0 && stage.drops() == 0) continue;
          table.AddRow({stage.name(), std::to_string(stage.packets()),
                        std::to_string(stage.drops()), std::to_string(stage.calls()),
                        PerPacket(stage.cycles(), stage.packets())});
        }
        table.Print(output.out);
        Table drops({"DROP REASON", "PACKETS"});
        bool any = false;
        for (const auto& drop : worker.drops()) {
          if (!*all && drop.value() == 0) continue;
          drops.AddRow({drop.name(), std::to_string(drop.value())});
          any = true;
        }
        if (any) drops.Print(output.out);
      }
      if (stats.filter_size() > 0) {
        output.out << "\nfilter:";
        for (const auto& counter : stats.filter()) {
          output.out << " " << counter.name() << "=" << counter.value();
        }
        output.out << "\n";
      }
      return true;
    };
  });
}

void AddFdb(CLI::App& app, Command* command) {
  CLI::App* fdb = app.add_subcommand("fdb",
                                     "The forwarding database: local, static and learned "
                                     "MACs of each VNI");
  fdb->require_subcommand(1);
  fdb->footer("Example:\n  butterfly fdb list --vni 42");

  struct Entry {
    uint32_t vni = 0;
    std::string mac, vtep;
  };
  auto add_args = std::make_shared<Entry>();
  CLI::App* add = fdb->add_subcommand("add", "Add a static remote MAC: (VNI, MAC) is behind VTEP");
  add->add_option("--vni", add_args->vni, "VXLAN network")
      ->required()
      ->check(CLI::Range(0u, (1u << 24) - 1));
  add->add_option("--mac", add_args->mac, "the remote VM's MAC")->required();
  add->add_option("--vtep", add_args->vtep,
                  "the VTEP that hosts it (of the family of the daemon's VTEP address, -i)")
      ->required();
  add->footer("Example:\n  butterfly fdb add --vni 42 --mac 52:54:00:00:01:01 --vtep 198.18.0.2");
  add->callback([add_args, command] {
    if (auto mac = MacAddress::Parse(add_args->mac); !mac) UsageError("--mac: " + mac.error());
    if (auto ip = IpAddress::Parse(add_args->vtep); !ip) UsageError("--vtep: " + ip.error());
    command->name = "fdb add";
    command->build = [add_args](Client&, std::vector<MessageV0_Request>& out) {
      MessageV0_FdbEntry* entry = out.emplace_back().mutable_fdb_add();
      entry->set_vni(add_args->vni);
      entry->set_mac(add_args->mac);
      entry->set_vtep(add_args->vtep);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("fdb add", answers, output);
    };
  });

  auto del_args = std::make_shared<Entry>();
  CLI::App* del = fdb->add_subcommand("del", "Remove a static remote MAC");
  del->add_option("--vni", del_args->vni, "VXLAN network")
      ->required()
      ->check(CLI::Range(0u, (1u << 24) - 1));
  del->add_option("--mac", del_args->mac, "the remote VM's MAC")->required();
  del->footer("Example:\n  butterfly fdb del --vni 42 --mac 52:54:00:00:01:01");
  del->callback([del_args, command] {
    if (auto mac = MacAddress::Parse(del_args->mac); !mac) UsageError("--mac: " + mac.error());
    command->name = "fdb del";
    command->build = [del_args](Client&, std::vector<MessageV0_Request>& out) {
      MessageV0_FdbEntry* entry = out.emplace_back().mutable_fdb_del();
      entry->set_vni(del_args->vni);
      entry->set_mac(del_args->mac);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("fdb del", answers, output);
    };
  });

  auto list_vni = std::make_shared<std::optional<uint32_t>>();
  CLI::App* list = fdb->add_subcommand("list", "List MACs and each VNI's flood targets");
  list->add_option("--vni", *list_vni, "only this VNI");
  list->footer("Example:\n  butterfly fdb list\n  butterfly --json fdb list --vni 42");
  list->callback([list_vni, command] {
    command->name = "fdb list";
    command->build = [list_vni](Client&, std::vector<MessageV0_Request>& out) {
      MessageV0_FdbListReq* request = out.emplace_back().mutable_fdb_list();
      if (*list_vni) request->set_vni(**list_vni);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "fdb list", output);
      if (!response) return false;
      if (output.json) {
        JsonValue::Array entries;
        for (const auto& e : response->fdb_list()) {
          entries.push_back(JsonValue::Object{{"vni", e.vni()},
                                              {"mac", e.mac()},
                                              {"kind", e.kind()},
                                              {"nic", e.nic()},
                                              {"vtep", e.vtep()},
                                              {"idle_seconds", e.idle_seconds()}});
        }
        JsonValue::Array vnis;
        for (const auto& v : response->vni_list()) {
          vnis.push_back(JsonValue::Object{
              {"vni", v.vni()},
              {"peers", JsonValue::StringArray({v.peer().begin(), v.peer().end()})},
              {"multicast_group", v.multicast_group()}});
        }
        output.PrintJson(JsonValue::Object{{"macs", entries}, {"vnis", vnis}});
        return true;
      }
      Table table({"VNI", "MAC", "KIND", "WHERE", "IDLE"});
      for (const auto& e : response->fdb_list()) {
        table.AddRow({std::to_string(e.vni()), e.mac(), e.kind(),
                      e.kind() == "local" ? "nic " + e.nic() : "vtep " + e.vtep(),
                      e.kind() == "learned" ? std::to_string(e.idle_seconds()) + "s" : "-"});
      }
      table.Print(output.out);
      Table floods({"VNI", "FLOODS TO"});
      for (const auto& v : response->vni_list()) {
        std::string targets;
        for (const auto& peer : v.peer()) targets += (targets.empty() ? "" : ", ") + peer;
        std::string group = v.multicast_group().empty()
                                ? "no remote VTEP (IPv6 underlay: set peers)"
                                : "multicast group " + v.multicast_group();
        floods.AddRow({std::to_string(v.vni()), targets.empty() ? group : "peers " + targets});
      }
      output.out << "\n";
      floods.Print(output.out);
      return true;
    };
  });
}

void AddVni(CLI::App& app, Command* command) {
  CLI::App* vni = app.add_subcommand("vni", "Settings of a VXLAN network");
  vni->require_subcommand(1);
  vni->footer("Example:\n  butterfly vni peers 42 198.18.0.2 198.18.0.3");
  auto id = std::make_shared<uint32_t>(0);
  auto peers = std::make_shared<std::vector<std::string>>();
  CLI::App* set = vni->add_subcommand(
      "peers",
      "Flood the VNI's broadcast and unknown traffic to these VTEPs (head-end "
      "replication); with no peer, back to the VNI's multicast group (the default; an IPv6 "
      "underlay has none: its VNIs flood to their peers only)");
  set->add_option("VNI", *id, "VXLAN network")->required()->check(CLI::Range(0u, (1u << 24) - 1));
  set->add_option("PEER", *peers, "remote VTEPs (the family of this host's VTEP, -i)");
  set->footer(
      "Example:\n  butterfly vni peers 42 198.18.0.2 198.18.0.3\n"
      "  butterfly vni peers 42        # multicast group 230.0.0.42 again");
  set->callback([id, peers, command] {
    for (const auto& peer : *peers) {
      if (auto ip = IpAddress::Parse(peer); !ip) UsageError("PEER: " + ip.error());
    }
    command->name = "vni peers";
    command->build = [id, peers](Client&, std::vector<MessageV0_Request>& out) {
      MessageV0_VniPeers* request = out.emplace_back().mutable_vni_peers_set();
      request->set_vni(*id);
      if (peers->empty()) request->add_peer("");
      for (const auto& peer : *peers) request->add_peer(peer);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("vni peers", answers, output);
    };
  });
}

}  // namespace

void AddDataplaneCommands(CLI::App& app, Command* command) {
  AddStats(app, command);
  AddFdb(app, command);
  AddVni(app, command);
}

}  // namespace butterfly::cli
