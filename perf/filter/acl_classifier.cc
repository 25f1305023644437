#include "acl_classifier.h"

#include <arpa/inet.h>
#include <rte_acl.h>
#include <rte_errno.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace butterfly::bench {
namespace {

enum FieldsV4 { kProtoV4, kRemoteV4, kSrcPortV4, kDstPortV4, kFieldsV4 };
enum FieldsV6 {
  kProtoV6,
  kRemote0,
  kRemote1,
  kRemote2,
  kRemote3,
  kSrcPortV6,
  kDstPortV6,
  kFieldsV6
};

RTE_ACL_RULE_DEF(AclRuleV4, kFieldsV4);
RTE_ACL_RULE_DEF(AclRuleV6, kFieldsV6);

rte_acl_field_def Field(uint8_t type, uint8_t size, uint8_t field, uint8_t input, size_t offset) {
  return rte_acl_field_def{type, size, field, input, static_cast<uint32_t>(offset)};
}

uint32_t Word(const IpBytes& ip, int index) {
  return uint32_t{ip[4 * index]} << 24 | uint32_t{ip[4 * index + 1]} << 16 |
         uint32_t{ip[4 * index + 2]} << 8 | ip[4 * index + 3];
}

template <typename Rule>
void SetCommon(Rule* rule, const PolicyRule& policy_rule, int proto_field, int sport_field,
               int dport_field, int priority) {
  rule->data.category_mask = 1;
  rule->data.priority = priority;
  rule->data.userdata = 1;
  bool any = policy_rule.protocol == kAnyProtocol;
  rule->field[proto_field].value.u8 = any ? 0 : static_cast<uint8_t>(policy_rule.protocol);
  rule->field[proto_field].mask_range.u8 = any ? 0 : 0xff;
  rule->field[sport_field].value.u16 = 0;
  rule->field[sport_field].mask_range.u16 = 65535;
  bool ports = policy_rule.protocol == kProtoTcp || policy_rule.protocol == kProtoUdp;
  rule->field[dport_field].value.u16 = ports ? policy_rule.port_first : 0;
  rule->field[dport_field].mask_range.u16 = ports ? policy_rule.port_last : 65535;
}

rte_acl_ctx* Create(const std::string& name, uint32_t rule_size, uint32_t count) {
  rte_acl_param param{};
  param.name = name.c_str();
  param.socket_id = SOCKET_ID_ANY;
  param.rule_size = rule_size;
  param.max_rule_num = count;
  rte_acl_ctx* ctx = rte_acl_create(&param);
  if (!ctx) throw std::runtime_error("rte_acl_create: " + std::string(rte_strerror(rte_errno)));
  return ctx;
}

void Build(rte_acl_ctx* ctx, const rte_acl_field_def* defs, uint32_t count) {
  rte_acl_config config{};
  config.num_categories = 1;
  config.num_fields = count;
  std::memcpy(config.defs, defs, sizeof(rte_acl_field_def) * count);
  if (int error = rte_acl_build(ctx, &config); error != 0) {
    throw std::runtime_error("rte_acl_build: " + std::string(rte_strerror(-error)));
  }
}

}  // namespace

AclClassifier::AclClassifier(const VnicPolicy& policy, const std::string& name) {
  auto started = std::chrono::steady_clock::now();
  std::vector<AclRuleV4> rules_v4;
  std::vector<AclRuleV6> rules_v6;
  int priority = 1;
  for (const PolicyRule& rule : policy.rules) {
    if (rule.direction != Direction::kInbound) continue;
    for (const Cidr& remote : rule.remotes) {
      if (remote.address.is_v4()) {
        AclRuleV4 acl{};
        SetCommon(&acl, rule, kProtoV4, kSrcPortV4, kDstPortV4, priority++);
        acl.field[kRemoteV4].value.u32 = Word(remote.address.bytes, 0);
        acl.field[kRemoteV4].mask_range.u32 = static_cast<uint32_t>(remote.prefix_length);
        rules_v4.push_back(acl);
      } else {
        AclRuleV6 acl{};
        SetCommon(&acl, rule, kProtoV6, kSrcPortV6, kDstPortV6, priority++);
        for (int word = 0; word < 4; ++word) {
          int bits = std::clamp(remote.prefix_length - 32 * word, 0, 32);
          acl.field[kRemote0 + word].value.u32 = Word(remote.address.bytes, word);
          acl.field[kRemote0 + word].mask_range.u32 = static_cast<uint32_t>(bits);
        }
        rules_v6.push_back(acl);
      }
    }
  }
  if (!rules_v4.empty()) {
    const rte_acl_field_def defs[kFieldsV4] = {
        Field(RTE_ACL_FIELD_TYPE_BITMASK, 1, kProtoV4, 0, offsetof(AclInputV4, proto)),
        Field(RTE_ACL_FIELD_TYPE_MASK, 4, kRemoteV4, 1, offsetof(AclInputV4, remote)),
        Field(RTE_ACL_FIELD_TYPE_RANGE, 2, kSrcPortV4, 2, offsetof(AclInputV4, src_port)),
        Field(RTE_ACL_FIELD_TYPE_RANGE, 2, kDstPortV4, 2, offsetof(AclInputV4, dst_port)),
    };
    v4_ = Create(name + "4", RTE_ACL_RULE_SZ(kFieldsV4), static_cast<uint32_t>(rules_v4.size()));
    if (rte_acl_add_rules(v4_, reinterpret_cast<const rte_acl_rule*>(rules_v4.data()),
                          static_cast<uint32_t>(rules_v4.size())) != 0) {
      throw std::runtime_error("rte_acl_add_rules (IPv4) failed");
    }
    Build(v4_, defs, kFieldsV4);
  }
  if (!rules_v6.empty()) {
    const rte_acl_field_def defs[kFieldsV6] = {
        Field(RTE_ACL_FIELD_TYPE_BITMASK, 1, kProtoV6, 0, offsetof(AclInputV6, proto)),
        Field(RTE_ACL_FIELD_TYPE_MASK, 4, kRemote0, 1, offsetof(AclInputV6, remote[0])),
        Field(RTE_ACL_FIELD_TYPE_MASK, 4, kRemote1, 2, offsetof(AclInputV6, remote[1])),
        Field(RTE_ACL_FIELD_TYPE_MASK, 4, kRemote2, 3, offsetof(AclInputV6, remote[2])),
        Field(RTE_ACL_FIELD_TYPE_MASK, 4, kRemote3, 4, offsetof(AclInputV6, remote[3])),
        Field(RTE_ACL_FIELD_TYPE_RANGE, 2, kSrcPortV6, 5, offsetof(AclInputV6, src_port)),
        Field(RTE_ACL_FIELD_TYPE_RANGE, 2, kDstPortV6, 5, offsetof(AclInputV6, dst_port)),
    };
    v6_ = Create(name + "6", RTE_ACL_RULE_SZ(kFieldsV6), static_cast<uint32_t>(rules_v6.size()));
    if (rte_acl_add_rules(v6_, reinterpret_cast<const rte_acl_rule*>(rules_v6.data()),
                          static_cast<uint32_t>(rules_v6.size())) != 0) {
      throw std::runtime_error("rte_acl_add_rules (IPv6) failed");
    }
    Build(v6_, defs, kFieldsV6);
  }
  build_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

AclClassifier::~AclClassifier() {
  rte_acl_free(v4_);
  rte_acl_free(v6_);
}

AclInputV4 AclClassifier::InputV4(const PacketKey& key) {
  AclInputV4 input{};
  input.proto = key.proto;
  std::memcpy(&input.remote, key.src.data(), 4);
  input.src_port = htons(key.src_port);
  input.dst_port = htons(key.dst_port);
  return input;
}

AclInputV6 AclClassifier::InputV6(const PacketKey& key) {
  AclInputV6 input{};
  input.proto = key.proto;
  std::memcpy(input.remote, key.src.data(), 16);
  input.src_port = htons(key.src_port);
  input.dst_port = htons(key.dst_port);
  return input;
}

void AclClassifier::ClassifyV4(const uint8_t** inputs, uint32_t* results, uint32_t n) const {
  if (!v4_) {
    std::memset(results, 0, n * sizeof(uint32_t));
    return;
  }
  rte_acl_classify(v4_, inputs, results, n, 1);
}

void AclClassifier::ClassifyV6(const uint8_t** inputs, uint32_t* results, uint32_t n) const {
  if (!v6_) {
    std::memset(results, 0, n * sizeof(uint32_t));
    return;
  }
  rte_acl_classify(v6_, inputs, results, n, 1);
}

}  // namespace butterfly::bench
