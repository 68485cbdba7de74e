#include "common/text/bpe_trainer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/text/tokenizer.h"
#include "common/train/corpus.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/byte_alphabet.h"

namespace garden {
namespace {

using Json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kRealFortunes[] = "/usr/share/games/fortunes";

std::string Train(const std::vector<std::string>& docs,
                  const BpeTrainerOptions& options) {
  absl::StatusOr<std::string> json = TrainByteLevelBpe(docs, options);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : std::string();
}

std::unique_ptr<Tokenizer> Load(const std::string& json) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t =
      Tokenizer::FromJson(json, "trained");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::vector<std::string> Merges(const std::string& json) {
  return Json::parse(json)
      .at("model")
      .at("merges")
      .get<std::vector<std::string>>();
}

std::vector<std::string> Pieces(const Tokenizer& t,
                                const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.IdToPiece(id));
  return out;
}

std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string> out;
  Tokenizer::PreTokenize(text,
                         [&](std::string_view w) { out.emplace_back(w); });
  return out;
}

// Checks the vocabulary: ids 0 to n - 1 once each, the special tokens first.
void ExpectContiguousVocabulary(const std::string& json, size_t n) {
  const Json parsed = Json::parse(json);
  const Json& vocab = parsed.at("model").at("vocab");
  ASSERT_EQ(vocab.size(), n);
  std::vector<bool> seen(n, false);
  for (const auto& [piece, id] : vocab.items()) {
    const auto i = id.get<size_t>();
    ASSERT_LT(i, n) << piece;
    EXPECT_FALSE(seen[i]) << piece;
    seen[i] = true;
  }
  EXPECT_EQ(vocab.at("<|endoftext|>"), 0);
  EXPECT_EQ(vocab.at("<|padding|>"), 1);
  const Json& added = parsed.at("added_tokens");
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0].at("id"), 0);
  EXPECT_EQ(added[0].at("content"), "<|endoftext|>");
  EXPECT_EQ(added[0].at("special"), true);
  EXPECT_EQ(added[0].at("normalized"), false);
  EXPECT_EQ(added[1].at("id"), 1);
  EXPECT_EQ(added[1].at("content"), "<|padding|>");
}

// A corpus with some of everything: repeated words, spaces, punctuation,
// numbers, newlines, non-ASCII letters, emoji, control characters.
std::vector<std::string> SmallCorpus() {
  return {
      "The cat sat on the mat. The cat sat on the hat!",
      "  Leading spaces,\ttabs\t\tand\n\nnewlines\n",
      "Numbers: 12345 678 90, and 3.14159; also 2024-01-01.",
      "Unicode: caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
      "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2"
      "\xd0\xb5\xd1\x82",
      "Contractions: it's, we're, they've, I'm, you'll, he'd, don't.",
      "Control \x01\x02\x7f bytes and trailing spaces   ",
      "the the the the then them there these",
      "",
      "     ",
  };
}

TEST(PreTokenizeTest, SplitsLikeTheGpt2Pattern) {
  EXPECT_THAT(Split("Hello world's  end\n"),
              ElementsAre("Hello", " world", "'s", " ", " end", "\n"));
  EXPECT_THAT(Split("x=3.14!!"), ElementsAre("x", "=", "3", ".", "14", "!!"));
  // Invalid UTF-8 is repaired to U+FFFD first.
  EXPECT_THAT(Split(std::string("a\xff") + "b"),
              ElementsAre("a", "\xef\xbf\xbd", "b"));
  EXPECT_THAT(Split(""), ElementsAre());
}

TEST(BpeTrainerTest, ToyCorpusMergesByHandIncludingTies) {
  // One word, "aaabdaaabac". Ids: 2 specials, then byte b at 2 + b
  // ('a' = 99, 'b' = 100, 'c' = 101, 'd' = 102).
  //   pairs: aa 4, ab 2, bd 1, da 1, ba 1, ac 1   -> "a a" (258)
  //   word: aa a b d aa a b a c
  //   pairs: (aa,a) 2, (a,b) 2, ...                -> tie, lower left id 99:
  //                                                  "a b" (259)
  //   word: aa ab d aa ab a c: (aa,ab) 2          -> "aa ab" (260)
  //   word: aaab d aaab a c; every pair once, so min_frequency 2 stops here.
  const std::vector<std::string> docs = {"aaabdaaabac"};
  BpeTrainerOptions options;
  const std::string json = Train(docs, options);
  EXPECT_THAT(Merges(json), ElementsAre("a a", "a b", "aa ab"));
  const Json vocab = Json::parse(json).at("model").at("vocab");
  EXPECT_EQ(vocab.at("aa"), 258);
  EXPECT_EQ(vocab.at("ab"), 259);
  EXPECT_EQ(vocab.at("aaab"), 260);
  ExpectContiguousVocabulary(json, 261);

  // With min_frequency 1 the ties go on: (aaab,d) = (260,102),
  // (d,aaab) = (102,260), (aaab,a) = (260,99), (a,c) = (99,101), all once:
  // "a c" (lowest left, 99), then among (260,102), (102,260), (260,261)
  // "d aaab"; vocab_size 263 stops there.
  options.min_frequency = 1;
  options.vocab_size = 263;
  const std::string more = Train(docs, options);
  EXPECT_THAT(Merges(more),
              ElementsAre("a a", "a b", "aa ab", "a c", "d aaab"));
  ExpectContiguousVocabulary(more, 263);

  std::unique_ptr<Tokenizer> t = Load(more);
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Pieces(*t, t->Encode("aaabdaaabac")),
              ElementsAre("aaab", "daaab", "ac"));
}

TEST(BpeTrainerTest, TiesBetweenBytesGoByByteValueAndSpacesAreG) {
  // Words "ba" and " ab" (GPT-2 keeps the space with the word), each pair
  // once: (Ġ,a) = (34,99), (a,b) = (99,100), (b,a) = (100,99).
  BpeTrainerOptions options;
  options.min_frequency = 1;
  const std::string json = Train({"ba ab"}, options);
  // "Ġ a" (left 34) first; then (Ġa,b) = (258,100) and (b,a): "b a" (100).
  EXPECT_THAT(Merges(json), ElementsAre("\u0120 a", "b a", "\u0120a b"));
}

using ::garden::testing::ByteLevel;

// The textbook algorithm, recounting every pair before each merge, with the
// same ids and tie rule: the merges TrainByteLevelBpe must reproduce.
std::vector<std::string> NaiveMerges(const std::vector<std::string>& docs,
                                     int vocab_size, int min_frequency) {
  std::map<std::string, int64_t> word_counts;
  for (const std::string& doc : docs) {
    for (const std::string& w : Split(doc)) ++word_counts[w];
  }
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [w, count] : word_counts) {
    std::vector<int32_t> ids;
    for (unsigned char b : w) ids.push_back(2 + b);
    words.push_back({ids, count});
  }
  std::vector<std::string> bytes(2);  // the two specials
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, char(b)));
  std::vector<std::string> merges;
  while (static_cast<int>(bytes.size()) < vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> counts;
    for (const auto& [ids, count] : words) {
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        counts[{ids[i], ids[i + 1]}] += count;
      }
    }
    // std::map iterates by (left, right): the first maximum wins ties.
    std::pair<int32_t, int32_t> best;
    int64_t best_count = 0;
    for (const auto& [pair, count] : counts) {
      if (count > best_count) best = pair, best_count = count;
    }
    if (best_count < min_frequency || best_count == 0) break;
    const std::string merged = bytes[best.first] + bytes[best.second];
    int32_t id = static_cast<int32_t>(
        std::find(bytes.begin(), bytes.end(), merged) - bytes.begin());
    if (id == static_cast<int32_t>(bytes.size())) bytes.push_back(merged);
    merges.push_back(ByteLevel(bytes[best.first]) + " " +
                     ByteLevel(bytes[best.second]));
    for (auto& [ids, count] : words) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + 1 < ids.size() && ids[i] == best.first &&
            ids[i + 1] == best.second) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(ids[i]);
        }
      }
      ids = std::move(out);
    }
  }
  return merges;
}

TEST(BpeTrainerTest, AgreesWithTheTextbookAlgorithm) {
  // Small alphabets make long repeats, overlapping pairs ("a a a") and
  // many ties.
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    const std::string alphabet =
        std::vector<std::string>{"ab ", "abc a\n", "aaaaaaa "}[trial % 3];
    std::vector<std::string> docs;
    for (int d = 0; d < 20; ++d) {
      std::string doc;
      const size_t n = rng() % 40;
      for (size_t i = 0; i < n; ++i) doc += alphabet[rng() % alphabet.size()];
      docs.push_back(doc);
    }
    const int min_frequency = 1 + trial % 4;
    BpeTrainerOptions options;
    options.vocab_size = 258 + 60;
    options.min_frequency = min_frequency;
    EXPECT_EQ(Merges(Train(docs, options)),
              NaiveMerges(docs, options.vocab_size, min_frequency))
        << "trial " << trial;
  }
}

TEST(BpeTrainerTest, RoundTripsASmallCorpusAndUnseenText) {
  const std::vector<std::string> docs = SmallCorpus();
  BpeTrainerOptions options;
  options.vocab_size = 400;
  options.min_frequency = 1;
  const std::string json = Train(docs, options);
  const size_t n = Json::parse(json).at("model").at("vocab").size();
  EXPECT_GT(n, 300u);
  ExpectContiguousVocabulary(json, n);
  std::unique_ptr<Tokenizer> t = Load(json);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(static_cast<size_t>(t->vocab_size()), n);
  for (const std::string& doc : docs) {
    EXPECT_EQ(t->Decode(t->Encode(doc)), doc);
  }
  // Frequent words became single tokens.
  EXPECT_THAT(Pieces(*t, t->Encode("The cat")),
              ElementsAre("The", "\u0120cat"));
  // Text never seen, in any script, round-trips byte by byte.
  for (const std::string& text :
       {std::string("Zebras quizzically judge vexing fjords."),
        std::string(
            "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c"),
        std::string("tab\there\r\nand \x1b[0m escape"),
        std::string("\xf0\x9f\xa6\x80 \xf0\x9f\x8c\x8d")}) {
    EXPECT_EQ(t->Decode(t->Encode(text)), text);
  }
}

TEST(BpeTrainerTest, SpecialTokensEncodeToTheirIds) {
  const std::vector<std::string> docs = {
      "one<|endoftext|>two<|padding|>three <|endoftext|> one two three",
      "<|endoftext|><|endoftext|>",
  };
  BpeTrainerOptions options;
  options.min_frequency = 1;
  options.vocab_size = 300;
  const std::string json = Train(docs, options);
  // No merge reaches into a special token: "<|" never follows "one".
  for (const std::string& merge : Merges(json)) {
    EXPECT_THAT(merge, ::testing::Not(HasSubstr("endoftext"))) << merge;
  }
  std::unique_ptr<Tokenizer> t = Load(json);
  ASSERT_NE(t, nullptr);
  const std::vector<int32_t> ids = t->Encode("x<|endoftext|>y<|padding|>");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(ids[3], 1);
  EXPECT_TRUE(t->IsSpecial(0));
  EXPECT_TRUE(t->IsSpecial(1));
  EXPECT_FALSE(t->IsSpecial(ids[0]));
  for (const std::string& doc : docs) {
    EXPECT_EQ(t->Decode(t->Encode(doc)), doc);
  }
  EXPECT_EQ(t->Decode(t->Encode(docs[0]), /*skip_special_tokens=*/true),
            "onetwothree  one two three");
}

TEST(BpeTrainerTest, AMergeSpellingASpecialTokenIsNeverMade) {
  // "ab" is both special and the most frequent pair.
  BpeTrainerOptions options;
  options.special_tokens = {"<|endoftext|>", "ab"};
  options.min_frequency = 1;
  const std::string json = Train({"xabx xabx xabx"}, options);
  for (const std::string& merge : Merges(json)) EXPECT_NE(merge, "a b");
  std::unique_ptr<Tokenizer> t = Load(json);
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->Encode("ab"), ElementsAre(1));
  EXPECT_EQ(t->Decode(t->Encode("xabx xabx")), "xabx xabx");
}

TEST(BpeTrainerTest, Deterministic) {
  std::vector<std::string> docs = SmallCorpus();
  for (int i = 0; i < 20; ++i) docs.push_back("repeat " + std::to_string(i));
  BpeTrainerOptions options;
  options.vocab_size = 350;
  options.min_frequency = 1;
  const std::string a = Train(docs, options);
  EXPECT_EQ(Train(docs, options), a);
  // Only word counts matter, so the order of the documents does not.
  std::mt19937_64 rng(3);
  std::shuffle(docs.begin(), docs.end(), rng);
  EXPECT_EQ(Train(docs, options), a);
}

TEST(BpeTrainerTest, InvalidArguments) {
  BpeTrainerOptions options;
  options.vocab_size = 257;
  absl::StatusOr<std::string> small = TrainByteLevelBpe({"text"}, options);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.status().message(), HasSubstr("257"));
  EXPECT_THAT(small.status().message(), HasSubstr("258"));
  // Exactly the bytes and the specials: no merges, still valid.
  options.vocab_size = 258;
  const std::string bytes_only = Train({"text text"}, options);
  EXPECT_THAT(Merges(bytes_only), ElementsAre());
  ExpectContiguousVocabulary(bytes_only, 258);

  EXPECT_EQ(TrainByteLevelBpe({}, BpeTrainerOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::vector<std::string>& specials :
       std::vector<std::vector<std::string>>{
           {"<|endoftext|>", "<|endoftext|>"}, {""}, {"a"}, {"\xff"}}) {
    options.vocab_size = 4096;
    options.special_tokens = specials;
    EXPECT_EQ(TrainByteLevelBpe({"text"}, options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << specials[0];
  }
}

TEST(BpeTrainerTest, RealFortunesAt4096RoundTripsEveryDocument) {
  if (!std::filesystem::is_directory(kRealFortunes)) {
    GTEST_SKIP() << kRealFortunes
                 << " is absent (install the Debian package fortunes)";
  }
  absl::StatusOr<Corpus> corpus = LoadFortunes({});
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  const auto start = std::chrono::steady_clock::now();
  const std::string json = Train(corpus->train, BpeTrainerOptions());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ExpectContiguousVocabulary(json, 4096);
  std::unique_ptr<Tokenizer> t = Load(json);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 4096);
  size_t bytes = 0, tokens = 0, failures = 0;
  for (const auto* docs : {&corpus->train, &corpus->heldout}) {
    for (const std::string& doc : *docs) {
      const std::vector<int32_t> ids = t->Encode(doc);
      failures += t->Decode(ids) != doc;
      bytes += doc.size();
      tokens += ids.size();
    }
  }
  EXPECT_EQ(failures, 0u);
  // About 3 bytes a token (fortunes hold much indentation and ASCII art).
  EXPECT_GT(static_cast<double>(bytes) / tokens, 2.8);
  std::cout << "BPE on " << corpus->train.size()
            << " training documents: " << seconds << " s for 4096 ids; "
            << bytes << " bytes -> " << tokens << " tokens ("
            << static_cast<double>(bytes) / tokens << " bytes/token)\n";
}

}  // namespace
}  // namespace garden
