// butterfly sg add|del|list, sg rule add|del|list, sg member add|del|list
#include <memory>

#include "command.h"
#include "core/net_types.h"
#include "rule_hash.h"

namespace butterfly::cli {
namespace {

std::string ProtocolName(int protocol) {
  switch (protocol) {
    case -1:
      return "all";
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "icmpv6";
    default:
      return std::to_string(protocol);
  }
}

int ParseProtocol(const std::string& text) {
  if (text == "all") return -1;
  if (text == "tcp") return 6;
  if (text == "udp") return 17;
  if (text == "icmp") return 1;
  if (text == "icmpv6") return 58;
  auto number = ParseInteger(text, 0, 255);
  if (!number) UsageError("--ip-proto: '" + text + "' is not tcp, udp, icmp, icmpv6, all or 0-255");
  return static_cast<int>(*number);
}

struct RuleArgs {
  std::string dir = "in", ip_proto, cidr, sg_members;
  std::optional<uint32_t> port, port_start, port_end;

  void AddOptions(CLI::App* app) {
    app->add_option("--dir", dir, "in (default: traffic to the vnic) or out (from the vnic)");
    app->add_option("--ip-proto", ip_proto, "tcp, udp, icmp, icmpv6, all, or a number 0-255");
    app->add_option("--port", port, "one destination port (tcp/udp)")->check(CLI::Range(0, 65535));
    app->add_option("--port-start", port_start, "first destination port of a range")
        ->check(CLI::Range(0, 65535));
    app->add_option("--port-end", port_end, "last destination port of a range")
        ->check(CLI::Range(0, 65535));
    app->add_option("--cidr", cidr, "remote addresses, ADDRESS/MASK (0.0.0.0/0 is IPv4 only)");
    app->add_option("--sg-members", sg_members, "remote addresses: the members of this group");
  }

  bool Given() const {
    return !ip_proto.empty() || port || port_start || port_end || !cidr.empty() ||
           !sg_members.empty();
  }

  MessageV0_Rule Build() const {
    MessageV0_Rule rule;
    if (dir == "in" || dir == "INBOUND") {
      rule.set_direction(MessageV0_Rule_Direction_INBOUND);
    } else if (dir == "out" || dir == "OUTBOUND") {
      rule.set_direction(MessageV0_Rule_Direction_OUTBOUND);
    } else {
      UsageError("--dir: '" + dir + "' is not in or out");
    }
    if (ip_proto.empty()) UsageError("--ip-proto is required");
    int protocol = ParseProtocol(ip_proto);
    rule.set_protocol(protocol);
    if (port && (port_start || port_end)) UsageError("give --port or --port-start/--port-end");
    uint32_t first = port ? *port : port_start.value_or(0);
    uint32_t last = port ? *port : port_end.value_or(65535);
    bool ports_given = port || port_start || port_end;
    if (protocol == 6 || protocol == 17) {
      if (!port && !(port_start && port_end)) {
        UsageError("tcp and udp rules need --port P or --port-start A --port-end B");
      }
      if (first > last) UsageError("--port-start is greater than --port-end");
      rule.set_port_start(first);
      rule.set_port_end(last);
    } else if (ports_given) {
      UsageError("ports only apply to tcp and udp");
    }
    if (cidr.empty() == sg_members.empty())
      UsageError("give exactly one of --cidr and --sg-members");
    if (!cidr.empty()) {
      auto parsed = Cidr::Parse(cidr);
      if (!parsed) UsageError("--cidr: " + parsed.error());
      auto slash = cidr.find('/');
      rule.mutable_cidr()->set_address(cidr.substr(0, slash));
      rule.mutable_cidr()->set_mask_size(parsed->prefix_length);
    } else {
      rule.set_security_group(sg_members);
    }
    return rule;
  }
};

JsonValue RuleJson(const MessageV0_Rule& rule) {
  JsonValue::Object object{
      {"hash", RuleHash(rule)},
      {"direction", rule.direction() == MessageV0_Rule_Direction_OUTBOUND ? "out" : "in"},
      {"protocol", rule.protocol()},
      {"protocol_name", ProtocolName(rule.protocol())},
  };
  if (rule.has_port_start()) object.emplace_back("port_start", rule.port_start());
  if (rule.has_port_end()) object.emplace_back("port_end", rule.port_end());
  if (rule.has_cidr()) {
    object.emplace_back("cidr",
                        rule.cidr().address() + "/" + std::to_string(rule.cidr().mask_size()));
  }
  if (rule.has_security_group()) object.emplace_back("sg_members", rule.security_group());
  return object;
}

Command StatusOnly(const std::string& name, std::vector<MessageV0_Request> requests) {
  Command command;
  command.name = name;
  command.build = [requests](Client&, std::vector<MessageV0_Request>& out) {
    out.insert(out.end(), requests.begin(), requests.end());
    return Ok();
  };
  command.render = [name](const auto& answers, const Output& output) {
    return RenderStatusOnly(name, answers, output);
  };
  return command;
}

Command StringList(
    const std::string& name, MessageV0_Request request,
    const google::protobuf::RepeatedPtrField<std::string>& (MessageV0_Response::*field)() const) {
  Command command;
  command.name = name;
  command.build = [request](Client&, std::vector<MessageV0_Request>& out) {
    out.push_back(request);
    return Ok();
  };
  command.render = [name, field](const auto& answers, const Output& output) {
    const MessageV0_Response* response = ResponseOrReport(*answers[0], name, output);
    if (!response) return false;
    const auto& items = (response->*field)();
    if (output.json) {
      output.PrintJson(JsonValue::StringArray({items.begin(), items.end()}));
    } else {
      for (const auto& item : items) output.out << item << "\n";
    }
    return true;
  };
  return command;
}

void AddGroupCommands(CLI::App& sg, Command* command) {
  auto add_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* add = sg.add_subcommand("add",
                                    "Create empty security groups (an existing group is "
                                    "replaced by an empty one, as in the original)");
  add->add_option("SG", *add_ids, "security group ids")->required();
  add->footer("Example:\n  butterfly sg add sg-web sg-admin");
  add->callback([add_ids, command] {
    std::vector<MessageV0_Request> requests;
    for (const auto& id : *add_ids) requests.emplace_back().mutable_sg_add()->set_id(id);
    *command = StatusOnly("sg add", requests);
  });

  auto del_ids = std::make_shared<std::vector<std::string>>();
  CLI::App* del = sg.add_subcommand("del",
                                    "Delete security groups (vnics keep referring to "
                                    "them: they count as empty until re-created)");
  del->add_option("SG", *del_ids, "security group ids")->required();
  del->footer("Example:\n  butterfly sg del sg-web");
  del->callback([del_ids, command] {
    std::vector<MessageV0_Request> requests;
    for (const auto& id : *del_ids) requests.emplace_back().set_sg_del(id);
    *command = StatusOnly("sg del", requests);
  });

  CLI::App* list = sg.add_subcommand("list", "List security group ids");
  list->footer("Example:\n  butterfly sg list");
  list->callback([command] {
    MessageV0_Request request;
    request.set_sg_list(true);
    *command = StringList("sg list", request, &MessageV0_Response::sg_list);
  });
}

void AddRuleCommands(CLI::App& sg, Command* command) {
  CLI::App* rule = sg.add_subcommand("rule", "List, add or delete the rules of a security group");
  rule->require_subcommand(1);
  rule->footer("Example:\n  butterfly sg rule list sg-web");

  auto list_sg = std::make_shared<std::string>();
  CLI::App* list = rule->add_subcommand("list", "List a group's rules with their hashes");
  list->add_option("SG", *list_sg, "security group id")->required();
  list->footer("Example:\n  butterfly sg rule list sg-web");
  list->callback([list_sg, command] {
    command->name = "sg rule list";
    command->build = [list_sg](Client&, std::vector<MessageV0_Request>& out) {
      out.emplace_back().set_sg_rule_list(*list_sg);
      return Ok();
    };
    command->render = [](const auto& answers, const Output& output) {
      const MessageV0_Response* response = ResponseOrReport(*answers[0], "sg rule list", output);
      if (!response) return false;
      if (output.json) {
        JsonValue::Array rules;
        for (const auto& r : response->sg_rule_list()) rules.push_back(RuleJson(r));
        output.PrintJson(rules);
        return true;
      }
      Table table({"HASH", "DIR", "PROTOCOL", "PORTS", "REMOTE"});
      for (const auto& r : response->sg_rule_list()) {
        std::string ports =
            r.has_port_start() || r.has_port_end()
                ? std::to_string(r.port_start()) + "-" + std::to_string(r.port_end())
                : "-";
        std::string remote = r.has_cidr()
                                 ? r.cidr().address() + "/" + std::to_string(r.cidr().mask_size())
                                 : "members of " + r.security_group();
        table.AddRow({RuleHash(r),
                      r.direction() == MessageV0_Rule_Direction_OUTBOUND ? "out" : "in",
                      ProtocolName(r.protocol()), ports, remote});
      }
      table.Print(output.out);
      return true;
    };
  });

  auto add_sg = std::make_shared<std::string>();
  auto add_args = std::make_shared<RuleArgs>();
  CLI::App* add = rule->add_subcommand("add",
                                       "Add a rule (the group is created if missing; a "
                                       "duplicate is not an error)");
  add->add_option("SG", *add_sg, "security group id")->required();
  add_args->AddOptions(add);
  add->footer(
      "Examples:\n"
      "  butterfly sg rule add sg-web --ip-proto tcp --port 80 --cidr 0.0.0.0/0\n"
      "  butterfly sg rule add sg-web --ip-proto tcp --port-start 8000 --port-end 8080 "
      "--sg-members sg-admin\n"
      "  butterfly sg rule add sg-web --dir out --ip-proto udp --port 53 --cidr 198.18.0.53/32\n"
      "Inbound is denied unless a rule allows it; outbound is open until a group of the vnic has "
      "an outbound rule. Replies of allowed flows always pass.");
  add->callback([add_sg, add_args, command] {
    MessageV0_Request request;
    request.mutable_sg_rule_add()->set_sg_id(*add_sg);
    *request.mutable_sg_rule_add()->mutable_rule() = add_args->Build();
    *command = StatusOnly("sg rule add", {request});
  });

  auto del_sg = std::make_shared<std::string>();
  auto del_hash = std::make_shared<std::string>();
  auto del_args = std::make_shared<RuleArgs>();
  CLI::App* del = rule->add_subcommand("del",
                                       "Delete a rule, by hash (see sg rule list) or by "
                                       "the options it was added with");
  del->add_option("SG", *del_sg, "security group id")->required();
  del->add_option("RULE_HASH", *del_hash, "16 hex digits from sg rule list");
  del_args->AddOptions(del);
  del->footer(
      "Examples:\n"
      "  butterfly sg rule del sg-web 6b2f0c1e9a4d7788\n"
      "  butterfly sg rule del sg-web --ip-proto tcp --port 80 --cidr 0.0.0.0/0");
  del->callback([del_sg, del_hash, del_args, command] {
    if (del_hash->empty() == !del_args->Given()) {
      UsageError("give either a RULE_HASH or the rule's options");
    }
    command->name = "sg rule del";
    if (del_hash->empty()) {
      MessageV0_Request request;
      request.mutable_sg_rule_del()->set_sg_id(*del_sg);
      *request.mutable_sg_rule_del()->mutable_rule() = del_args->Build();
      *command = StatusOnly("sg rule del", {request});
      return;
    }
    command->build = [del_sg, del_hash](Client& client,
                                        std::vector<MessageV0_Request>& out) -> Status {
      MessageV0_Request list;
      list.set_sg_rule_list(*del_sg);
      auto answer = client.RoundTrip(SingleRequest(list));
      if (!answer) return Error{answer.error()};
      const auto& response = answer->messages(0).message_0().response();
      if (!response.status().status()) return Fail(response.status().error().description());
      for (const auto& rule : response.sg_rule_list()) {
        if (RuleHash(rule) == *del_hash) {
          MessageV0_Request& request = out.emplace_back();
          request.mutable_sg_rule_del()->set_sg_id(*del_sg);
          *request.mutable_sg_rule_del()->mutable_rule() = rule;
          return Ok();
        }
      }
      return Fail("sg " + *del_sg + ": no rule has hash " + *del_hash);
    };
    command->render = [](const auto& answers, const Output& output) {
      return RenderStatusOnly("sg rule del", answers, output);
    };
  });
}

void AddMemberCommands(CLI::App& sg, Command* command) {
  CLI::App* member = sg.add_subcommand("member",
                                       "List, add or delete the members (IPs) of a "
                                       "security group");
  member->require_subcommand(1);
  member->footer("Example:\n  butterfly sg member add sg-admin 198.18.0.10");
  for (std::string verb : {"add", "del"}) {
    auto sg_id = std::make_shared<std::string>();
    auto ips = std::make_shared<std::vector<std::string>>();
    CLI::App* sub = member->add_subcommand(
        verb, verb == "add" ? "Add member IPs (the group is created if missing)"
                            : "Remove member IPs (a missing one is not an error)");
    sub->add_option("SG", *sg_id, "security group id")->required();
    sub->add_option("IP", *ips, "member IPs (v4 or v6)")->required();
    sub->footer("Example:\n  butterfly sg member " + verb + " sg-admin 198.18.0.10 2001:db8::10");
    sub->callback([sg_id, ips, verb, command] {
      std::vector<MessageV0_Request> requests;
      for (const auto& ip : *ips) {
        if (auto parsed = IpAddress::Parse(ip); !parsed) UsageError("IP: " + parsed.error());
        MessageV0_Request& request = requests.emplace_back();
        auto* message = verb == "add" ? request.mutable_sg_member_add() : nullptr;
        if (message) {
          message->set_sg_id(*sg_id);
          message->set_member(ip);
        } else {
          request.mutable_sg_member_del()->set_sg_id(*sg_id);
          request.mutable_sg_member_del()->set_member(ip);
        }
      }
      *command = StatusOnly("sg member " + verb, requests);
    });
  }
  auto list_sg = std::make_shared<std::string>();
  CLI::App* list = member->add_subcommand("list", "List a group's member IPs");
  list->add_option("SG", *list_sg, "security group id")->required();
  list->footer("Example:\n  butterfly sg member list sg-admin");
  list->callback([list_sg, command] {
    MessageV0_Request request;
    request.set_sg_member_list(*list_sg);
    *command = StringList("sg member list", request, &MessageV0_Response::sg_member_list);
  });
}

}  // namespace

void AddSgCommands(CLI::App& app, Command* command) {
  CLI::App* sg = app.add_subcommand("sg", "Manage security groups, their rules and members");
  sg->require_subcommand(1);
  sg->footer(
      "Example:\n  butterfly sg add sg-web + sg rule add sg-web --ip-proto tcp --port 80 "
      "--cidr 0.0.0.0/0\nRun 'butterfly sg COMMAND --help' for a command's options.");
  AddGroupCommands(*sg, command);
  AddRuleCommands(*sg, command);
  AddMemberCommands(*sg, command);
}

}  // namespace butterfly::cli
