// Fuzz target (differential): rule sets and packets; the JIT, the interpreter and rte_acl
// (inbound rules, packets that are not fragments: what perf/filter's classifier models) must give
// every packet the same verdict.
//
// Compiling a rule set takes milliseconds (tens for hundreds of rules), checking a packet
// nanoseconds. So the input's first two bytes choose one of 256 rule sets drawn by the random
// policy generator of the differential unit test (tests/support/random_policy.h: every protocol,
// port ranges, prefixes of every length in both families, member sets; 0 to 300 rules, so that
// every code shape of the JIT is taken), each compiled once and kept; the rest of the input is
// packets, which the fuzzer builds near what the rules say (their prefixes, their port range
// ends, a bit flipped).
//
// Packet (28 bytes): remote choice (1), family (1), protocol (1), address (16), bit flip (1),
//   source port (2), destination port (2), TCP flags (1), fragment bits (1), ICMP type (1),
//   port choice (1)
#include <arpa/inet.h>
#include <rte_eal.h>

#include <filesystem>

#include "acl_classifier.h"
#include "fuzz_support.h"
#include "jit/interpreter.h"
#include "jit/jit_compiler.h"
#include "jit/rule_ir.h"
#include "support/random_policy.h"

namespace butterfly {
namespace {

using fuzz::ByteReader;

constexpr int kRuleSets = 256;
constexpr int kSizes[] = {0, 1, 2, 3, 5, 8, 12, 20, 40, 100, 300};

struct Compiled {
  std::shared_ptr<const FilterIr> ir;
  std::unique_ptr<CompiledFilter> jit;
  std::unique_ptr<bench::AclClassifier> acl;
  std::vector<IpBytes> remotes[2];  // per family, for packets near the rules
  std::vector<uint16_t> ports;      // port range ends
};

JitCompiler* g_compiler = nullptr;
std::unique_ptr<Compiled> g_cache[kRuleSets];

const Compiled& CompiledFor(int id) {
  if (g_cache[id]) return *g_cache[id];
  testing::RandomPolicyGenerator generator(0x5eed0000u + static_cast<uint64_t>(id));
  auto policy = generator.Policy(kSizes[id % std::size(kSizes)]);
  auto compiled = std::make_unique<Compiled>();
  for (const PolicyRule& rule : policy->rules) {
    for (const Cidr& remote : rule.remotes) {
      compiled->remotes[remote.address.is_v4() ? 0 : 1].push_back(remote.address.bytes);
    }
    compiled->ports.push_back(rule.port_first);
    compiled->ports.push_back(rule.port_last);
  }
  auto ir = BuildFilterIr(*policy);
  FUZZ_CHECK(ir.ok(), "a generated policy was refused: %s", ir.error().c_str());
  compiled->ir = *ir;
  auto jit = g_compiler->Compile(**ir);
  FUZZ_CHECK(jit.ok(), "compile failed: %s", jit.error().c_str());
  compiled->jit = std::move(*jit);
  compiled->acl = std::make_unique<bench::AclClassifier>(*policy, "fuzz" + std::to_string(id));
  g_cache[id] = std::move(compiled);
  return *g_cache[id];
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
  uint8_t port_choice = in.U8();
  if ((port_choice & 0x80) && !compiled.ports.empty()) {
    // A range end, or one past it.
    int port = compiled.ports[(port_choice & 0x3f) % compiled.ports.size()];
    port += port_choice & 0x40 ? (port_choice & 1 ? 1 : -1) : 0;
    key.dst_port = static_cast<uint16_t>(port & 0xffff);
  }
  return key;
}

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace butterfly;
  // rte_acl allocates through EAL: plain memory, no device, a runtime folder of this process's
  // own, removed at exit.
  std::string prefix = "--file-prefix=fuzz_filter_" + std::to_string(getpid());
  const char* args[] = {"fuzz_filter", "--no-huge",    "--no-pci",          "-m",
                        "256",         prefix.c_str(), "--log-level=error", "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
    std::fprintf(stderr, "rte_eal_init failed\n");
    std::abort();
  }
  static std::string runtime_dir = rte_eal_get_runtime_dir();
  std::atexit([] {
    for (auto& compiled : g_cache) compiled.reset();  // its rte_acl contexts first
    rte_eal_cleanup();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
  });
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
  if (size < 2) return -1;
  const Compiled& compiled = CompiledFor((data[0] << 8 | data[1]) % kRuleSets);
  ByteReader in(data + 2, size - 2);
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
