#include "common/train/corpus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TempDir;
using testing::WriteFile;

constexpr char kRealFortunes[] = "/usr/share/games/fortunes";

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Whether `sub` appears in `all` in the same relative order.
bool IsSubsequence(const std::vector<std::string>& sub,
                   const std::vector<std::string>& all) {
  size_t j = 0;
  for (const std::string& s : all) {
    if (j < sub.size() && sub[j] == s) ++j;
  }
  return j == sub.size();
}

// ---------------------------------------------------------------------------
// file_util

TEST(FileUtilTest, WriteFileAtomicReplacesContentAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.Join("out.txt");
  ASSERT_TRUE(WriteFileAtomic(path, "old contents, rather long\n").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "new").ok());
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "new");
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("out.txt"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644);

  // Empty and binary contents too.
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(WriteFileAtomic(path, binary).ok());
  EXPECT_EQ(*ReadFileToString(path), binary);
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  EXPECT_EQ(*ReadFileToString(path), "");
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("out.txt"));
}

TEST(FileUtilTest, WriteFileAtomicInMissingDirectoryNamesThePath) {
  TempDir dir;
  const std::string path = dir.Join("missing/out.txt");
  absl::Status status = WriteFileAtomic(path, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_THAT(ListDir(dir.path()), IsEmpty());
}

TEST(FileUtilTest, WriteFileAtomicOverADirectoryFailsAndCleansUp) {
  TempDir dir;
  std::filesystem::create_directory(dir.Join("sub"));
  absl::Status status = WriteFileAtomic(dir.Join("sub"), "x");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir.Join("sub")));
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("sub"));
}

TEST(FileUtilTest, ReadFileToStringMissingIsNotFound) {
  TempDir dir;
  const std::string path = dir.Join("nothing");
  absl::StatusOr<std::string> read = ReadFileToString(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr(path));
}

// ---------------------------------------------------------------------------
// LoadFortunes

// A directory like Debian's, with every kind of thing to skip.
class FortuneDir {
 public:
  FortuneDir() {
    WriteFile(dir_.Join("alpha"),
              "First doc.\n"
              "%\n"
              "\n \n"
              "Second doc, after blank lines  \n"
              "  \n"
              "%\n"
              "%\n"
              "   \n"
              "%\n"
              "\tIndented third\n"
              "line two\t \n"
              "%\n"
              "First doc.\n"
              "%\n");
    WriteFile(dir_.Join("alpha.dat"), "Not\n%\nread\n%\n");
    std::filesystem::create_symlink("alpha", dir_.Join("alpha.u8"));
    WriteFile(dir_.Join("beta"),
              "Beta one\r\n%\r\nFirst doc.\r\n%\r\nBeta two\r\n");
    WriteFile(dir_.Join("copy"),
              "Beta one\r\n%\r\nFirst doc.\r\n%\r\nBeta two\r\n");
    WriteFile(dir_.Join("latin1"), "Caf\xe9 au lait\n%\nplain ascii\n");
    WriteFile(dir_.Join(".hidden"), "Hidden\n");
    std::filesystem::create_directory(dir_.Join("off"));
    WriteFile(dir_.Join("off/gamma"), "Offensive\n%\n");
    std::filesystem::create_symlink("nowhere", dir_.Join("dangling"));
    WriteFile(dir_.Join("zeta"),
              "%\n\u00dcn\u00efc\u00f6d\u00e9 ok\n%\nLast, no separator");
  }
  const std::string& path() const { return dir_.path(); }
  std::string Join(std::string_view name) const { return dir_.Join(name); }

 private:
  TempDir dir_;
};

const std::vector<std::string>& ExpectedFortuneDocs() {
  static const auto* docs = new std::vector<std::string>{
      "First doc.",
      "Second doc, after blank lines",
      "\tIndented third\nline two",
      "Beta one",
      "Beta two",
      "\u00dcn\u00efc\u00f6d\u00e9 ok",
      "Last, no separator",
  };
  return *docs;
}

TEST(LoadFortunesTest, ReadsEntriesAndSkipsWhatIsNotAFortuneFile) {
  FortuneDir dir;
  absl::StatusOr<Corpus> corpus =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 0});
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_EQ(corpus->train, ExpectedFortuneDocs());
  EXPECT_THAT(corpus->heldout, IsEmpty());
  // "First doc." twice more (alpha, beta); "copy" and "alpha.u8" are skipped
  // whole, so they add none.
  EXPECT_EQ(corpus->duplicates_removed, 2u);
  EXPECT_THAT(corpus->files, ElementsAre("alpha", "beta", "zeta"));
  EXPECT_THAT(corpus->skipped_not_utf8, ElementsAre("latin1"));
}

TEST(LoadFortunesTest, HeldOutIsDisjointStableAndByContent) {
  // 300 distinct documents over three files.
  TempDir dir;
  std::vector<std::string> all;
  std::string files[3];
  for (int i = 0; i < 300; ++i) {
    all.push_back(absl::StrCat("Fortune number ", i, " says hello."));
    files[i % 3] += all.back() + "\n%\n";
  }
  for (int f = 0; f < 3; ++f) {
    WriteFile(dir.Join(absl::StrCat("file", f)), files[f]);
  }
  absl::StatusOr<Corpus> a =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 0.3});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->train.size() + a->heldout.size(), 300u);
  EXPECT_GT(a->heldout.size(), 50u);  // about 90
  EXPECT_LT(a->heldout.size(), 130u);
  const std::set<std::string> train(a->train.begin(), a->train.end());
  for (const std::string& doc : a->heldout) EXPECT_FALSE(train.contains(doc));

  // Order: by file, then position; both lists keep it.
  absl::StatusOr<Corpus> none =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 0});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(IsSubsequence(a->train, none->train));
  EXPECT_TRUE(IsSubsequence(a->heldout, none->train));

  // The same on a second run.
  absl::StatusOr<Corpus> again =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 0.3});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->train, a->train);
  EXPECT_EQ(again->heldout, a->heldout);

  // The same documents arranged in other files: the same held-out set.
  TempDir other;
  std::string one_file;
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    one_file += *it + "\n%\n";
  WriteFile(other.Join("everything"), one_file);
  absl::StatusOr<Corpus> b =
      LoadFortunes({.dir = other.path(), .heldout_fraction = 0.3});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::set<std::string>(b->heldout.begin(), b->heldout.end()),
            std::set<std::string>(a->heldout.begin(), a->heldout.end()));

  // A larger fraction holds out a superset.
  absl::StatusOr<Corpus> more =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 0.6});
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(IsSubsequence(a->heldout, more->heldout));
  absl::StatusOr<Corpus> all_out =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 1});
  ASSERT_TRUE(all_out.ok());
  EXPECT_THAT(all_out->train, IsEmpty());
  EXPECT_EQ(all_out->heldout, none->train);
}

TEST(LoadFortunesTest, Errors) {
  TempDir dir;
  absl::StatusOr<Corpus> missing = LoadFortunes({.dir = dir.Join("nope")});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.Join("nope")));

  absl::StatusOr<Corpus> empty = LoadFortunes({.dir = dir.path()});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(empty.status().message(), HasSubstr("no documents"));

  // Only things that are skipped, or entries that are empty.
  WriteFile(dir.Join("x.dat"), "Not read\n");
  WriteFile(dir.Join("blank"), "%\n  \n%\n\n");
  absl::StatusOr<Corpus> nothing = LoadFortunes({.dir = dir.path()});
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kFailedPrecondition);

  WriteFile(dir.Join("real"), "Something\n");
  absl::StatusOr<Corpus> bad_fraction =
      LoadFortunes({.dir = dir.path(), .heldout_fraction = 1.5});
  EXPECT_EQ(bad_fraction.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// VariantDocuments

Corpus SyntheticCorpus(int n) {
  Corpus corpus;
  for (int i = 0; i < n; ++i) corpus.train.push_back(absl::StrCat("doc ", i));
  corpus.heldout = {"held out A", "held out B"};
  return corpus;
}

std::map<std::string, int> Counts(const std::vector<std::string>& docs) {
  std::map<std::string, int> counts;
  for (const std::string& d : docs) ++counts[d];
  return counts;
}

TEST(VariantDocumentsTest, DedupedHasEachTrainingDocumentOnceShuffled) {
  const Corpus corpus = SyntheticCorpus(500);
  const auto docs = VariantDocuments(corpus, CorpusVariant::kDeduped, 7);
  ASSERT_EQ(docs.size(), corpus.train.size());
  auto sorted = docs;
  auto expected = corpus.train;
  std::sort(sorted.begin(), sorted.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(sorted, expected);
  EXPECT_NE(docs, corpus.train);  // shuffled
  EXPECT_EQ(VariantDocuments(corpus, CorpusVariant::kDeduped, 7), docs);
  EXPECT_NE(VariantDocuments(corpus, CorpusVariant::kDeduped, 8), docs);
}

TEST(VariantDocumentsTest, StandardRepeatsWithAHeavyTail) {
  const Corpus corpus = SyntheticCorpus(4000);
  const auto docs = VariantDocuments(corpus, CorpusVariant::kStandard, 7);
  const auto counts = Counts(docs);
  // Every training document at least once, at most max_repeats times, and
  // nothing held out.
  ASSERT_EQ(counts.size(), corpus.train.size());
  for (const std::string& doc : corpus.train) {
    ASSERT_TRUE(counts.contains(doc)) << doc;
    EXPECT_GE(counts.at(doc), 1);
    EXPECT_LE(counts.at(doc), RepetitionOptions().max_repeats);
  }
  // The law P(r >= k) = k^-2: 3/4 once, 1/9 three times or more, a mean of
  // about 1.63. The bounds are more than four standard deviations wide.
  int once = 0, three_plus = 0, max = 0;
  for (const auto& [doc, r] : counts) {
    once += r == 1;
    three_plus += r >= 3;
    max = std::max(max, r);
  }
  EXPECT_NEAR(once / 4000.0, 0.75, 0.03);
  EXPECT_NEAR(three_plus / 4000.0, 1.0 / 9, 0.025);
  EXPECT_GT(max, 10);
  const double mean = static_cast<double>(docs.size()) / 4000;
  EXPECT_GT(mean, 1.45);
  EXPECT_LT(mean, 1.85);

  // Shuffled: copies of one document are not all adjacent.
  int adjacent = 0;
  for (size_t i = 1; i < docs.size(); ++i) adjacent += docs[i] == docs[i - 1];
  EXPECT_LT(adjacent, 20);

  // Deterministic for a seed, different for another.
  EXPECT_EQ(VariantDocuments(corpus, CorpusVariant::kStandard, 7), docs);
  const auto other = VariantDocuments(corpus, CorpusVariant::kStandard, 8);
  EXPECT_NE(Counts(other), counts);
}

TEST(VariantDocumentsTest, RepetitionOptions) {
  const Corpus corpus = SyntheticCorpus(300);
  // A light tail: P(r >= 2) = 2^-50, so every document once.
  const auto light = VariantDocuments(corpus, CorpusVariant::kStandard, 1,
                                      {.alpha = 50, .max_repeats = 100});
  EXPECT_EQ(light.size(), 300u);
  // A cap of one: the deduped set, shuffled.
  const auto capped = VariantDocuments(corpus, CorpusVariant::kStandard, 1,
                                       {.alpha = 1, .max_repeats = 1});
  EXPECT_EQ(capped.size(), 300u);
  EXPECT_EQ(Counts(capped).size(), 300u);
  // A heavier tail, more copies (a mean of about 7.5 against 1.63).
  const auto heavy = VariantDocuments(corpus, CorpusVariant::kStandard, 1,
                                      {.alpha = 1, .max_repeats = 1000});
  EXPECT_GT(heavy.size(),
            VariantDocuments(corpus, CorpusVariant::kStandard, 1).size());
}

// ---------------------------------------------------------------------------
// ClozeExamples

TEST(ClozeExamplesTest, HandMadeDocuments) {
  const std::vector<std::string> heldout = {
      // Attribution cut, with its indented continuation; "!!" cut.
      "My cat sleeps on the warm windowsill every single afternoon,\n"
      "then wakes up hungry!!  \n"
      "\t\t-- A. Owner,\n"
      "\t\t   Cat Diaries",
      // Whitespace of every kind collapsed.
      "Line one has\tseveral\n\nwords and\n  then some more words ending "
      "here.",
      // Too little context: seven words before the target.
      "Only seven words of context here before target.",
      // Trailing digits cut like punctuation; the target becomes "is".
      "The answer to the great question of life is 42.",
      // A one-letter target.
      "Some eight words of context come right before a",
      // A target with an apostrophe, or a quote before it.
      "We walked to the old house on the hill but we don't",
      "The sign on the door of the shop simply said \"closed\".",
      // ASCII art: too few words with letters.
      "| | | | | | | |\n| a b | c d | e f | art",
      // A "--" first line is text, not an attribution.
      "-- just a dash at the start, with enough words to pass the rule",
      // A "--" line followed by an unindented line is kept too.
      "Some text with many words in it to satisfy the rule\n-- Author\n"
      "Postscript line goes here at the end",
      // Letters outside ASCII.
      "Wir fahren morgen fr\xc3\xbch mit dem Zug nach M\xc3\xbcnchen.",
      // The same example again, differently spaced: once only.
      "Line one has several words and then some more words ending here!",
      // Nothing but an attribution-like line and no letters at the end.
      "1 2 3 4 5 6 7 8 9 10",
  };
  EXPECT_THAT(
      ClozeExamples(heldout),
      ElementsAre(
          "My cat sleeps on the warm windowsill every single afternoon, "
          "then wakes up hungry",
          "Line one has several words and then some more words ending here",
          "The answer to the great question of life is",
          "-- just a dash at the start, with enough words to pass the rule",
          "Some text with many words in it to satisfy the rule -- Author "
          "Postscript line goes here at the end",
          "Wir fahren morgen fr\xc3\xbch mit dem Zug nach M\xc3\xbcnchen"));
  EXPECT_THAT(ClozeExamples({}), IsEmpty());
}

TEST(ClozeExamplesTest, WriteJsonl) {
  TempDir dir;
  const std::string path = dir.Join("cloze.jsonl");
  const std::vector<std::string> examples = {
      "She said \"hello\" and then left the room",
      "Back\\slash and tab\tin a line",
      "\xc3\x9cml\xc3\xa4ut",
  };
  ASSERT_TRUE(WriteClozeJsonl(examples, path).ok());
  absl::StatusOr<std::string> text = ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text->find('\n', start)) != std::string::npos;
       start = nl + 1) {
    lines.push_back(text->substr(start, nl - start));
  }
  EXPECT_EQ(start, text->size());  // ends with a newline
  ASSERT_EQ(lines.size(), examples.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json line = nlohmann::json::parse(lines[i]);
    ASSERT_TRUE(line.is_object());
    EXPECT_EQ(line.size(), 1u);
    EXPECT_EQ(line.at("text"), examples[i]);
  }
  EXPECT_EQ(lines[0],
            R"({"text":"She said \"hello\" and then left the room"})");
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("cloze.jsonl"));

  absl::Status bad = WriteClozeJsonl(examples, dir.Join("no/cloze.jsonl"));
  EXPECT_EQ(bad.code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// The real corpus

TEST(RealFortunesTest, ThousandsOfDocumentsAndHundredsOfClozeExamples) {
  if (!std::filesystem::is_directory(kRealFortunes)) {
    GTEST_SKIP() << kRealFortunes
                 << " is absent (install the Debian package fortunes)";
  }
  absl::StatusOr<Corpus> corpus = LoadFortunes({});
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  const size_t total = corpus->train.size() + corpus->heldout.size();
  EXPECT_GT(total, 5000u);
  EXPECT_GT(corpus->heldout.size(), total / 50);
  EXPECT_LT(corpus->heldout.size(), total / 10);
  const std::set<std::string> train(corpus->train.begin(), corpus->train.end());
  EXPECT_EQ(train.size(), corpus->train.size());
  for (const std::string& doc : corpus->heldout) {
    EXPECT_FALSE(train.contains(doc));
  }
  const auto cloze = ClozeExamples(corpus->heldout);
  EXPECT_GT(cloze.size(), 200u);
  size_t bytes = 0;
  for (const auto& doc : corpus->train) bytes += doc.size();
  for (const auto& doc : corpus->heldout) bytes += doc.size();
  const auto standard = VariantDocuments(*corpus, CorpusVariant::kStandard, 0);
  std::cout << "fortunes: " << corpus->files.size() << " files ("
            << corpus->skipped_not_utf8.size() << " skipped as not UTF-8), "
            << total << " unique documents (" << bytes << " bytes), "
            << corpus->duplicates_removed << " duplicates removed, "
            << corpus->train.size() << " train, " << corpus->heldout.size()
            << " held out, " << cloze.size() << " cloze examples, standard "
            << "variant (seed 0) " << standard.size() << " documents\n";
}

}  // namespace
}  // namespace garden
