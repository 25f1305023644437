#include "api/proto_convert.h"

#include <set>

namespace butterfly {
namespace {

VnicType TypeFromProto(MessageV0_NicType type) {
  switch (type) {
    case MessageV0_NicType_TAP:
      return VnicType::kTap;
    case MessageV0_NicType_BENCH:
      return VnicType::kBench;
    case MessageV0_NicType_VHOST_USER_CLIENT:
      return VnicType::kVhostUserClient;
    default:
      return VnicType::kVhostUserServer;
  }
}

MessageV0_NicType TypeToProto(VnicType type) {
  switch (type) {
    case VnicType::kTap:
      return MessageV0_NicType_TAP;
    case VnicType::kBench:
      return MessageV0_NicType_BENCH;
    case VnicType::kVhostUserClient:
      return MessageV0_NicType_VHOST_USER_CLIENT;
    case VnicType::kVhostUserServer:
      break;
  }
  return MessageV0_NicType_VHOST_USER_SERVER;
}

// "" alone clears a list (proto2 cannot send an empty repeated field); "" among other values is
// a mistake.
template <typename Repeated>
Result<bool> IsClearList(const Repeated& values, const std::string& what) {
  if (values.size() == 1 && values.Get(0).empty()) return true;
  for (const std::string& value : values) {
    if (value.empty()) return Fail(what + " list contains an empty value");
  }
  return false;
}

Result<std::vector<IpAddress>> ParseIps(
    const google::protobuf::RepeatedPtrField<std::string>& ips) {
  std::vector<IpAddress> out;
  for (const std::string& text : ips) {
    auto ip = IpAddress::Parse(text);
    if (!ip) return Fail("ip " + ip.error());
    out.push_back(*ip);
  }
  return out;
}

}  // namespace

Result<Vnic> VnicFromProto(const MessageV0_Nic& nic) {
  Vnic vnic;
  vnic.id = nic.id();
  if (auto valid = ValidateId("nic", vnic.id); !valid) return Error{valid.error()};
  auto fail = [&vnic](const std::string& why) { return Fail("nic " + vnic.id + ": " + why); };
  auto mac = MacAddress::Parse(nic.mac());
  if (!mac) return fail("mac " + mac.error());
  vnic.mac = *mac;
  vnic.vni = nic.vni();
  if (vnic.vni > kMaxVni) {
    return fail("vni " + std::to_string(vnic.vni) + " is not below 2^24 (16777216)");
  }
  if (auto clear = IsClearList(nic.ip(), "ip"); !clear) {
    return fail(clear.error());
  } else if (!*clear) {
    auto ips = ParseIps(nic.ip());
    if (!ips) return fail(ips.error());
    vnic.ips = std::move(*ips);
  }
  if (auto clear = IsClearList(nic.security_group(), "security_group"); !clear) {
    return fail(clear.error());
  } else if (!*clear) {
    vnic.security_groups.assign(nic.security_group().begin(), nic.security_group().end());
  }
  vnic.ip_anti_spoof = nic.ip_anti_spoof();
  vnic.sniff_target_nic_id = nic.sniff_target_nic_id();
  vnic.bypass_filtering = nic.bypass_filtering();
  if (!MessageV0_NicType_IsValid(nic.type())) return fail("unknown nic type");
  vnic.type = TypeFromProto(nic.type());
  if (vnic.type == VnicType::kVhostUserClient) vnic.client_socket = nic.path();
  vnic.packet_trace = nic.packet_trace();
  vnic.packet_trace_path = nic.packet_trace_path();
  if (vnic.type == VnicType::kBench) {
    vnic.bench_type = nic.btype();
    vnic.bench_dst_ip = nic.dip();
    vnic.bench_dst_mac = nic.dmac();
  } else if (nic.has_btype() || nic.has_dip() || nic.has_dmac()) {
    return fail("btype, dip and dmac apply to BENCH nics only");
  }
  return vnic;
}

MessageV0_Nic VnicToProto(const Vnic& vnic, const std::string& path) {
  MessageV0_Nic nic;
  nic.set_id(vnic.id);
  nic.set_mac(vnic.mac.ToString());
  nic.set_vni(vnic.vni);
  for (const IpAddress& ip : vnic.ips) nic.add_ip(ip.ToString());
  for (const std::string& sg : vnic.security_groups) nic.add_security_group(sg);
  nic.set_ip_anti_spoof(vnic.ip_anti_spoof);
  if (!vnic.sniff_target_nic_id.empty()) nic.set_sniff_target_nic_id(vnic.sniff_target_nic_id);
  nic.set_bypass_filtering(vnic.bypass_filtering);
  nic.set_type(TypeToProto(vnic.type));
  if (!path.empty()) nic.set_path(path);
  nic.set_packet_trace(vnic.packet_trace);
  if (!vnic.packet_trace_path.empty()) nic.set_packet_trace_path(vnic.packet_trace_path);
  if (vnic.type == VnicType::kBench) {
    nic.set_btype(vnic.bench_type);
    if (!vnic.bench_dst_ip.empty()) nic.set_dip(vnic.bench_dst_ip);
    if (!vnic.bench_dst_mac.empty()) nic.set_dmac(vnic.bench_dst_mac);
  }
  return nic;
}

Result<VnicUpdate> VnicUpdateFromProto(const MessageV0_NicUpdateReq& request) {
  VnicUpdate update;
  update.id = request.id();
  if (auto valid = ValidateId("nic", update.id); !valid) return Error{valid.error()};
  auto fail = [&update](const std::string& why) { return Fail("nic " + update.id + ": " + why); };
  if (request.has_ip_anti_spoof()) update.ip_anti_spoof = request.ip_anti_spoof();
  if (request.ip_size() > 0) {
    auto clear = IsClearList(request.ip(), "ip");
    if (!clear) return fail(clear.error());
    if (*clear) {
      update.ips.emplace();
    } else {
      auto ips = ParseIps(request.ip());
      if (!ips) return fail(ips.error());
      update.ips = std::move(*ips);
    }
  }
  if (request.security_group_size() > 0) {
    auto clear = IsClearList(request.security_group(), "security_group");
    if (!clear) return fail(clear.error());
    update.security_groups.emplace();
    if (!*clear) {
      update.security_groups->assign(request.security_group().begin(),
                                     request.security_group().end());
    }
  }
  if (request.has_packet_trace()) update.packet_trace = request.packet_trace();
  if (request.has_packet_trace_path()) update.packet_trace_path = request.packet_trace_path();
  return update;
}

Result<Rule> RuleFromProto(const MessageV0_Rule& message) {
  Rule rule;
  rule.direction = message.direction() == MessageV0_Rule_Direction_OUTBOUND ? Direction::kOutbound
                                                                            : Direction::kInbound;
  rule.protocol = message.protocol();
  if (message.has_port_start()) rule.port_start = message.port_start();
  if (message.has_port_end()) rule.port_end = message.port_end();
  if (message.has_cidr()) {
    auto cidr = Cidr::Make(message.cidr().address(), message.cidr().mask_size());
    if (!cidr) return Fail("rule: " + cidr.error());
    rule.cidr = *cidr;
  }
  if (message.has_security_group()) {
    if (message.security_group().empty()) return Fail("rule: security_group is empty");
    rule.remote_sg = message.security_group();
  }
  if (auto valid = rule.Validate(); !valid) return Error{valid.error()};
  return rule;
}

MessageV0_Rule RuleToProto(const Rule& rule) {
  MessageV0_Rule message;
  message.set_direction(rule.direction == Direction::kOutbound ? MessageV0_Rule_Direction_OUTBOUND
                                                               : MessageV0_Rule_Direction_INBOUND);
  message.set_protocol(rule.protocol);
  if (rule.port_start) message.set_port_start(*rule.port_start);
  if (rule.port_end) message.set_port_end(*rule.port_end);
  if (rule.cidr) {
    message.mutable_cidr()->set_address(rule.cidr->address.ToString());
    message.mutable_cidr()->set_mask_size(rule.cidr->prefix_length);
  }
  if (!rule.remote_sg.empty()) message.set_security_group(rule.remote_sg);
  return message;
}

Result<SecurityGroup> SgFromProto(const MessageV0_Sg& message) {
  if (auto valid = ValidateId("security group", message.id()); !valid) return Error{valid.error()};
  SecurityGroup sg(message.id());
  for (const std::string& text : message.member()) {
    auto member = IpAddress::Parse(text);
    if (!member) return Fail("sg " + sg.id() + ": member " + member.error());
    sg.AddMember(*member);
  }
  for (const MessageV0_Rule& message_rule : message.rule()) {
    auto rule = RuleFromProto(message_rule);
    if (!rule) return Fail("sg " + sg.id() + ": " + rule.error());
    sg.AddRule(*rule);
  }
  return sg;
}

MessageV0_Sg SgToProto(const SecurityGroup& sg) {
  MessageV0_Sg message;
  message.set_id(sg.id());
  for (const IpAddress& member : sg.members()) message.add_member(member.ToString());
  for (const Rule& rule : sg.rules()) *message.add_rule() = RuleToProto(rule);
  return message;
}

void CountersToProto(const VnicCounters& counters, MessageV0_NicStats* stats) {
  stats->set_in(counters.bytes_in);
  stats->set_out(counters.bytes_out);
  stats->set_packets_in(counters.packets_in);
  stats->set_packets_out(counters.packets_out);
  for (const auto& [name, value] : counters.drops) {
    auto* drop = stats->add_drops();
    drop->set_name(name);
    drop->set_value(value);
  }
}

void DataplaneStatsToProto(const Controller& controller, MessageV0_DataplaneStats* stats) {
  stats->set_description(controller.DataplaneDescription());
  std::optional<DataplaneStats> counters = controller.Stats();
  if (!counters) return;
  stats->set_tsc_hz(counters->tsc_hz);
  for (const WorkerStats& worker : counters->workers) {
    MessageV0_WorkerStats* out = stats->add_workers();
    out->set_id(worker.id);
    out->set_lcore(worker.lcore);
    out->set_vnics(worker.vnics);
    out->set_loops(worker.loops);
    out->set_busy_loops(worker.busy_loops);
    out->set_sleeps(worker.sleeps);
    out->set_busy_cycles(worker.busy_cycles);
    out->set_idle_cycles(worker.idle_cycles);
    for (const StageStats& stage : worker.stages) {
      MessageV0_StageStats* out_stage = out->add_stages();
      out_stage->set_name(stage.name);
      out_stage->set_packets(stage.packets);
      out_stage->set_drops(stage.drops);
      out_stage->set_cycles(stage.cycles);
      out_stage->set_calls(stage.calls);
    }
    for (const auto& [name, value] : worker.drops) {
      MessageV0_Counter* drop = out->add_drops();
      drop->set_name(name);
      drop->set_value(value);
    }
  }
  for (const auto& [name, value] : counters->filter) {
    MessageV0_Counter* counter = stats->add_filter();
    counter->set_name(name);
    counter->set_value(value);
  }
}

void FdbToProto(const Controller& controller, const MessageV0_FdbListReq& request,
                MessageV0_Response* response) {
  const Model& model = controller.model();
  auto wanted = [&request](uint32_t vni) { return !request.has_vni() || request.vni() == vni; };
  std::set<uint32_t> vnis;
  for (const auto& [id, vnic] : model.vnics()) {
    if (!wanted(vnic.vni)) continue;
    vnis.insert(vnic.vni);
    MessageV0_FdbEntry* entry = response->add_fdb_list();
    entry->set_vni(vnic.vni);
    entry->set_mac(vnic.mac.ToString());
    entry->set_kind("local");
    entry->set_nic(id);
  }
  for (const auto& [key, vtep] : model.static_fdb()) {
    if (!wanted(key.first)) continue;
    MessageV0_FdbEntry* entry = response->add_fdb_list();
    entry->set_vni(key.first);
    entry->set_mac(key.second.ToString());
    entry->set_vtep(vtep.ToString());
    entry->set_kind("static");
  }
  for (const LearnedMac& learned : controller.LearnedMacs()) {
    if (!wanted(learned.vni)) continue;
    MessageV0_FdbEntry* entry = response->add_fdb_list();
    entry->set_vni(learned.vni);
    entry->set_mac(learned.mac.ToString());
    entry->set_vtep(learned.vtep.ToString());
    entry->set_kind("learned");
    entry->set_idle_seconds(learned.idle_seconds);
  }
  for (const auto& [vni, peers] : model.vni_peers()) {
    if (wanted(vni)) vnis.insert(vni);
  }
  for (uint32_t vni : vnis) {
    MessageV0_VniPeers* out = response->add_vni_list();
    out->set_vni(vni);
    auto peers = model.vni_peers().find(vni);
    if (peers != model.vni_peers().end()) {
      for (const IpAddress& peer : peers->second) out->add_peer(peer.ToString());
    } else if (controller.VtepFamily() != IpFamily::kV6) {
      // An IPv6 underlay has no group: without peers, nothing floods to remote VTEPs.
      out->set_multicast_group(IpAddress::V4(0xe6000000u | vni).ToString());
    }
  }
}

}  // namespace butterfly
