// Fuzz target: conntrack import, the fw_data of a nic_add that brings a live-migrated VM's flows
// from another host (its nic_export). Any bytes are either refused, leaving the table as it was,
// or imported: then every flow is found, and exporting the vnic's flows and importing them into a
// fresh table gives back the same flows.
// Input: one byte (how many flows the table already holds, the table's size), then the blob.
#include <algorithm>
#include <set>

#include "fuzz_support.h"
#include "pipeline/conntrack.h"

namespace butterfly {
namespace {

constexpr uint32_t kVnic = 7;
constexpr uint64_t kNow = 1'000'000;

ConntrackConfig Config(uint32_t entries) {
  ConntrackConfig config;
  config.max_entries = entries;
  config.ticks_per_second = 1000;
  return config;
}

// The export's records, in an order that does not depend on the table's hash key.
std::multiset<std::string> Records(const std::string& exported) {
  constexpr size_t kHeader = 12, kRecord = 44;
  FUZZ_CHECK(exported.size() >= kHeader && (exported.size() - kHeader) % kRecord == 0);
  std::multiset<std::string> records;
  for (size_t at = kHeader; at < exported.size(); at += kRecord) {
    records.insert(exported.substr(at, kRecord));
  }
  return records;
}

}  // namespace
}  // namespace butterfly

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace butterfly;
  if (size < 1 || size > 1 << 16) return -1;
  uint32_t entries = 4u << (data[0] & 3);  // 4 to 32
  int preset = (data[0] >> 2) % 8;
  std::string blob(reinterpret_cast<const char*>(data + 1), size - 1);

  Conntrack table(Config(entries));
  // Flows the table already tracks, of this vnic and of another.
  for (int i = 0; i < preset; ++i) {
    PacketKey key;
    key.family = 4;
    key.proto = i % 2 ? 6 : 17;
    key.src = {10, 0, 0, 5};
    key.dst = {192, 0, 2, static_cast<uint8_t>(i)};
    key.src_port = static_cast<uint16_t>(40000 + i);
    key.dst_port = 80;
    key.tcp_flags = kTcpSyn;
    bool from_lo;
    uint32_t owner = i % 3 ? kVnic : kVnic + 1;
    FlowKey flow = MakeFlowKey(key, owner, &from_lo);
    if (!table.Find(flow, kNow)) {
      table.Insert(flow, key, from_lo, Direction::kOutbound, 1, kNow, owner);
    }
  }
  std::string before = table.Export(kVnic, kNow);
  std::string other_before = table.Export(kVnic + 1, kNow);
  size_t size_before = table.size();

  Status imported = table.Import(blob, kVnic, kNow);
  if (!imported) {
    FUZZ_CHECK(!imported.error().empty());
    FUZZ_CHECK(table.size() == size_before && Records(table.Export(kVnic, kNow)) == Records(before),
               "a refused import changed the table (%s)", imported.error().c_str());
    return 0;
  }
  FUZZ_CHECK(Records(table.Export(kVnic + 1, kNow)) == Records(other_before),
             "an import touched another vnic's flows");
  // Exported again, the imported flows come back (on a fresh table too).
  std::string after = table.Export(kVnic, kNow);
  std::multiset<std::string> after_records = Records(after);
  Conntrack fresh(Config(64));
  Status again = fresh.Import(after, kVnic, kNow);
  FUZZ_CHECK(again.ok(), "its own export does not import: %s", again.error().c_str());
  FUZZ_CHECK(Records(fresh.Export(kVnic, kNow)) == after_records);
  // Every flow of the blob is tracked (the last record of a flow gives its state).
  auto same_flow = [](const std::string& a, const std::string& b) {
    return a.compare(0, 2, b, 0, 2) == 0 && a.compare(4, 36, b, 4, 36) == 0;
  };
  for (const std::string& record : Records(blob)) {
    FUZZ_CHECK(std::any_of(after_records.begin(), after_records.end(),
                           [&](const std::string& r) { return same_flow(r, record); }),
               "an imported flow is missing");
  }
  return 0;
}
