// The drop reasons and stages are one list each (src/pipeline/counters.h): the enums, the names in
// the API and the README's tables all come from it. The README is a document, so it is checked.
#include "pipeline/counters.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/filter_stage.h"

namespace butterfly {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

// The rows "| `name` | meaning |" of the README table under the line starting with `heading`.
Rows ReadmeTable(const std::string& heading) {
  std::ifstream file(BUTTERFLY_README);
  EXPECT_TRUE(file.good()) << BUTTERFLY_README;
  std::string line;
  while (std::getline(file, line) && line.rfind(heading, 0) != 0) {
  }
  // A row: "| `name` | meaning |" (read by hand: std::regex trips GCC 12's -Wmaybe-uninitialized
  // in the sanitizer builds).
  Rows rows;
  bool in_table = false;
  while (std::getline(file, line)) {
    size_t name_end = line.find("` | ");
    if (line.rfind("| `", 0) == 0 && name_end != std::string::npos && line.size() > name_end + 6 &&
        line.compare(line.size() - 2, 2, " |") == 0) {
      rows.emplace_back(line.substr(3, name_end - 3),
                        line.substr(name_end + 4, line.size() - 2 - (name_end + 4)));
      in_table = true;
    } else if (in_table && line.empty()) {
      break;
    }
  }
  return rows;
}

template <size_t N>
Rows RowsOf(const CounterName (&names)[N]) {
  Rows rows;
  for (const CounterName& name : names) rows.emplace_back(name.name, name.meaning);
  return rows;
}

TEST(CounterNamesTest, TheReadmeListsEveryDropReasonAndStageAsTheCodeNamesThem) {
  EXPECT_EQ(ReadmeTable("Drop reasons"), RowsOf(kDropReasonNames));
  EXPECT_EQ(ReadmeTable("Stages, in a packet's order"), RowsOf(kStageNames));
}

TEST(CounterNamesTest, NamesAreUniqueAndNumbersStable) {
  auto expect_unique = [](const auto& names) {
    for (size_t i = 0; i < std::size(names); ++i) {
      for (size_t j = i + 1; j < std::size(names); ++j) EXPECT_NE(names[i].name, names[j].name);
    }
  };
  expect_unique(kDropReasonNames);
  expect_unique(kStageNames);
  // API: these numbers and names never change.
  EXPECT_STREQ(DropReasonName(DropReason::kFilter), "filter");
  EXPECT_STREQ(DropReasonName(DropReason::kFragment), "fragment");
  EXPECT_EQ(static_cast<int>(DropReason::kFragment), 14);
  EXPECT_STREQ(StageName(Stage::kVtep), "vtep");
  EXPECT_EQ(static_cast<int>(Stage::kVtep), 11);
}

TEST(CounterNamesTest, EveryFilterDropIsCountedUnderADropReasonAndNoPassIs) {
  for (int v = 0; v < kVerdictCount; ++v) {
    auto verdict = static_cast<Verdict>(v);
    EXPECT_EQ(IsPass(verdict), DropReasonOf(verdict) == kKeep) << v;
  }
  EXPECT_EQ(DropReasonOf(Verdict::kDropNoRule), DropReason::kFilter);
  EXPECT_EQ(DropReasonOf(Verdict::kDropFragment), DropReason::kFragment);
  EXPECT_EQ(DropReasonOf(Verdict::kDropConntrackFull), DropReason::kConntrackFull);
}

}  // namespace
}  // namespace butterfly
