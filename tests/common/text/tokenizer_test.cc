#include "common/text/tokenizer.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/text/added_tokens.h"
#include "common/text/normalizer.h"
#include "common/text/pre_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/byte_alphabet.h"

namespace garden {
namespace {

using Json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ../shared beside the repository, or $GARDEN_SHARED: the real GPT-NeoX-20B
// tokenizer.json and cases encoded by the Hugging Face library. Never copied
// into the repository.
std::string SharedDir() {
  if (const char* env = std::getenv("GARDEN_SHARED"); env && *env) return env;
  return std::string(GARDEN_SOURCE_DIR) + "/../shared";
}
std::string PythiaPath() { return SharedDir() + "/pythia/tokenizer.json"; }
std::string CasesPath() {
  return SharedDir() + "/golden/tokenizer-cases.jsonl";
}

// Loaded once: parsing 50k merges takes a while.
const Tokenizer* Pythia() {
  static const Tokenizer* tokenizer = []() -> const Tokenizer* {
    if (!std::filesystem::exists(PythiaPath())) return nullptr;
    auto t = Tokenizer::Load(PythiaPath());
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return nullptr;
    }
    return t->release();
  }();
  return tokenizer;
}

#define REQUIRE_PYTHIA()                                                   \
  const Tokenizer* tok = Pythia();                                         \
  if (tok == nullptr) {                                                    \
    GTEST_SKIP() << PythiaPath()                                           \
                 << " is absent (set GARDEN_SHARED to the folder holding " \
                    "pythia/tokenizer.json)";                              \
  }

struct Case {
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;
};

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  std::ifstream in(CasesPath());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line);
    cases.push_back({j["text"].get<std::string>(),
                     j["ids"].get<std::vector<int32_t>>(),
                     j["decoded"].get<std::string>()});
  }
  return cases;
}

std::string Escape(std::string_view s) {
  return Json(std::string(s))
      .dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST(TokenizerTest, ReproducesEveryGoldenCase) {
  REQUIRE_PYTHIA();
  if (!std::filesystem::exists(CasesPath())) {
    GTEST_SKIP() << CasesPath() << " is absent";
  }
  const std::vector<Case> cases = LoadCases();
  ASSERT_EQ(cases.size(), 300u);
  int failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::vector<int32_t> ids = tok->Encode(c.text);
    EXPECT_EQ(ids, c.ids) << "case " << i << " (line " << i + 1 << "): text "
                          << Escape(c.text);
    EXPECT_EQ(tok->Decode(c.ids), c.decoded)
        << "case " << i << " (line " << i + 1 << "): text " << Escape(c.text);
    std::vector<int32_t> span_ids;
    for (const TokenSpan& s : tok->EncodeWithOffsets(c.text)) {
      span_ids.push_back(s.id);
      EXPECT_LE(s.begin, s.end);
      EXPECT_LE(s.end, c.text.size());
    }
    EXPECT_EQ(span_ids, ids) << "case " << i << ": EncodeWithOffsets differs";
    failed += ids != c.ids || tok->Decode(c.ids) != c.decoded;
  }
  EXPECT_EQ(failed, 0);
}

TEST(TokenizerTest, Basics) {
  REQUIRE_PYTHIA();
  EXPECT_EQ(tok->vocab_size(), 50281);
  EXPECT_EQ(tok->IdToPiece(0), "<|endoftext|>");
  EXPECT_EQ(tok->IdToPiece(1533), "Ġworld");
  EXPECT_TRUE(tok->IsSpecial(0));
  EXPECT_FALSE(tok->IsSpecial(50276));  // "  "
  EXPECT_FALSE(tok->IsSpecial(1533));
  EXPECT_THAT(tok->Encode("Hello world!"), ElementsAre(12092, 1533, 2));
  EXPECT_EQ(tok->Decode({12092, 0, 1533}), "Hello<|endoftext|> world");
  EXPECT_EQ(tok->Decode({12092, 0, 1533}, /*skip_special_tokens=*/true),
            "Hello world");
  EXPECT_TRUE(tok->Encode("").empty());
  EXPECT_EQ(tok->Decode({}), "");
}

TEST(TokenizerTest, UnknownIdsDecodeToPlaceholders) {
  REQUIRE_PYTHIA();
  // Pythia's embedding has 50304 rows; ids past the tokenizer's are padding.
  for (int32_t id = tok->vocab_size(); id < 50304; ++id) {
    const std::string expected = "<|unk:" + std::to_string(id) + "|>";
    EXPECT_EQ(tok->Decode({id}), expected);
    EXPECT_EQ(tok->IdToPiece(id), expected);
  }
  EXPECT_EQ(tok->Decode({-1}), "<|unk:-1|>");
  EXPECT_EQ(tok->Decode({12092, 50300, 1533}), "Hello<|unk:50300|> world");
  // A character cut by a placeholder: the orphaned bytes become U+FFFD.
  const std::vector<int32_t> smile = tok->Encode("😀");
  ASSERT_GE(smile.size(), 2u);
  EXPECT_EQ(tok->Decode({smile[0], 50303}), "\uFFFD<|unk:50303|>");
}

// A few hundred strings from pieces that stress each stage.
std::vector<std::string> VariedStrings() {
  const std::vector<std::string> atoms = {
      "a",
      "Hello",
      " world",
      "don't",
      "'s",
      "'LL",
      "123",
      "4.5",
      " ",
      "  ",
      "     ",
      "\t",
      "\n",
      "\r\n",
      "\u00a0",
      "\u2003",
      "\u3000",
      "!?",
      "...",
      "é",
      "e\u0301",
      "A\u030a",
      "\u212b",
      "n\u0303o",
      "\u1100\u1161\u11a8",
      "한국어",
      "日本語",
      "中文",
      "Привет",
      "مرحبا",
      "😀",
      "👍🏽",
      "🇫🇷",
      "✨",
      "\u0915\u094d\u0937",
      "ﬁ",
      "①",
      "x\u0301\u0302\u0327",
      "\u0301",
      "<|endoftext|>",
      " <|padding|> ",
      "assistant",
      "RWKV",
      "<|im_start|>",
      "$",
      "__init__",
      "\u200b",
      "\u00ad",
      "\x7f",
      "\x01",
      "Ω",
      "ǅ",
      "ß",
  };
  std::mt19937 rng(42);
  std::vector<std::string> out;
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
    out.push_back(s);
  }
  return out;
}

TEST(TokenizerTest, DecodeInvertsEncodeUpToNfc) {
  REQUIRE_PYTHIA();
  EXPECT_EQ(tok->Normalize("e\u0301"), "é");
  EXPECT_EQ(tok->Normalize("\u212b"), "\u00c5");  // Angstrom sign
  EXPECT_EQ(tok->Normalize("ﬁ"), "ﬁ");            // NFC, not NFKC
  EXPECT_EQ(tok->Normalize("x\u0327\u0301"), "x\u0327\u0301");
  EXPECT_EQ(tok->Normalize("x\u0301\u0327"), "x\u0327\u0301");  // reordered
  for (const std::string& s : VariedStrings()) {
    // A special token is cut out before normalization, so a combining mark
    // right after one is not composed with it: compare around them.
    if (s.find(">\u0301") != s.npos || s.find("assistant\u0301") != s.npos ||
        s.find("RWKV\u0301") != s.npos) {
      continue;
    }
    EXPECT_EQ(tok->Decode(tok->Encode(s)), tok->Normalize(s))
        << "text " << Escape(s);
  }
}

TEST(TokenizerTest, OffsetsPointIntoTheInput) {
  REQUIRE_PYTHIA();
  const std::string text = "Hello  world<|endoftext|>café e\u0301 😀!";
  const std::vector<TokenSpan> spans = tok->EncodeWithOffsets(text);
  ASSERT_FALSE(spans.empty());
  EXPECT_EQ(spans.front().begin, 0u);
  EXPECT_EQ(spans.back().end, text.size());
  size_t covered = 0;
  for (const TokenSpan& s : spans) {
    EXPECT_LE(s.begin, covered) << "gap before token " << s.id;
    covered = std::max(covered, s.end);
  }
  EXPECT_EQ(covered, text.size());
  // ASCII text: the pieces are exactly the tokens' bytes.
  const std::string ascii = "The quick  brown fox<|endoftext|>jumps.";
  std::string rebuilt;
  for (const TokenSpan& s : tok->EncodeWithOffsets(ascii)) {
    rebuilt += ascii.substr(s.begin, s.end - s.begin);
    EXPECT_EQ(ascii.substr(s.begin, s.end - s.begin),
              tok->Decode(std::vector<int32_t>{s.id}));
  }
  EXPECT_EQ(rebuilt, ascii);
  // The special token is where it was.
  bool found = false;
  for (const TokenSpan& s : spans) {
    if (s.id == 0) {
      EXPECT_EQ(text.substr(s.begin, s.end - s.begin), "<|endoftext|>");
      found = true;
    }
  }
  EXPECT_TRUE(found);
  // The decomposed é maps back to its two code points.
  const std::string decomposed = "e\u0301";
  const auto accent = tok->EncodeWithOffsets(decomposed);
  ASSERT_FALSE(accent.empty());
  EXPECT_EQ(accent.front().begin, 0u);
  EXPECT_EQ(accent.back().end, decomposed.size());
}

TEST(TokenizerTest, InvalidUtf8BecomesReplacementCharacters) {
  REQUIRE_PYTHIA();
  struct Bad {
    std::string input, repaired;
  };
  const std::vector<Bad> bad = {
      {"\xff", "\uFFFD"},
      {"abc\xC3", "abc\uFFFD"},
      {"\xC3(", "\uFFFD("},
      {"\xE2\x82", "\uFFFD"},                  // truncated, one maximal subpart
      {"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},  // a surrogate: three
      {"\xF0\x9F\x98 ok", "\uFFFD ok"},
      {"\xC0\xAF", "\uFFFD\uFFFD"},  // overlong
      {"\xF5\x80\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
      {"<|endoftext|>\x80<|padding|>", "<|endoftext|>\uFFFD<|padding|>"},
      {"e\xCC\x81\xCC", "é\uFFFD"},
  };
  for (const Bad& b : bad) {
    EXPECT_EQ(tok->Encode(b.input), tok->Encode(b.repaired))
        << Escape(b.repaired);
    EXPECT_EQ(tok->Normalize(b.input), tok->Normalize(b.repaired));
    EXPECT_EQ(tok->Decode(tok->Encode(b.input)), tok->Normalize(b.repaired));
    const auto spans = tok->EncodeWithOffsets(b.input);
    ASSERT_FALSE(spans.empty());
    EXPECT_EQ(spans.back().end, b.input.size()) << Escape(b.repaired);
    for (const TokenSpan& s : spans) EXPECT_LE(s.end, b.input.size());
  }
  // Random bytes: no crash, valid output, offsets in range.
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    const std::string decoded = tok->Decode(tok->Encode(s));
    EXPECT_EQ(decoded, tok->Normalize(s));
    for (const TokenSpan& t : tok->EncodeWithOffsets(s)) {
      EXPECT_LE(t.begin, t.end);
      EXPECT_LE(t.end, s.size());
    }
  }
  // Decoding bytes that do not form UTF-8.
  EXPECT_EQ(tok->Decode({tok->Encode("😀")[0]}), "\uFFFD");
}

TEST(TokenizerTest, LongAndPathologicalInput) {
  REQUIRE_PYTHIA();
  const std::string letters(100000, 'a');
  const std::vector<int32_t> ids = tok->Encode(letters);
  EXPECT_EQ(tok->Decode(ids), letters);
  const std::string spaces = std::string(100000, ' ') + "x";
  EXPECT_EQ(tok->Decode(tok->Encode(spaces)), spaces);
  std::string mixed;
  for (int i = 0; i < 20000; ++i) mixed += "\u00e9\u0301 \t";
  EXPECT_EQ(tok->Decode(tok->Encode(mixed)), tok->Normalize(mixed));
}

TEST(TokenizerTest, ShortAndHeapMergeLoopsAgree) {
  REQUIRE_PYTHIA();
  std::mt19937 rng(3);
  const std::string alphabet = "etaoin shrdlu ETAOIN 0123 '.,-é";
  for (int i = 0; i < 500; ++i) {
    std::string word(1 + rng() % 64, ' ');
    for (char& c : word) c = alphabet[rng() % alphabet.size()];
    EXPECT_EQ(tok->BpeForTesting(word, /*heap=*/false),
              tok->BpeForTesting(word, /*heap=*/true))
        << Escape(word);
  }
}

TEST(TokenizerTest, ConcurrentEncodingGivesTheSameIds) {
  if (!std::filesystem::exists(PythiaPath())) {
    GTEST_SKIP() << PythiaPath() << " is absent";
  }
  // A fresh tokenizer, so that the threads fill its cache together.
  auto fresh = Tokenizer::Load(PythiaPath());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  std::vector<std::string> texts = VariedStrings();
  if (std::filesystem::exists(CasesPath())) {
    for (const Case& c : LoadCases()) texts.push_back(c.text);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& t : texts) expected.push_back(Pythia()->Encode(t));

  constexpr int kThreads = 8;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t j = (i * 7 + k * 13 + round) % texts.size();
          mismatches[k] += (*fresh)->Encode(texts[j]) != expected[j];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < kThreads; ++k) EXPECT_EQ(mismatches[k], 0) << k;
}

// ---------------------------------------------------------------------------
// Small hand-made tokenizers: loading errors and added-token flags.

class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    char name[] = "/tmp/garden_tokenizer_test_XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    path_ = name;
    EXPECT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

using ::garden::testing::ByteSymbols;

// A valid tiny tokenizer: ids 0..255 the bytes, then "ab", "Ġa" and "<s>"
// (added, special, with the given flags).
Json TinyJson() {
  Json vocab = Json::object();
  const auto symbols = ByteSymbols();
  for (int b = 0; b < 256; ++b) vocab[symbols[b]] = b;
  vocab["ab"] = 256;
  vocab["Ġa"] = 257;
  return Json{
      {"version", "1.0"},
      {"added_tokens", Json::array({{{"id", 258},
                                     {"content", "<s>"},
                                     {"special", true},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", false}}})},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", Json::array({"a b", Json::array({"Ġ", "a"})})}}},
  };
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadJson(const Json& j) {
  TempFile file(j.dump());
  return Tokenizer::Load(file.path());
}

TEST(TokenizerFileTest, TinyTokenizerWorks) {
  auto t = LoadJson(TinyJson());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 259);
  EXPECT_THAT((*t)->Encode("ab a<s>b"), ElementsAre(256, 257, 258, 'b'));
  EXPECT_EQ((*t)->Decode({256, 257, 258, 'b'}), "ab a<s>b");
  EXPECT_EQ((*t)->Decode({259}), "<|unk:259|>");
}

TEST(TokenizerFileTest, AddPrefixSpace) {
  Json j = TinyJson();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  auto t = LoadJson(j);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT((*t)->Encode("a"), ElementsAre(257));
  const auto spans = (*t)->EncodeWithOffsets("a");
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0], (TokenSpan{257, 0, 1}));
}

TEST(TokenizerFileTest, AddedTokenFlags) {
  auto with = [](const char* flag) {
    Json j = TinyJson();
    j["added_tokens"][0][flag] = true;
    auto t = LoadJson(j);
    EXPECT_TRUE(t.ok()) << t.status();
    return std::move(t).value();
  };
  const int32_t kSp = ' ', kS = 258;
  // lstrip swallows the spaces before, rstrip those after.
  EXPECT_THAT(with("lstrip")->Encode("b  <s> b"),
              ElementsAre('b', kS, kSp, 'b'));
  EXPECT_THAT(with("rstrip")->Encode("b  <s> b"),
              ElementsAre('b', kSp, kSp, kS, 'b'));
  // single_word: only between non-word characters.
  auto single = with("single_word");
  EXPECT_THAT(single->Encode("x<s>"), ElementsAre('x', '<', 's', '>'));
  EXPECT_THAT(single->Encode("<s>x"), ElementsAre('<', 's', '>', 'x'));
  EXPECT_THAT(single->Encode(".<s> "), ElementsAre('.', kS, kSp));
  // normalized tokens match the NFC text.
  Json j = TinyJson();
  j["added_tokens"].push_back({{"id", 259},
                               {"content", "e\u0301"},
                               {"special", false},
                               {"normalized", true}});
  auto t = LoadJson(j);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT((*t)->Encode("\u00e9"), ElementsAre(259));
  EXPECT_THAT((*t)->Encode("e\u0301"), ElementsAre(259));
}

TEST(TokenizerFileTest, MissingFileIsNotFound) {
  auto t = Tokenizer::Load("/nonexistent/tokenizer.json");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()),
              StartsWith("/nonexistent/tokenizer.json: "));
}

TEST(TokenizerFileTest, MalformedFilesAreDataLoss) {
  struct Bad {
    std::string what;
    std::string contents;
    std::string message;
  };
  std::vector<Bad> bad;
  bad.push_back({"empty", "", "not valid JSON"});
  bad.push_back(
      {"truncated", TinyJson().dump().substr(0, 500), "not valid JSON"});
  bad.push_back({"array", "[]", "top level"});
  bad.push_back({"invalid UTF-8", "{\"a\": \"\xff\"}", "not valid JSON"});
  auto edit = [&](std::string what, std::string message, auto f) {
    Json j = TinyJson();
    f(j);
    bad.push_back({what, j.dump(), message});
  };
  edit("no model", "model", [](Json& j) { j.erase("model"); });
  edit("WordPiece", "model.type",
       [](Json& j) { j["model"]["type"] = "WordPiece"; });
  edit("dropout", "dropout", [](Json& j) { j["model"]["dropout"] = 0.1; });
  edit("vocab not object", "model.vocab",
       [](Json& j) { j["model"]["vocab"] = Json::array(); });
  edit("negative id", "must be an id",
       [](Json& j) { j["model"]["vocab"]["ab"] = -3; });
  edit("string id", "must be an id",
       [](Json& j) { j["model"]["vocab"]["ab"] = "256"; });
  edit("duplicate id", "gives id 256",
       [](Json& j) { j["model"]["vocab"]["zz"] = 256; });
  edit("missing byte", "byte-level symbol", [](Json& j) {
    j["model"]["vocab"].erase("a");
    j["model"]["merges"] = Json::array();
  });
  edit("merge of unknown", "not in model.vocab",
       [](Json& j) { j["model"]["merges"].push_back("x yz"); });
  edit("merge result unknown", "⟦xy⟧ is not in model.vocab",
       [](Json& j) { j["model"]["merges"].push_back("x y"); });
  edit("merge without space", "two tokens",
       [](Json& j) { j["model"]["merges"].push_back("xy"); });
  edit("merge of number", "pair of strings",
       [](Json& j) { j["model"]["merges"].push_back(5); });
  edit("added not array", "added_tokens",
       [](Json& j) { j["added_tokens"] = 3; });
  edit("added without content", "content",
       [](Json& j) { j["added_tokens"][0].erase("content"); });
  edit("flag not bool", "lstrip must be a boolean",
       [](Json& j) { j["added_tokens"][0]["lstrip"] = "yes"; });
  edit("NFKC", "NFKC", [](Json& j) { j["normalizer"]["type"] = "NFKC"; });
  edit("Whitespace pre-tokenizer", "pre_tokenizer", [](Json& j) {
    j["pre_tokenizer"] = {{"type", "Whitespace"}};
  });
  edit("no decoder", "decoder", [](Json& j) { j.erase("decoder"); });
  edit("template", "TemplateProcessing", [](Json& j) {
    j["post_processor"] = {{"type", "TemplateProcessing"}};
  });
  for (const Bad& b : bad) {
    TempFile file(b.contents);
    auto t = Tokenizer::Load(file.path());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss)
        << b.what << ": " << t.status();
    EXPECT_THAT(std::string(t.status().message()),
                StartsWith(file.path() + ": "))
        << b.what;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(b.message))
        << b.what;
  }
  // A directory.
  auto dir = Tokenizer::Load("/tmp");
  EXPECT_FALSE(dir.ok());
}

// ------------------------------------------------------------------ stages ---
// The pipeline's stages on their own (common/text/*.h), with values worked
// out by hand.

TEST(NormalizerTest, NfcRegionsAreTheChangedGraphemeClusters) {
  using tokenizer_internal::Region;
  tokenizer_internal::NfcScratch scratch;
  // α + combining acute (4 bytes) composes to ά (2 bytes); β stays.
  const std::string text = "\xCE\xB1\xCC\x81\xCE\xB2";
  std::string out;
  std::vector<Region> regions;
  ASSERT_TRUE(tokenizer_internal::NormalizeNfc(text, scratch, &out, &regions));
  EXPECT_EQ(out, "\xCE\xAC\xCE\xB2");
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_THAT(regions[0], FieldsAre(0u, 2u, 0u, 4u));
  // Inside the changed stretch a begin maps to its start, an end to its end;
  // after it positions shift by the two bytes NFC saved.
  EXPECT_EQ(tokenizer_internal::MapBack(regions, 1, false), 0u);
  EXPECT_EQ(tokenizer_internal::MapBack(regions, 1, true), 4u);
  EXPECT_EQ(tokenizer_internal::MapBack(regions, 2, false), 4u);
  EXPECT_EQ(tokenizer_internal::MapBack(regions, 4, true), 6u);

  // "a" then e + combining acute: the ASCII "e" belongs to the stretch.
  out.clear();
  regions.clear();
  ASSERT_TRUE(
      tokenizer_internal::NormalizeNfc("ae\xCC\x81!", scratch, &out, &regions));
  EXPECT_EQ(out, "a\xC3\xA9!");
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_THAT(regions[0], FieldsAre(1u, 3u, 1u, 4u));
  // Already NFC: nothing written.
  out = "untouched";
  EXPECT_FALSE(
      tokenizer_internal::NormalizeNfc("caf\xC3\xA9", scratch, &out, nullptr));
  EXPECT_EQ(out, "untouched");
}

TEST(AddedTokenSplitterTest, LeftmostLongestFirstAddedWinsAndLstrip) {
  tokenizer_internal::AddedTokenSplitter splitter;
  auto token = [](int32_t id, std::string content, bool lstrip = false) {
    return tokenizer_internal::AddedToken{id,    content, false, lstrip,
                                          false, false,   true};
  };
  splitter.Add(token(7, "<a>"), "<a>");
  splitter.Add(token(8, "<a>"), "<a>");  // same content: 7 wins
  splitter.Add(token(9, "<ab>"), "<ab>");
  splitter.Add(token(10, "[m]", /*lstrip=*/true), "[m]");
  std::vector<std::string> pieces;
  splitter.Split(
      "x<ab>y<a>z  [m]",
      [&](size_t b, size_t e) {
        pieces.push_back(absl::StrCat("text ", b, "-", e));
      },
      [&](int32_t id, size_t b, size_t e) {
        pieces.push_back(absl::StrCat("token ", id, " ", b, "-", e));
      });
  EXPECT_THAT(pieces,
              ElementsAre("text 0-1", "token 9 1-5", "text 5-6", "token 7 6-9",
                          "text 9-10", "token 10 10-15"));
}

TEST(SplitPatternTest, OnePatternSplitsAsGpt2) {
  absl::StatusOr<const tokenizer_internal::SplitPattern*> pattern =
      tokenizer_internal::SplitPattern::Get();
  ASSERT_TRUE(pattern.ok()) << pattern.status();
  EXPECT_EQ(*pattern, *tokenizer_internal::SplitPattern::Get());
  const std::string text = "Hello world's 42  !?\n";
  tokenizer_internal::SplitPattern::MatchData match =
      (*pattern)->NewMatchData();
  std::vector<std::string> splits;
  (*pattern)->ForEach(match.get(), text, [&](size_t b, size_t e) {
    splits.push_back(text.substr(b, e - b));
  });
  EXPECT_THAT(splits,
              ElementsAre("Hello", " world", "'s", " 42", " ", " !?", "\n"));
  EXPECT_EQ(tokenizer_internal::ByteLevelString(" the\n"),
            "\xC4\xA0the\xC4\x8A");
}

}  // namespace
}  // namespace garden
