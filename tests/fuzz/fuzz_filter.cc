// Fuzz target (differential): a random rule set and random packets; the JIT, the interpreter and
// rte_acl (inbound rules, packets that are not fragments: what perf/filter's classifier models)
// must give every packet the same verdict.
//
// Compiling a rule set takes milliseconds, checking a packet nanoseconds: the input is a rule set
// followed by many packets, and the compiled rule set (JIT code, rte_acl contexts) is cached by
// its bytes, so mutations of the packets (most of the input) reuse it.
//
// Input: rule count (1 byte), policy flags (1 byte), the rules, then 28-byte packets.
//   rule:   direction + protocol choice (1), protocol (1), port a (2), port b (2), remotes (1:
//           count in the low 2 bits), each remote: family + prefix length (1), address (4 or 16)
//   packet: remote choice (1), family (1), protocol (1), address (16), bit flip (1),
//           source port (2), destination port (2), TCP flags (1), fragment bits (1), ICMP type (1),
//           ICMP code (1)
#include <arpa/inet.h>
#include <rte_eal.h>

#include <list>
#include <unordered_map>

#include "acl_classifier.h"
#include "fuzz_support.h"
#include "jit/interpreter.h"
#include "jit/jit_compiler.h"
#include "jit/rule_ir.h"

namespace butterfly {
namespace {

using fuzz::ByteReader;

constexpr int kMaxRules = 40;
constexpr size_t kCacheEntries = 64;

struct Compiled {
  std::shared_ptr<const FilterIr> ir;
  std::unique_ptr<CompiledFilter> jit;
  std::unique_ptr<bench::AclClassifier> acl;
  std::vector<IpBytes> remotes[2];  // per family, for packets near the rules
};

JitCompiler* g_compiler = nullptr;
std::unordered_map<std::string, std::unique_ptr<Compiled>> g_cache;
std::list<std::string> g_order;  // least recently compiled first
uint64_t g_acl_names = 0;

IpBytes Masked(IpBytes address, int width, int length) {
  for (int bit = length; bit < width; ++bit) {
    address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return address;
}

VnicPolicy ReadPolicy(ByteReader& in, std::vector<IpBytes>* remotes) {
  VnicPolicy policy;
  policy.vnic_id = "fuzz";
  policy.generation = 1;
  int count = in.U8() % (kMaxRules + 1);
  uint8_t flags = in.U8();
  policy.restrict_outbound = flags & 1;
  for (int i = 0; i < count; ++i) {
    PolicyRule rule;
    uint8_t shape = in.U8();
    uint8_t raw_protocol = in.U8();
    rule.direction = shape & 1 ? Direction::kOutbound : Direction::kInbound;
    static const int kProtocols[] = {kAnyProtocol, kProtoTcp, kProtoUdp, kProtoIcmp,
                                     kProtoIcmpv6, kProtoTcp, kProtoUdp, -2};
    rule.protocol = kProtocols[(shape >> 1) & 7];
    if (rule.protocol == -2) rule.protocol = raw_protocol;
    uint16_t a = in.U16(), b = in.U16();
    if (rule.protocol == kProtoTcp || rule.protocol == kProtoUdp) {
      if (shape & 0x10) b = a;
      rule.port_first = std::min(a, b);
      rule.port_last = std::max(a, b);
    }
    int remote_count = in.U8() & 3;
    for (int r = 0; r < remote_count; ++r) {
      uint8_t family_and_length = in.U8();
      bool v6 = family_and_length & 0x80;
      int width = v6 ? 128 : 32;
      int length = (family_and_length & 0x7f) % (width + 1);
      IpBytes address{};
      in.Bytes(address.data(), v6 ? 16 : 4);
      Cidr cidr;
      cidr.address.family = v6 ? IpFamily::kV6 : IpFamily::kV4;
      cidr.address.bytes = Masked(address, width, length);
      cidr.prefix_length = length;
      rule.remotes.push_back(cidr);
      remotes[v6 ? 1 : 0].push_back(cidr.address.bytes);
    }
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

const Compiled& CompiledFor(std::string_view rule_bytes) {
  std::string key(rule_bytes);
  if (auto found = g_cache.find(key); found != g_cache.end()) return *found->second;
  if (g_cache.size() >= kCacheEntries) {
    g_cache.erase(g_order.front());
    g_order.pop_front();
  }
  auto compiled = std::make_unique<Compiled>();
  ByteReader in(reinterpret_cast<const uint8_t*>(key.data()), key.size());
  VnicPolicy policy = ReadPolicy(in, compiled->remotes);
  auto ir = BuildFilterIr(policy);
  FUZZ_CHECK(ir.ok(), "a valid policy was refused: %s", ir.error().c_str());
  compiled->ir = *ir;
  auto jit = g_compiler->Compile(**ir);
  FUZZ_CHECK(jit.ok(), "compile failed: %s", jit.error().c_str());
  compiled->jit = std::move(*jit);
  compiled->acl =
      std::make_unique<bench::AclClassifier>(policy, "fuzz" + std::to_string(g_acl_names++));
  g_order.push_back(key);
  return *g_cache.emplace(key, std::move(compiled)).first->second;
}

// The rule bytes: as many as ReadPolicy consumes.
size_t RuleBytes(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  std::vector<IpBytes> unused[2];
  (void)ReadPolicy(in, unused);
  return size - in.remaining();
}

PacketKey ReadPacket(ByteReader& in, const Compiled& compiled, Direction direction) {
  PacketKey key;
  uint8_t choice = in.U8();
  key.family = in.U8() & 1 ? 6 : 4;
  key.proto = in.U8();
  IpBytes remote{};
  in.Bytes(remote.data(), 16);
  uint8_t flip = in.U8();
  const auto& near = compiled.remotes[key.family == 6 ? 1 : 0];
  if ((choice & 0x80) && !near.empty()) remote = near[choice % near.size()];
  int width = key.family == 6 ? 128 : 32;
  if (flip & 0x80) {
    int bit = (flip & 0x7f) % width;
    remote[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
  }
  if (key.family == 4) std::fill(remote.begin() + 4, remote.end(), 0);
  IpBytes local{};
  if (key.family == 4) {
    local = {10, 0, 0, 5};
  } else {
    local = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
  }
  key.src = direction == Direction::kInbound ? remote : local;
  key.dst = direction == Direction::kInbound ? local : remote;
  key.src_port = in.U16();
  key.dst_port = in.U16();
  key.tcp_flags = in.U8();
  key.fragment = in.U8() & 3;
  key.icmp_type = in.U8();
  key.icmp_code = in.U8();
  return key;
}

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace butterfly;
  std::string prefix = "--file-prefix=fuzz_filter_" + std::to_string(getpid());
  const char* args[] = {"fuzz_filter", "--no-huge",    "--no-pci",          "--in-memory",   "-m",
                        "256",         prefix.c_str(), "--log-level=error", "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
    std::fprintf(stderr, "rte_eal_init failed\n");
    std::abort();
  }
  auto compiler = JitCompiler::Create({.optimize = true});
  if (!compiler) {
    std::fprintf(stderr, "%s\n", compiler.error().c_str());
    std::abort();
  }
  g_compiler = compiler->release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  size_t rule_bytes = RuleBytes(data, size);
  const Compiled& compiled =
      CompiledFor(std::string_view(reinterpret_cast<const char*>(data), rule_bytes));
  ByteReader in(data + rule_bytes, size - rule_bytes);
  for (int packet = 0; !in.empty(); ++packet) {
    ByteReader record(data + size - in.remaining(), std::min<size_t>(in.remaining(), 28));
    (void)in.Take(28);
    for (Direction direction : {Direction::kInbound, Direction::kOutbound}) {
      ByteReader fields = record;
      PacketKey key = ReadPacket(fields, compiled, direction);
      bool interpreted = InterpretRules(*compiled.ir, direction, key);
      bool jitted = compiled.jit->match(direction)(&key) != 0;
      FUZZ_CHECK(interpreted == jitted, "packet %d, direction %d: interpreter %d, JIT %d", packet,
                 static_cast<int>(direction), interpreted, jitted);
      if (direction != Direction::kInbound || key.is_fragment()) continue;
      uint32_t acl = 0;
      if (key.family == 4) {
        bench::AclInputV4 input = bench::AclClassifier::InputV4(key);
        const uint8_t* inputs[] = {reinterpret_cast<const uint8_t*>(&input)};
        compiled.acl->ClassifyV4(inputs, &acl, 1);
      } else {
        bench::AclInputV6 input = bench::AclClassifier::InputV6(key);
        const uint8_t* inputs[] = {reinterpret_cast<const uint8_t*>(&input)};
        compiled.acl->ClassifyV6(inputs, &acl, 1);
      }
      FUZZ_CHECK(interpreted == (acl != 0), "packet %d inbound: interpreter %d, rte_acl %d", packet,
                 interpreted, acl != 0);
    }
  }
  return 0;
}
