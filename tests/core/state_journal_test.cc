// The state journal's file format: what survives a torn or corrupt tail, what is refused, and how
// a failed write is contained.
#include "core/state_journal.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/crc32c.h"

namespace butterfly {
namespace {

namespace fs = std::filesystem;

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, ExtendsAcrossPieces) {
  std::string text = "The quick brown fox jumps over the lazy dog, several times over.";
  for (size_t split = 0; split <= text.size(); ++split) {
    std::string_view view(text);
    EXPECT_EQ(Crc32c(view.substr(split), Crc32c(view.substr(0, split))), Crc32c(text)) << split;
  }
}

class StateJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/butterfly-journal-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/state/state.journal";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<StateJournal> OpenOk(JournalLoad* load, JournalPolicy policy = {}) {
    auto journal = StateJournal::Open(path_, load, policy);
    EXPECT_TRUE(journal.ok()) << (journal.ok() ? "" : journal.error());
    return journal.ok() ? std::move(*journal) : nullptr;
  }
  // Writes `records` as a journal, with no zeroed space ahead, and closes it.
  void WriteJournal(const std::vector<std::string>& records) {
    JournalLoad load;
    auto journal = OpenOk(&load, kNoPreallocation);
    for (const auto& record : records) journal->Append(record);
    ASSERT_TRUE(journal->Sync().ok());
  }
  std::string ReadFile(const std::string& path) const {
    std::ifstream file(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(file), {});
  }
  void WriteFile(const std::string& path, const std::string& bytes) const {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  static constexpr JournalPolicy kNoPreallocation{.preallocate_bytes = 0};
  std::string dir_;
  std::string path_;
};

TEST_F(StateJournalTest, MissingFileIsCreatedWithItsDirectoryPrivate) {
  JournalLoad load;
  auto journal = OpenOk(&load);
  EXPECT_TRUE(load.created);
  EXPECT_TRUE(load.records.empty());
  EXPECT_EQ(ReadFile(path_), StateJournal::Header());
  struct stat info {};
  ASSERT_EQ(stat((dir_ + "/state").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
}

TEST_F(StateJournalTest, SyncedRecordsComeBackInOrder) {
  WriteJournal({"one", "two", std::string(100000, 'x'), std::string("\0\1\2", 3)});
  JournalLoad load;
  auto journal = OpenOk(&load);
  EXPECT_FALSE(load.created);
  EXPECT_EQ(load.dropped_bytes, 0u);
  EXPECT_EQ(load.records, (std::vector<std::string>{"one", "two", std::string(100000, 'x'),
                                                    std::string("\0\1\2", 3)}));
}

TEST_F(StateJournalTest, RecordsNotSyncedAreNotWritten) {
  {
    JournalLoad load;
    auto journal = OpenOk(&load);
    journal->Append("synced");
    ASSERT_TRUE(journal->Sync().ok());
    journal->Append("never synced");
  }
  JournalLoad load;
  OpenOk(&load);
  EXPECT_EQ(load.records, std::vector<std::string>{"synced"});
}

TEST_F(StateJournalTest, TruncationAtEveryOffsetKeepsExactlyTheWholeRecordsBeforeIt) {
  std::vector<std::string> records = {"alpha", "bravo-bravo", "charlie-charlie-charlie"};
  WriteJournal(records);
  std::string full = ReadFile(path_);
  std::vector<size_t> ends;  // offset just after each record
  size_t at = StateJournal::kHeaderBytes;
  for (const auto& record : records)
    ends.push_back(at += StateJournal::kRecordHeaderBytes + record.size());
  for (size_t cut = StateJournal::kHeaderBytes; cut <= full.size(); ++cut) {
    WriteFile(path_, full.substr(0, cut));
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    size_t intact = whole == 0 ? StateJournal::kHeaderBytes : ends[whole - 1];
    JournalLoad load;
    auto journal = OpenOk(&load, kNoPreallocation);
    EXPECT_EQ(load.records, std::vector<std::string>(records.begin(), records.begin() + whole))
        << "cut at " << cut;
    EXPECT_EQ(load.dropped_bytes, cut - intact) << "cut at " << cut;
    EXPECT_EQ(ReadFile(path_).size(), intact) << "the torn tail is truncated";
    // Appending after the repair reads back after the intact records.
    journal->Append("after");
    ASSERT_TRUE(journal->Sync().ok());
    journal.reset();
    JournalLoad again;
    OpenOk(&again);
    EXPECT_EQ(again.records.back(), "after");
    EXPECT_EQ(again.records.size(), whole + 1);
  }
}

TEST_F(StateJournalTest, CorruptRecordDropsItAndEverythingAfter) {
  WriteJournal({"first", "second", "third"});
  std::string bytes = ReadFile(path_);
  size_t second_payload = StateJournal::kHeaderBytes + 2 * StateJournal::kRecordHeaderBytes + 5;
  bytes[second_payload + 2] ^= 0x20;  // one flipped bit
  WriteFile(path_, bytes);
  JournalLoad load;
  OpenOk(&load);
  EXPECT_EQ(load.records, std::vector<std::string>{"first"});
  EXPECT_EQ(load.dropped_reason, "record 2 fails its checksum");
  EXPECT_EQ(load.dropped_at, StateJournal::kHeaderBytes + StateJournal::kRecordHeaderBytes + 5);
}

TEST_F(StateJournalTest, SpaceIsWrittenAheadAndAppendsFillItAfterAReopen) {
  {
    JournalLoad load;
    auto journal = OpenOk(&load, JournalPolicy{.preallocate_bytes = 4096});
    journal->Append("first");
    ASSERT_TRUE(journal->Sync().ok());
    EXPECT_EQ(fs::file_size(path_), 4096u) << "zeroed space ahead of the records";
    EXPECT_EQ(journal->size_bytes(), StateJournal::kHeaderBytes + 8 + 5);
    journal->Append(std::string(5000, 'x'));  // past the space: extended again
    ASSERT_TRUE(journal->Sync().ok());
    EXPECT_EQ(fs::file_size(path_), 2 * 4096u);
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    JournalLoad load;
    auto journal = OpenOk(&load, JournalPolicy{.preallocate_bytes = 4096});
    EXPECT_EQ(load.dropped_bytes, 0u) << "zeros after the records are their normal end";
    EXPECT_EQ(fs::file_size(path_), 2 * 4096u) << "and are kept";
    EXPECT_EQ(load.records.size(), 2u + reopen);
    journal->Append("after reopen");  // written over the zeros, right after the records
    ASSERT_TRUE(journal->Sync().ok());
  }
  JournalLoad load;
  OpenOk(&load);
  EXPECT_EQ(load.records.back(), "after reopen");
  EXPECT_EQ(load.records.size(), 4u);
}

TEST_F(StateJournalTest, LengthZeroFollowedByDataIsATornWrite) {
  WriteJournal({"first"});
  // A record whose first page never reached the disk while a later one did.
  WriteFile(path_, ReadFile(path_) + std::string(4096, '\0') + "late page");
  JournalLoad load;
  OpenOk(&load);
  EXPECT_EQ(load.records, std::vector<std::string>{"first"});
  EXPECT_EQ(load.dropped_bytes, 4096u + 9);
  EXPECT_NE(load.dropped_reason.find("length 0 and data follows"), std::string::npos);
}

TEST_F(StateJournalTest, FilesThatAreNotJournalsAreRefusedAndLeftAlone) {
  std::string good = StateJournal::Header();
  std::string future = good;
  future[8] = 2;  // format 2, with a valid checksum
  uint32_t crc = Crc32c(std::string_view(future).substr(0, 12));
  for (int i = 0; i < 4; ++i) future[12 + i] = static_cast<char>(crc >> (8 * i));
  std::string bad_crc = good;
  bad_crc[15] ^= 1;
  struct Case {
    std::string bytes;
    std::string expected;
  };
  std::vector<Case> cases = {
      {"", "shorter than a header"},
      {"BFJOUR", "shorter than a header"},
      {"vnic_1 52:54:00:00:00:01 42\n", "does not start with BFJOURNL"},
      {bad_crc, "header is corrupt"},
      {future, "journal format 2"},
  };
  fs::create_directories(dir_ + "/state");
  for (const Case& c : cases) {
    WriteFile(path_, c.bytes);
    JournalLoad load;
    auto journal = StateJournal::Open(path_, &load);
    ASSERT_FALSE(journal.ok()) << c.expected;
    EXPECT_NE(journal.error().find(c.expected), std::string::npos) << journal.error();
    EXPECT_NE(journal.error().find(path_), std::string::npos) << "names the file";
    EXPECT_EQ(ReadFile(path_), c.bytes) << "never replaced";
  }
}

TEST_F(StateJournalTest, DirectoryInPlaceOfTheFileIsRefused) {
  fs::create_directories(path_);
  JournalLoad load;
  auto journal = StateJournal::Open(path_, &load);
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.error().find("Is a directory"), std::string::npos) << journal.error();
}

TEST_F(StateJournalTest, SecondOpenOfTheSameJournalIsRefused) {
  JournalLoad load;
  auto first = OpenOk(&load);
  auto second = StateJournal::Open(path_, &load);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find("in use by another butterflyd"), std::string::npos);
  first.reset();
  EXPECT_TRUE(StateJournal::Open(path_, &load).ok()) << "the lock goes with the first";
}

TEST_F(StateJournalTest, RewriteReplacesEverythingAndLaterAppendsFollowIt) {
  WriteJournal({"a", "b", "c", "d"});
  {
    JournalLoad load;
    auto journal = OpenOk(&load);
    journal->Append("pending, superseded by the snapshot");
    ASSERT_TRUE(journal->Rewrite({"snapshot"}).ok());
    EXPECT_FALSE(journal->HasPending());
    journal->Append("e");
    ASSERT_TRUE(journal->Sync().ok());
  }
  JournalLoad load;
  OpenOk(&load);
  EXPECT_EQ(load.records, (std::vector<std::string>{"snapshot", "e"}));
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_F(StateJournalTest, TemporaryFileOfAnInterruptedCompactionIsRemoved) {
  WriteJournal({"kept"});
  WriteFile(path_ + ".tmp", "half a snapshot");
  JournalLoad load;
  OpenOk(&load);
  EXPECT_TRUE(load.removed_temporary);
  EXPECT_EQ(load.records, std::vector<std::string>{"kept"});
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_F(StateJournalTest, CompactionIsWantedPastTheRatioAndTheMinimum) {
  JournalLoad load;
  auto journal = OpenOk(&load, JournalPolicy{.compact_ratio = 4, .compact_min_bytes = 1000});
  ASSERT_TRUE(journal->Rewrite({std::string(500, 's')}).ok());  // snapshot: 524 bytes
  journal->Append(std::string(1000, 'x'));
  ASSERT_TRUE(journal->Sync().ok());
  EXPECT_FALSE(journal->WantsCompaction()) << journal->size_bytes() << " <= 4 x 524";
  journal->Append(std::string(1000, 'x'));
  ASSERT_TRUE(journal->Sync().ok());
  EXPECT_TRUE(journal->WantsCompaction()) << journal->size_bytes() << " > 4 x 524";
}

// A write that fails (here: the file size limit, as a full disk would) breaks the journal until a
// rewrite succeeds; nothing is appended after a possibly partial record.
TEST_F(StateJournalTest, FailedWriteBreaksTheJournalUntilARewrite) {
  JournalLoad load;
  auto journal = OpenOk(&load);
  journal->Append("before");
  ASSERT_TRUE(journal->Sync().ok());

  std::signal(SIGXFSZ, SIG_IGN);
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &original), 0);
  rlimit small = original;
  small.rlim_cur = journal->size_bytes() + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  journal->Append(std::string(1000, 'x'));
  Status failed = journal->Sync();
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.error().find("cannot write state journal"), std::string::npos) << failed.error();
  EXPECT_TRUE(journal->broken());
  journal->Append("after the failure");
  EXPECT_FALSE(journal->Sync().ok()) << "no append after a failed write";
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &original), 0);

  ASSERT_TRUE(journal->Rewrite({"snapshot"}).ok());
  EXPECT_FALSE(journal->broken());
  journal->Append("next");
  ASSERT_TRUE(journal->Sync().ok());
  journal.reset();
  JournalLoad reloaded;
  OpenOk(&reloaded);
  EXPECT_EQ(reloaded.records, (std::vector<std::string>{"snapshot", "next"}));
  EXPECT_EQ(reloaded.dropped_bytes, 0u);
}

}  // namespace
}  // namespace butterfly
