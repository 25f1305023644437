// Filter benchmark: ns/packet and Mpps on one core for the interpreter, the JIT and rte_acl built
// from the same rules; JIT compile latency; memory of a compiled filter; conntrack lookup and
// insert at 10% and 90% fill; filter + conntrack hit through FilterStage::DecideBurst. Prints
// figures and ratios, asserts nothing. `filter_bench --quick` runs smaller sizes for a smoke run.
#include <rte_eal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "acl_classifier.h"
#include "bench_policy.h"
#include "jit/filter_engine.h"
#include "jit/interpreter.h"
#include "jit/jit_compiler.h"
#include "pipeline/conntrack.h"
#include "pipeline/eal.h"
#include "pipeline/filter_stage.h"

namespace butterfly::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps the optimizer from dropping the work measured.
volatile uint64_t g_sink;

// Runs `pass` (one pass over `packets` packets) until `budget` is spent; returns ns per packet.
template <typename Pass>
double NsPerPacket(size_t packets, double budget_ms, Pass pass) {
  pass();  // warm caches and branch predictors
  size_t passes = 0;
  auto started = Clock::now();
  double elapsed_ms = 0;
  do {
    pass();
    ++passes;
    elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  } while (elapsed_ms < budget_ms);
  return elapsed_ms * 1e6 / static_cast<double>(passes * packets);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct ClassifierRow {
  int rules;
  double interpreter_ns, jit_ns, acl_ns;
  double compile_median_ms, compile_max_ms, acl_build_ms;
  double tables_kib, code_kib;
  size_t mismatches;
  double allowed_share;
};

ClassifierRow MeasureClassifiers(JitCompiler& compiler, int rule_count, bool quick) {
  BenchSet set = MakeBenchSet(rule_count, 4096, 0xb0771e5 + rule_count);
  ClassifierRow row{};
  row.rules = rule_count;
  auto ir = BuildFilterIr(set.policy);
  if (!ir) throw std::runtime_error(ir.error());

  // Compile latency.
  int repeats = rule_count >= 10000 ? 3 : quick ? 3 : 7;
  std::vector<double> compile_ms;
  std::unique_ptr<CompiledFilter> compiled;
  for (int i = 0; i < repeats; ++i) {
    auto result = compiler.Compile(**ir);
    if (!result) throw std::runtime_error(result.error());
    compile_ms.push_back((*result)->compile_ms());
    compiled = std::move(*result);
  }
  row.compile_median_ms = Median(compile_ms);
  row.compile_max_ms = *std::max_element(compile_ms.begin(), compile_ms.end());
  row.code_kib = static_cast<double>(compiled->object_bytes()) / 1024;
  row.tables_kib = static_cast<double>(compiled->tables().MemoryBytes()) / 1024;

  // Every classifier sees the packets in the same order: IPv4 first, then IPv6, as a dataplane
  // that splits bursts by ethertype (rte_acl needs that) would hand them over.
  std::vector<PacketKey> packets;
  for (int family : {4, 6}) {
    for (const PacketKey& key : set.packets) {
      if (key.family == family) packets.push_back(key);
    }
  }
  JitMatchFn jit = compiled->match(Direction::kInbound);
  double budget = quick ? 50 : 300;
  row.jit_ns = NsPerPacket(packets.size(), budget, [&] {
    uint64_t allowed = 0;
    for (const PacketKey& key : packets) allowed += jit(&key);
    g_sink = allowed;
  });
  row.interpreter_ns = NsPerPacket(packets.size(), budget, [&] {
    uint64_t allowed = 0;
    for (const PacketKey& key : packets) allowed += InterpretRules(**ir, Direction::kInbound, key);
    g_sink = allowed;
  });

  // rte_acl classifies per family: the dataplane splits a burst by ethertype first.
  AclClassifier acl(set.policy, "bench" + std::to_string(rule_count));
  row.acl_build_ms = acl.build_ms();
  std::vector<AclInputV4> v4;
  std::vector<AclInputV6> v6;
  std::vector<size_t> v4_index, v6_index;
  for (size_t i = 0; i < packets.size(); ++i) {
    if (packets[i].family == 4) {
      v4.push_back(AclClassifier::InputV4(packets[i]));
      v4_index.push_back(i);
    } else {
      v6.push_back(AclClassifier::InputV6(packets[i]));
      v6_index.push_back(i);
    }
  }
  std::vector<const uint8_t*> v4_ptr, v6_ptr;
  for (auto& input : v4) v4_ptr.push_back(reinterpret_cast<const uint8_t*>(&input));
  for (auto& input : v6) v6_ptr.push_back(reinterpret_cast<const uint8_t*>(&input));
  std::vector<uint32_t> v4_result(v4.size()), v6_result(v6.size());
  constexpr uint32_t kBurst = 32;
  auto classify_all = [&] {
    for (size_t i = 0; i < v4_ptr.size(); i += kBurst) {
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(kBurst, v4_ptr.size() - i));
      acl.ClassifyV4(&v4_ptr[i], &v4_result[i], n);
    }
    for (size_t i = 0; i < v6_ptr.size(); i += kBurst) {
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(kBurst, v6_ptr.size() - i));
      acl.ClassifyV6(&v6_ptr[i], &v6_result[i], n);
    }
  };
  row.acl_ns = NsPerPacket(packets.size(), budget, classify_all);

  // The three must agree, or the race is not a fair one.
  size_t allowed = 0;
  for (size_t i = 0; i < v4.size(); ++i) {
    bool j = jit(&packets[v4_index[i]]) != 0;
    allowed += j;
    row.mismatches += j != (v4_result[i] != 0) ||
                      j != InterpretRules(**ir, Direction::kInbound, packets[v4_index[i]]);
  }
  for (size_t i = 0; i < v6.size(); ++i) {
    bool j = jit(&packets[v6_index[i]]) != 0;
    allowed += j;
    row.mismatches += j != (v6_result[i] != 0) ||
                      j != InterpretRules(**ir, Direction::kInbound, packets[v6_index[i]]);
  }
  row.allowed_share = static_cast<double>(allowed) / static_cast<double>(packets.size());
  return row;
}

struct ConntrackRow {
  int fill_percent;
  double lookup_ns, burst_lookup_ns, insert_ns;
};

ConntrackRow MeasureConntrack(int fill_percent, uint32_t max_entries) {
  ConntrackConfig config;
  config.max_entries = max_entries;
  Conntrack table(config);
  std::mt19937_64 rng(fill_percent);
  auto random_key = [&rng] {
    PacketKey key;
    key.family = 4;
    key.proto = kProtoUdp;
    key.src = RandomAddress(rng, true);
    key.dst = RandomAddress(rng, true);
    key.src_port = static_cast<uint16_t>(rng());
    key.dst_port = static_cast<uint16_t>(rng());
    return key;
  };
  size_t fill = size_t{max_entries} * fill_percent / 100;
  std::vector<FlowKey> present;
  while (table.size() < fill) {
    PacketKey key = random_key();
    bool from_lo;
    FlowKey flow = MakeFlowKey(key, 1, &from_lo);
    if (table.Find(flow, 1)) continue;
    table.Insert(flow, key, from_lo, Direction::kOutbound, 1, 1, 1);
    present.push_back(flow);
  }
  std::shuffle(present.begin(), present.end(), rng);
  constexpr size_t kProbes = 1 << 18;
  ConntrackRow row{fill_percent, 0, 0, 0};
  row.lookup_ns = NsPerPacket(kProbes, 200, [&] {
    uint64_t found = 0;
    for (size_t i = 0; i < kProbes; ++i)
      found += table.Find(present[i % present.size()], 2) != nullptr;
    g_sink = found;
  });
  // As a worker looks up a burst: hash and prefetch all 32 slots, then look up.
  row.burst_lookup_ns = NsPerPacket(kProbes, 200, [&] {
    uint64_t found = 0;
    uint64_t hashes[32];
    for (size_t i = 0; i < kProbes; i += 32) {
      for (size_t j = 0; j < 32; ++j) {
        hashes[j] = table.Hash(present[(i + j) % present.size()]);
        table.Prefetch(hashes[j]);
      }
      for (size_t j = 0; j < 32; ++j) {
        found += table.Find(present[(i + j) % present.size()], hashes[j], 2) != nullptr;
      }
    }
    g_sink = found;
  });
  // Insert a batch of new flows (after the miss a worker sees first), then remove them untimed.
  std::vector<std::pair<FlowKey, PacketKey>> fresh;
  size_t batch = std::max<size_t>(max_entries / 100, 1000);
  while (fresh.size() < batch) {
    PacketKey key = random_key();
    bool from_lo;
    FlowKey flow = MakeFlowKey(key, 1, &from_lo);
    if (!table.Find(flow, 1)) fresh.emplace_back(flow, key);
  }
  double total_ns = 0;
  int rounds = 20;
  for (int round = 0; round < rounds; ++round) {
    auto started = Clock::now();
    for (auto& [flow, key] : fresh) {
      if (!table.Find(flow, 2)) table.Insert(flow, key, true, Direction::kOutbound, 1, 2, 1);
    }
    total_ns += std::chrono::duration<double, std::nano>(Clock::now() - started).count();
    for (auto& [flow, key] : fresh) {
      if (ConntrackEntry* entry = table.Find(flow, 2)) table.Erase(entry);
    }
  }
  row.insert_ns = total_ns / (rounds * static_cast<double>(fresh.size()));
  return row;
}

// The worker's whole security-group stage on packets of established flows (conntrack hits).
double MeasureDecideBurstHit(int rule_count, int flows) {
  RcuDomain rcu(1);
  FilterEngine engine(&rcu, {});
  BenchSet set = MakeBenchSet(rule_count, flows * 4, 99);
  auto policy = std::make_shared<VnicPolicy>(set.policy);
  policy->vnic_id = "vm";
  policy->vnic_ips.push_back(*IpAddress::Parse("10.0.0.1"));
  if (!engine.SetPolicy(policy).ok()) throw std::runtime_error("bench policy refused");
  engine.WaitForCompiles(std::chrono::seconds(60));
  FilterSlot* slot = engine.SlotOf("vm");
  FilterStageConfig config;
  config.conntrack.max_entries = 1 << 18;
  FilterStage worker(config);
  std::vector<PacketKey> established;
  Verdict verdict;
  for (PacketKey key : set.packets) {
    if (static_cast<int>(established.size()) == flows) break;
    // A TCP flow picked up from an ACK: the same ACK again is in its window, where a flow opened
    // by a SYN would refuse its opener's ACKs before the peer's SYN-ACK.
    if (key.proto == kProtoTcp) key.tcp_flags = kTcpAck;
    worker.DecideBurst(*slot, Direction::kInbound, &key, 1, &verdict, 1);
    if (verdict == Verdict::kPassRule) established.push_back(key);
  }
  Verdict out[kMaxFilterBurst];
  size_t passed = 0;
  double ns = NsPerPacket(established.size(), 300, [&] {
    passed = 0;
    for (size_t i = 0; i + kMaxFilterBurst <= established.size(); i += kMaxFilterBurst) {
      worker.DecideBurst(*slot, Direction::kInbound, &established[i], kMaxFilterBurst, out, 2);
      for (Verdict v : out) passed += v == Verdict::kPassConntrack;
    }
  });
  g_sink = passed;
  if (passed != established.size() / kMaxFilterBurst * kMaxFilterBurst) {
    std::printf("\n(warning: %zu of %zu packets passed by conntrack: the row measures drops too)",
                passed, established.size());
  }
  return ns;
}

void PrintClassifiers(JitCompiler& compiler, const std::vector<int>& sizes, bool quick) {
  std::printf(
      "Security-group filter, inbound, one core; rules half IPv4 half IPv6, mixed protocols\n"
      "(60%% host remotes, 40%% prefixes: /20-/28 in 10/8, /64-/124 in 2001:db8::/32), 4096 "
      "packets half allowed,\nIPv4 then IPv6 for all three; rte_acl in bursts of 32.\n\n");
  std::printf("%6s | %9s %9s %9s | %8s %8s %8s | %9s %9s | %7s %6s\n", "rules", "interp", "jit",
              "rte_acl", "interp", "jit", "rte_acl", "jit/int", "jit/acl", "allowed", "agree");
  std::printf("%6s | %9s %9s %9s | %8s %8s %8s | %9s %9s |\n", "", "ns/pkt", "ns/pkt", "ns/pkt",
              "Mpps", "Mpps", "Mpps", "speedup", "speedup");
  std::vector<ClassifierRow> rows;
  for (int size : sizes) {
    ClassifierRow row = MeasureClassifiers(compiler, size, quick);
    rows.push_back(row);
    std::printf("%6d | %9.1f %9.1f %9.1f | %8.2f %8.2f %8.2f | %8.1fx %8.2fx | %6.0f%% %6s\n",
                row.rules, row.interpreter_ns, row.jit_ns, row.acl_ns, 1e3 / row.interpreter_ns,
                1e3 / row.jit_ns, 1e3 / row.acl_ns, row.interpreter_ns / row.jit_ns,
                row.acl_ns / row.jit_ns, row.allowed_share * 100,
                row.mismatches == 0 ? "yes" : "NO");
    std::fflush(stdout);
  }
  std::printf("\nJIT compile latency (O2 + codegen) and memory of a compiled filter\n");
  std::printf("%6s | %10s %10s | %13s | %10s %10s | %16s\n", "rules", "median ms", "max ms",
              "rte_acl build", "tables KiB", "code KiB", "KiB per 1k rules");
  for (const ClassifierRow& row : rows) {
    double total = row.tables_kib + row.code_kib;
    // Per 1,000 rules only where rules dominate the fixed cost.
    std::string per_1k = row.rules >= 100 ? std::to_string(total * 1000 / row.rules) : "-";
    if (per_1k != "-") per_1k = per_1k.substr(0, per_1k.find('.') + 2);
    std::printf("%6d | %10.2f %10.2f | %10.2f ms | %10.1f %10.1f | %16s\n", row.rules,
                row.compile_median_ms, row.compile_max_ms, row.acl_build_ms, row.tables_kib,
                row.code_kib, per_1k.c_str());
  }
  const ClassifierRow* small = nullptr;
  const ClassifierRow* large = nullptr;
  for (const ClassifierRow& row : rows) {
    if (row.rules == 10) small = &row;
    if (row.rules == 10000) large = &row;
  }
  if (small && large) {
    std::printf("\nJIT ns/packet at 10,000 rules / at 10 rules: %.2fx\n",
                large->jit_ns / small->jit_ns);
  }
}

void InitEal() {
  std::string prefix = "--file-prefix=filter_bench_" + std::to_string(getpid());
  const char* args[] = {"filter_bench", "--no-huge",    "--no-pci",          "-m",
                        "512",          prefix.c_str(), "--log-level=error", "--no-telemetry"};
  if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
    throw std::runtime_error("rte_eal_init failed");
  }
}

int Main(int argc, char** argv) {
  bool quick = false;
  std::string only;  // --only=classify|conntrack|hit
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strncmp(argv[i], "--only=", 7) == 0) only = argv[i] + 7;
  }
  auto wanted = [&only](const char* section) { return only.empty() || only == section; };
  InitEal();
  auto compiler = JitCompiler::Create({.optimize = true});
  if (!compiler) throw std::runtime_error(compiler.error());
  std::vector<int> sizes =
      quick ? std::vector<int>{1, 10, 100} : std::vector<int>{1, 10, 100, 1000, 10000};
  if (wanted("classify")) PrintClassifiers(**compiler, sizes, quick);
  if (wanted("conntrack")) {
    uint32_t entries = quick ? 1u << 16 : 1u << 20;
    std::printf(
        "\nConntrack: one table of %u entries (64 bytes each), IPv4 UDP flows, random keys\n",
        entries);
    std::printf("%6s | %16s %22s %12s\n", "fill", "lookup ns", "lookup ns (32 prefetched)",
                "insert ns");
    for (int fill : {10, 90}) {
      ConntrackRow row = MeasureConntrack(fill, entries);
      std::printf("%5d%% | %16.1f %22.1f %12.1f\n", row.fill_percent, row.lookup_ns,
                  row.burst_lookup_ns, row.insert_ns);
    }
  }
  if (wanted("hit")) {
    int hit_rules = quick ? 100 : 1000;
    for (int flows : {1024, 65536}) {
      double hit_ns = MeasureDecideBurstHit(hit_rules, flows);
      std::printf(
          "\nDecideBurst on established flows (filter stage + conntrack hit + state update), %d "
          "rules, %d flows, bursts of 32: %.1f ns/packet (%.2f Mpps)",
          hit_rules, flows, hit_ns, 1e3 / hit_ns);
    }
    std::printf("\n");
  }
  CleanupEal();
  return 0;
}

}  // namespace
}  // namespace butterfly::bench

int main(int argc, char** argv) {
  try {
    return butterfly::bench::Main(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "filter_bench: %s\n", error.what());
    return 1;
  }
}
