#include "common/text/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/utf8.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

using Json = nlohmann::json;

// Unicode White_Space, which is what Oniguruma's \s (and Rust's
// char::is_whitespace) mean. PCRE2's own \s under UCP also takes U+180E.
constexpr char kWhiteSpaceClass[] =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Words longer than this (in bytes) take the heap-based merge loop; the
// quadratic one is faster below it.
constexpr size_t kShortWord = 64;
// Words up to this length go through the cache; longer ones are rare and
// would only crowd it.
constexpr size_t kMaxCachedWord = 128;
constexpr int kCacheShards = 64;
constexpr size_t kCacheEntriesPerShard = 4096;

// ---------------------------------------------------------------------------
// UTF-8

void AppendUtf8(char32_t c, std::string* out) {
  unsigned char buf[4];
  const auto len = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
}

// Decodes the (valid) character starting at s[i].
char32_t DecodeAt(std::string_view s, size_t i, size_t* len) {
  utf8proc_int32_t c = 0;
  auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(&s[i]),
                            static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  if (n <= 0) {
    *len = 1;
    return 0xFFFD;
  }
  *len = static_cast<size_t>(n);
  return static_cast<char32_t>(c);
}

// Start of the (valid) character that ends at s[i - 1].
size_t PreviousCharStart(std::string_view s, size_t i) {
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

// A stretch of a transformed text that differs from where it came from.
// Outside the stretches the two texts agree byte for byte.
struct Region {
  size_t out_begin, out_end;  // in the transformed text
  size_t in_begin, in_end;    // in the source text
};

// Maps a position of the transformed text back to the source: a token
// beginning (or ending) inside a changed stretch gets its beginning (or end).
size_t MapBack(const std::vector<Region>& regions, size_t p, bool is_end) {
  auto it = std::upper_bound(
      regions.begin(), regions.end(), p, [is_end](size_t pos, const Region& r) {
        return is_end ? pos <= r.out_begin : pos < r.out_begin;
      });
  if (it == regions.begin()) return p;
  const Region& r = *std::prev(it);
  if (is_end ? p <= r.out_end : p < r.out_end) {
    return is_end ? r.in_end : r.in_begin;
  }
  return p - r.out_end + r.in_end;
}

// Replaces each maximal invalid subsequence with U+FFFD; records the
// replacements in `regions` when it is not null.
std::string RepairUtf8(std::string_view s, std::vector<Region>* regions) {
  std::vector<Utf8Repair> repairs;
  std::string out = ReplaceInvalidUtf8(s, kReplacementCharacter,
                                       regions != nullptr ? &repairs : nullptr);
  if (regions != nullptr) {
    for (const Utf8Repair& r : repairs) {
      regions->push_back({r.out_begin, r.out_end, r.in_begin, r.in_end});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// GPT-2's byte <-> character table: printable bytes stand for themselves, the
// others (controls, space, DEL, NBSP, soft hyphen) for U+0100 onwards.

struct ByteAlphabet {
  std::array<char32_t, 256> char_of{};
  absl::flat_hash_map<char32_t, uint8_t> byte_of;
  ByteAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char_of[b] = printable ? static_cast<char32_t>(b) : next++;
      byte_of[char_of[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* alphabet = new ByteAlphabet();
  return *alphabet;
}

// What the ByteLevel decoder makes of one token: its characters' bytes if
// all belong to the alphabet, else the token's own UTF-8 (so "  " stays "  ").
std::string PieceBytes(std::string_view piece) {
  const ByteAlphabet& alphabet = Alphabet();
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    size_t len;
    const char32_t c = DecodeAt(piece, i, &len);
    auto it = alphabet.byte_of.find(c);
    if (it == alphabet.byte_of.end()) return std::string(piece);
    out.push_back(static_cast<char>(it->second));
    i += len;
  }
  return out;
}

std::string ByteLevelString(std::string_view bytes) {
  const ByteAlphabet& alphabet = Alphabet();
  std::string out;
  for (unsigned char b : bytes) AppendUtf8(alphabet.char_of[b], &out);
  return out;
}

bool IsWordChar(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

std::string Placeholder(int32_t id) { return absl::StrCat("<|unk:", id, "|>"); }

constexpr utf8proc_option_t kNfc =
    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);

// NFC of a short valid UTF-8 string, appended to `out`; `buffer` is scratch.
void AppendNfc(std::string_view s, std::vector<utf8proc_int32_t>& buffer,
               std::string* out) {
  if (s.empty()) return;
  if (buffer.size() < s.size() + 8) buffer.resize(s.size() + 8);
  utf8proc_ssize_t n;
  while (true) {
    n = utf8proc_decompose(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                           static_cast<utf8proc_ssize_t>(s.size()),
                           buffer.data(),
                           static_cast<utf8proc_ssize_t>(buffer.size()), kNfc);
    if (n < 0) {  // cannot happen for valid UTF-8; keep the text as it is
      out->append(s);
      return;
    }
    if (static_cast<size_t>(n) <= buffer.size()) break;
    buffer.resize(static_cast<size_t>(n));
  }
  n = utf8proc_normalize_utf32(buffer.data(), n, kNfc);
  for (utf8proc_ssize_t i = 0; i < n; ++i) {
    AppendUtf8(static_cast<char32_t>(buffer[i]), out);
  }
}

}  // namespace

// ---------------------------------------------------------------------------

struct Tokenizer::AddedToken {
  int32_t id;
  std::string content;
  bool single_word, lstrip, rstrip, normalized, special;
};

// A byte trie of added tokens, matched leftmost-longest.
struct Tokenizer::Trie {
  struct Node {
    int32_t token = -1;  // index into added_
    std::vector<std::pair<unsigned char, int32_t>> next;
  };
  std::vector<Node> nodes{Node()};
  std::array<bool, 256> first{};

  void Add(std::string_view s, int32_t token) {
    if (s.empty()) return;
    first[static_cast<unsigned char>(s[0])] = true;
    int32_t at = 0;
    for (unsigned char c : s) {
      int32_t child = -1;
      for (auto& [byte, node] : nodes[at].next) {
        if (byte == c) child = node;
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes.size());
        nodes[at].next.push_back({c, child});
        nodes.emplace_back();
      }
      at = child;
    }
    // The first of two tokens with the same content wins, as in the library.
    if (nodes[at].token < 0) nodes[at].token = token;
  }

  bool empty() const { return nodes.size() == 1; }

  // The leftmost match at or after `from`, the longest among those starting
  // there: {begin, end, token}, token -1 if none.
  std::tuple<size_t, size_t, int32_t> Find(std::string_view s,
                                           size_t from) const {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = from; i < s.size(); ++i) {
      if (!first[p[i]]) continue;
      int32_t at = 0, best = -1;
      size_t best_end = 0;
      for (size_t j = i; j < s.size(); ++j) {
        int32_t child = -1;
        for (const auto& [byte, node] : nodes[at].next) {
          if (byte == p[j]) {
            child = node;
            break;
          }
        }
        if (child < 0) break;
        at = child;
        if (nodes[at].token >= 0) {
          best = nodes[at].token;
          best_end = j + 1;
        }
      }
      if (best >= 0) return {i, best_end, best};
    }
    return {s.size(), s.size(), -1};
  }
};

struct Tokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

struct Tokenizer::Cache {
  struct alignas(64) Shard {
    std::shared_mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> words;
  };
  std::array<Shard, kCacheShards> shards;
};

// Per-call working memory.
struct Tokenizer::Scratch {
  pcre2_match_data* match = nullptr;
  std::string prefixed;
  std::vector<utf8proc_int32_t> code_points;
  std::string nfc;
  ~Scratch() { pcre2_match_data_free(match); }
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

// ---------------------------------------------------------------------------
// The GPT-2 split pattern

namespace {

// The pattern, with \s spelled out as White_Space; null (and *error set) if
// PCRE2 rejects it, which it never should.
pcre2_code* CompileSplitPattern(std::string* error) {
  const std::string ws = kWhiteSpaceClass;
  const std::string pattern =
      absl::StrCat("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^", ws,
                   "\\p{L}\\p{N}]+|[", ws, "]+(?![^", ws, "])|[", ws, "]+");
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* compiled = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &code, &offset, nullptr);
  if (compiled == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    *error = reinterpret_cast<const char*>(message);
  }
  return compiled;
}

// Calls emit(begin, end) for each split of the valid UTF-8 `piece`, in order.
template <typename Emit>
void ForEachSplit(const pcre2_code* code, bool jit, pcre2_match_data* match,
                  std::string_view piece, Emit&& emit) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
  size_t at = 0;
  while (at < piece.size()) {
    int rc = -1;
    if (jit) {
      rc = pcre2_jit_match(code, subject, piece.size(), at, 0, match, nullptr);
    }
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // No JIT, or its stack ran out: the interpreter keeps its
      // backtracking state on the heap.
      rc = pcre2_match(code, subject, piece.size(), at, PCRE2_NO_UTF_CHECK,
                       match, nullptr);
    }
    if (rc < 0) {  // every character matches some branch; never happens
      emit(at, piece.size());
      break;
    }
    const size_t mb = ovector[0], me = ovector[1];
    if (mb > at) emit(at, mb);
    if (me <= mb) {  // cannot match empty; guard against looping anyway
      emit(mb, piece.size());
      break;
    }
    emit(mb, me);
    at = me;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading

namespace {

struct LoadError {
  std::string message;
};

[[noreturn]] void Fail(std::string message) {
  throw LoadError{std::move(message)};
}

std::string Quote(std::string_view s) {
  return absl::StrCat("\"", absl::Utf8SafeCEscape(ToAbsl(s)), "\"");
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

bool BoolMember(const Json& object, const char* key, bool fallback,
                std::string_view where) {
  const Json* v = Member(object, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) {
    Fail(absl::StrCat(ToAbsl(where), ".", key, " must be a boolean"));
  }
  return v->get<bool>();
}

std::string TypeOf(const Json& object, std::string_view where) {
  if (!object.is_object())
    Fail(absl::StrCat(ToAbsl(where), " must be an object"));
  const Json* type = Member(object, "type");
  if (type == nullptr || !type->is_string()) {
    Fail(absl::StrCat(ToAbsl(where), ".type must be a string"));
  }
  return type->get<std::string>();
}

int32_t IdOf(const Json& v, std::string_view where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
      v.get<int64_t>() >= std::numeric_limits<int32_t>::max()) {
    Fail(absl::StrCat(ToAbsl(where), " must be an id (an integer from 0 to ",
                      std::numeric_limits<int32_t>::max() - 1, ")"));
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return FromJson(*text, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    std::string_view json_text, std::string_view name) {
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  try {
    Json json;
    try {
      json = Json::parse(json_text.begin(), json_text.end());
    } catch (const Json::exception& e) {
      Fail(absl::StrCat("not valid JSON: ", e.what()));
    }
    if (!json.is_object()) Fail("the top level must be a JSON object");

    // Model.
    const Json* model = Member(json, "model");
    if (model == nullptr || !model->is_object()) Fail("no \"model\" object");
    if (const Json* type = Member(*model, "type");
        type != nullptr && *type != "BPE") {
      Fail(absl::StrCat("model.type ", type->dump(),
                        " is not supported (only \"BPE\")"));
    }
    if (const Json* d = Member(*model, "dropout");
        d != nullptr && !(d->is_number() && d->get<double>() == 0.0)) {
      Fail("model.dropout is not supported");
    }
    for (const char* key :
         {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const Json* v = Member(*model, key);
      if (v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
        Fail(absl::StrCat("model.", key, " is not supported"));
      }
    }
    if (BoolMember(*model, "byte_fallback", false, "model")) {
      Fail("model.byte_fallback is not supported");
    }
    t->ignore_merges_ = BoolMember(*model, "ignore_merges", false, "model");

    const Json* vocab = Member(*model, "vocab");
    if (vocab == nullptr || !vocab->is_object()) {
      Fail("model.vocab must be an object");
    }
    absl::flat_hash_map<std::string, int32_t> ids;
    ids.reserve(vocab->size());
    int32_t max_id = -1;
    for (const auto& [piece, value] : vocab->items()) {
      const int32_t id =
          IdOf(value, absl::StrCat("model.vocab[", Quote(piece), "]"));
      ids[piece] = id;
      max_id = std::max(max_id, id);
    }

    // Added tokens.
    if (const Json* added = Member(json, "added_tokens"); added != nullptr) {
      if (!added->is_array()) Fail("added_tokens must be an array");
      for (size_t i = 0; i < added->size(); ++i) {
        const Json& a = (*added)[i];
        const std::string where = absl::StrCat("added_tokens[", i, "]");
        if (!a.is_object()) Fail(absl::StrCat(where, " must be an object"));
        const Json* id = Member(a, "id");
        const Json* content = Member(a, "content");
        if (id == nullptr) Fail(absl::StrCat(where, " has no id"));
        if (content == nullptr || !content->is_string()) {
          Fail(absl::StrCat(where, ".content must be a string"));
        }
        AddedToken token;
        token.id = IdOf(*id, absl::StrCat(where, ".id"));
        token.content = content->get<std::string>();
        token.special = BoolMember(a, "special", false, where);
        token.single_word = BoolMember(a, "single_word", false, where);
        token.lstrip = BoolMember(a, "lstrip", false, where);
        token.rstrip = BoolMember(a, "rstrip", false, where);
        token.normalized = BoolMember(a, "normalized", !token.special, where);
        max_id = std::max(max_id, token.id);
        t->added_.push_back(std::move(token));
      }
    }

    // Id tables. An added token's content wins over the vocabulary's piece
    // for the same id, as in the library's id_to_token.
    if (max_id < 0) Fail("the vocabulary is empty");
    const size_t size = static_cast<size_t>(max_id) + 1;
    t->pieces_.assign(size, std::string());
    t->known_.assign(size, false);
    t->special_.assign(size, false);
    for (const auto& [piece, id] : ids) {
      if (t->known_[id]) {
        Fail(absl::StrCat("model.vocab gives id ", id, " to both ",
                          Quote(t->pieces_[id]), " and ", Quote(piece)));
      }
      t->pieces_[id] = piece;
      t->known_[id] = true;
    }
    for (const AddedToken& a : t->added_) {
      t->pieces_[a.id] = a.content;
      t->known_[a.id] = true;
      t->special_[a.id] = a.special;
    }
    t->bytes_.resize(size);
    for (size_t id = 0; id < size; ++id) {
      if (t->known_[id]) t->bytes_[id] = PieceBytes(t->pieces_[id]);
    }

    // Bytes C0, C1 and F5 to FF never occur in UTF-8, and Pythia's
    // vocabulary lacks them; every other byte needs its symbol.
    const ByteAlphabet& alphabet = Alphabet();
    for (int b = 0; b < 256; ++b) {
      std::string symbol;
      AppendUtf8(alphabet.char_of[b], &symbol);
      auto it = ids.find(symbol);
      const bool never_in_utf8 = b == 0xC0 || b == 0xC1 || b >= 0xF5;
      if (it == ids.end() && never_in_utf8) {
        t->byte_ids_[b] = -1;
        continue;
      }
      if (it == ids.end()) {
        Fail(absl::StrFormat(
            "model.vocab lacks the byte-level symbol %s for byte 0x%02X "
            "(not a byte-level BPE vocabulary?)",
            Quote(symbol), b));
      }
      t->byte_ids_[b] = it->second;
    }

    // Merges: "left right" strings, or [left, right] pairs in newer files.
    const Json* merges = Member(*model, "merges");
    if (merges == nullptr || !merges->is_array()) {
      Fail("model.merges must be an array");
    }
    t->merges_.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const Json& m = (*merges)[i];
      std::string left, right;
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != s.npos) {
          Fail(absl::StrCat("model.merges[", i, "] ", Quote(s),
                            " is not two tokens separated by a space"));
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
                 m[1].is_string()) {
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      } else {
        Fail(absl::StrCat("model.merges[", i,
                          "] must be a string or a pair of strings"));
      }
      auto l = ids.find(left), r = ids.find(right),
           merged = ids.find(left + right);
      for (const auto& [it, piece] :
           {std::pair{l, &left}, {r, &right}, {merged, nullptr}}) {
        if (it == ids.end()) {
          Fail(absl::StrCat("model.merges[", i,
                            "]: ", Quote(piece ? *piece : left + right),
                            " is not in model.vocab"));
        }
      }
      // A repeated pair takes its last rank, as in the library.
      t->merges_[(static_cast<uint64_t>(l->second) << 32) |
                 static_cast<uint32_t>(r->second)] = {static_cast<int32_t>(i),
                                                      merged->second};
    }
    if (t->ignore_merges_) t->vocab_ = std::move(ids);

    // Normalizer: NFC or nothing.
    if (const Json* norm = Member(json, "normalizer"); norm != nullptr) {
      const std::string type = TypeOf(*norm, "normalizer");
      std::vector<const Json*> parts;
      if (type == "Sequence") {
        const Json* list = Member(*norm, "normalizers");
        if (list == nullptr || !list->is_array()) {
          Fail("normalizer.normalizers must be an array");
        }
        for (const Json& n : *list) parts.push_back(&n);
      } else {
        parts.push_back(norm);
      }
      for (const Json* n : parts) {
        const std::string part = TypeOf(*n, "normalizer");
        if (part != "NFC") {
          Fail(absl::StrCat("normalizer ", Quote(part),
                            " is not supported (only NFC)"));
        }
        t->nfc_ = true;
      }
    }

    // Pre-tokenizer: ByteLevel.
    const Json* pre = Member(json, "pre_tokenizer");
    if (pre == nullptr || TypeOf(*pre, "pre_tokenizer") != "ByteLevel") {
      Fail("pre_tokenizer must be ByteLevel");
    }
    t->add_prefix_space_ =
        BoolMember(*pre, "add_prefix_space", true, "pre_tokenizer");
    t->use_regex_ = BoolMember(*pre, "use_regex", true, "pre_tokenizer");

    const Json* decoder = Member(json, "decoder");
    if (decoder == nullptr || TypeOf(*decoder, "decoder") != "ByteLevel") {
      Fail("decoder must be ByteLevel");
    }
    if (const Json* post = Member(json, "post_processor");
        post != nullptr && TypeOf(*post, "post_processor") != "ByteLevel") {
      Fail(absl::StrCat("post_processor ", Quote(TypeOf(*post, "")),
                        " is not supported (only ByteLevel or none)"));
    }
  } catch (const LoadError& e) {
    return absl::DataLossError(absl::StrCat(ToAbsl(name), ": ", e.message));
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(ToAbsl(name), ": ", e.what()));
  }

  // Added-token tries; normalized ones match their normalized content.
  t->raw_trie_ = std::make_unique<Trie>();
  t->normalized_trie_ = std::make_unique<Trie>();
  std::vector<utf8proc_int32_t> buffer;
  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    if (a.normalized) {
      std::string content;
      if (t->nfc_) {
        AppendNfc(a.content, buffer, &content);
      } else {
        content = a.content;
      }
      t->normalized_trie_->Add(content, static_cast<int32_t>(i));
    } else {
      t->raw_trie_->Add(a.content, static_cast<int32_t>(i));
    }
  }

  t->regex_ = std::make_unique<Regex>();
  std::string error;
  t->regex_->code = CompileSplitPattern(&error);
  if (t->regex_->code == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot compile the split pattern: ", error));
  }
  t->regex_->jit = pcre2_jit_compile(t->regex_->code, PCRE2_JIT_COMPLETE) == 0;
  t->cache_ = std::make_unique<Cache>();
  return t;
}

// ---------------------------------------------------------------------------
// BPE

std::vector<int32_t> Tokenizer::BpeForTesting(std::string_view word,
                                              bool heap) const {
  std::vector<int32_t> ids;
  if (heap) {
    BpeLong(word, &ids);
  } else {
    BpeShort(word, &ids);
  }
  return ids;
}

// Repeatedly merges the leftmost pair of lowest rank, keeping the rank of
// every adjacent pair in an array so that each merge costs two lookups and a
// scan. Quadratic in the word's length, and the fastest for short words.
void Tokenizer::BpeShort(std::string_view word,
                         std::vector<int32_t>* ids) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  const size_t n0 = word.size();
  if (n0 > kShortWord) {
    BpeLong(word, ids);
    return;
  }
  int32_t sym[kShortWord], rank[kShortWord], merged[kShortWord];
  size_t n = n0;
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  }
  auto pair = [&](size_t i) {
    const MergeResult* m = FindMerge(sym[i], sym[i + 1]);
    rank[i] = m ? m->rank : kNone;
    merged[i] = m ? m->id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) pair(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (rank[i] < rank[best]) best = i;
    }
    if (rank[best] == kNone) break;
    sym[best] = merged[best];
    std::memmove(&sym[best + 1], &sym[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    std::memmove(&rank[best + 1], &rank[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    std::memmove(&merged[best + 1], &merged[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    --n;
    if (best > 0) pair(best - 1);
    if (best + 1 < n) pair(best);
  }
  ids->insert(ids->end(), sym, sym + n);
}

// The library's algorithm: a heap of candidate merges ordered by (rank,
// position), entries invalidated lazily. O(n log n) for long words.
void Tokenizer::BpeLong(std::string_view word,
                        std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids_[static_cast<unsigned char>(word[i])], i - 1,
                  i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const MergeResult* m = FindMerge(symbols[pos].id, symbols[next].id)) {
      heap.push({m->rank, pos, m->id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const MergeResult* m = FindMerge(left.id, right.id);
    if (m == nullptr || m->id != top.id) continue;  // stale
    left.id = top.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) {
    ids->push_back(symbols[i].id);
  }
}

void Tokenizer::EncodeWord(std::string_view word,
                           std::vector<int32_t>* ids) const {
  if (word.size() == 1) {
    ids->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = vocab_.find(ByteLevelString(word));
    if (it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) {
    BpeLong(word, ids);
    return;
  }
  const absl::string_view key = ToAbsl(word);
  const size_t hash = absl::Hash<absl::string_view>()(key);
  Cache::Shard& shard = cache_->shards[(hash >> 20) % kCacheShards];
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.words.find(key);
    if (it != shard.words.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = ids->size();
  BpeShort(word, ids);
  std::unique_lock lock(shard.mu, std::try_to_lock);
  // Under contention, or once full, skip caching: it only costs speed.
  if (lock.owns_lock() && shard.words.size() < kCacheEntriesPerShard) {
    shard.words.try_emplace(key, ids->begin() + start, ids->end());
  }
}

// ---------------------------------------------------------------------------
// Encoding

namespace {

// Calls on_text(begin, end) for the stretches of s between added tokens and
// on_token(index, begin, end) for the tokens, in order, as the library's
// AddedVocabulary::find_matches does. One difference: after an rstrip token
// the search resumes after the stripped spaces, where the library can return
// overlapping pieces.
template <typename Trie, typename Added, typename OnText, typename OnToken>
void SplitOnAddedTokens(const Trie& trie, const Added& added,
                        std::string_view s, OnText&& on_text,
                        OnToken&& on_token) {
  size_t done = 0, from = 0;
  while (from < s.size()) {
    auto [begin, end, index] = trie.Find(s, from);
    if (index < 0) break;
    from = end;
    const auto& token = added[index];
    if (token.single_word) {
      size_t len;
      const bool space_before =
          begin == 0 ||
          !IsWordChar(DecodeAt(s, PreviousCharStart(s, begin), &len));
      const bool space_after =
          end == s.size() || !IsWordChar(DecodeAt(s, end, &len));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      size_t b = begin, len;
      while (b > 0) {
        const size_t prev = PreviousCharStart(s, b);
        if (!IsWhiteSpace(DecodeAt(s, prev, &len))) break;
        b = prev;
      }
      begin = std::max(b, done);
    }
    if (token.rstrip) {
      size_t len;
      while (end < s.size() && IsWhiteSpace(DecodeAt(s, end, &len))) end += len;
      from = end;
    }
    if (done < begin) on_text(done, begin);
    on_token(token.id, begin, end);
    done = end;
  }
  if (done < s.size()) on_text(done, s.size());
}

}  // namespace

void Tokenizer::EncodeNormalized(
    std::string_view text, Scratch& scratch, std::vector<int32_t>* ids,
    std::vector<std::pair<size_t, size_t>>* ranges) const {
  auto on_token = [&](int32_t id, size_t begin, size_t end) {
    ids->push_back(id);
    if (ranges) ranges->push_back({begin, end});
  };
  auto on_text = [&](size_t begin, size_t end) {
    std::string_view piece = text.substr(begin, end - begin);
    // Positions in `piece` are shifted by `shift` from those in `text`; a
    // prepended space maps to the start of the piece.
    size_t base = begin;
    bool prefixed = false;
    if (add_prefix_space_ && piece[0] != ' ') {
      scratch.prefixed.assign(1, ' ');
      scratch.prefixed.append(piece);
      piece = scratch.prefixed;
      prefixed = true;
    }
    auto emit_word = [&](size_t b, size_t e) {
      const size_t first = ids->size();
      EncodeWord(piece.substr(b, e - b), ids);
      if (!ranges) return;
      size_t at = b;
      for (size_t i = first; i < ids->size(); ++i) {
        size_t next = at + bytes_[(*ids)[i]].size();
        size_t rb = at, re = next;
        if (prefixed) {
          rb = rb == 0 ? 0 : rb - 1;
          re = re == 0 ? 0 : re - 1;
        }
        ranges->push_back({base + rb, base + re});
        at = next;
      }
    };
    if (!use_regex_) {
      emit_word(0, piece.size());
      return;
    }
    ForEachSplit(regex_->code, regex_->jit, scratch.match, piece, emit_word);
  };
  if (normalized_trie_->empty()) {
    if (!text.empty()) on_text(0, text.size());
  } else {
    SplitOnAddedTokens(*normalized_trie_, added_, text, on_text, on_token);
  }
}

namespace {

// NFC of a valid UTF-8 text, into *out; false (and *out untouched) if NFC
// leaves the text as it is. `regions` (if not null) receives the changed
// stretches, each as small as a grapheme cluster where that is exact.
//
// Only runs of non-ASCII characters, with the ASCII character before each,
// can change: an ASCII character never combines with what precedes it, so
// the text can be cut before each one and normalized piece by piece.
bool NormalizeInto(std::string_view text,
                   std::vector<utf8proc_int32_t>& code_points, std::string& nfc,
                   std::string* out, std::vector<Region>* regions) {
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t copied = 0;  // text[0, copied) is accounted for in *out
  bool changed = false;
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    // A run of non-ASCII bytes [run_begin, i), with one ASCII byte before it.
    size_t run_begin = i;
    while (i < n && p[i] >= 0x80) ++i;
    if (run_begin > copied) --run_begin;  // the ASCII character before
    const std::string_view run = text.substr(run_begin, i - run_begin);
    nfc.clear();
    AppendNfc(run, code_points, &nfc);
    if (nfc == run) continue;
    if (!changed) {
      out->clear();
      out->reserve(n + 16);
      changed = true;
    }
    out->append(text.substr(copied, run_begin - copied));
    copied = i;
    if (regions == nullptr) {
      out->append(nfc);
      continue;
    }
    // Narrow the changed stretch to grapheme clusters, if normalizing them
    // one by one gives the same text (it does unless Unicode surprises).
    std::vector<std::pair<size_t, size_t>> clusters;
    utf8proc_int32_t state = 0, prev = -1;
    size_t cluster_begin = 0;
    for (size_t k = 0; k < run.size();) {
      size_t len;
      const auto c = static_cast<utf8proc_int32_t>(DecodeAt(run, k, &len));
      if (prev >= 0 && utf8proc_grapheme_break_stateful(prev, c, &state)) {
        clusters.push_back({cluster_begin, k});
        cluster_begin = k;
      }
      prev = c;
      k += len;
    }
    clusters.push_back({cluster_begin, run.size()});
    std::string pieces;
    std::vector<Region> fine;
    for (auto [b, e] : clusters) {
      const size_t out_begin = pieces.size();
      AppendNfc(run.substr(b, e - b), code_points, &pieces);
      if (std::string_view(pieces).substr(out_begin) != run.substr(b, e - b)) {
        fine.push_back({out->size() + out_begin, out->size() + pieces.size(),
                        run_begin + b, run_begin + e});
      }
    }
    if (pieces == nfc) {
      regions->insert(regions->end(), fine.begin(), fine.end());
    } else {
      regions->push_back({out->size(), out->size() + nfc.size(), run_begin, i});
    }
    out->append(nfc);
  }
  if (changed) out->append(text.substr(copied));
  return changed;
}

}  // namespace

std::string Tokenizer::Normalize(std::string_view text) const {
  bool ascii = false;
  std::string repaired;
  if (!IsValidUtf8(text, &ascii)) {
    repaired = RepairUtf8(text, nullptr);
    text = repaired;
  }
  if (!nfc_ || ascii) return std::string(text);
  std::vector<utf8proc_int32_t> code_points;
  std::string nfc, out;
  if (!NormalizeInto(text, code_points, nfc, &out, nullptr)) {
    return std::string(text);
  }
  return out;
}

void Tokenizer::EncodeImpl(std::string_view input, std::vector<int32_t>* ids,
                           std::vector<TokenSpan>* spans) const {
  // Invalid UTF-8 becomes U+FFFD first, so everything after sees valid text.
  bool ascii = false;
  std::string repaired;
  std::vector<Region> repairs;
  std::string_view text = input;
  if (!IsValidUtf8(input, &ascii)) {
    repaired = RepairUtf8(input, spans ? &repairs : nullptr);
    text = repaired;
  }
  Scratch scratch;
  scratch.match = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  std::string normalized;
  std::vector<Region> nfc_regions;
  std::vector<std::pair<size_t, size_t>> ranges;

  auto to_input = [&](size_t p, bool is_end) {
    return repairs.empty() ? p : MapBack(repairs, p, is_end);
  };
  auto on_token = [&](int32_t id, size_t begin, size_t end) {
    ids->push_back(id);
    if (spans) {
      spans->push_back({id, to_input(begin, false), to_input(end, true)});
    }
  };
  auto on_text = [&](size_t begin, size_t end) {
    std::string_view segment = text.substr(begin, end - begin);
    nfc_regions.clear();
    if (nfc_ && !ascii &&
        NormalizeInto(segment, scratch.code_points, scratch.nfc, &normalized,
                      spans ? &nfc_regions : nullptr)) {
      segment = normalized;
    }
    if (!spans) {
      EncodeNormalized(segment, scratch, ids, nullptr);
      return;
    }
    ranges.clear();
    const size_t first = ids->size();
    EncodeNormalized(segment, scratch, ids, &ranges);
    for (size_t i = first; i < ids->size(); ++i) {
      auto [b, e] = ranges[i - first];
      // Widen to whole characters.
      while (b > 0 && (static_cast<unsigned char>(segment[b]) & 0xC0) == 0x80) {
        --b;
      }
      while (e < segment.size() &&
             (static_cast<unsigned char>(segment[e]) & 0xC0) == 0x80) {
        ++e;
      }
      if (!nfc_regions.empty()) {
        b = MapBack(nfc_regions, b, false);
        e = MapBack(nfc_regions, e, true);
      }
      spans->push_back(
          {(*ids)[i], to_input(begin + b, false), to_input(begin + e, true)});
    }
  };
  if (raw_trie_->empty()) {
    if (!text.empty()) on_text(0, text.size());
  } else {
    SplitOnAddedTokens(*raw_trie_, added_, text, on_text, on_token);
  }
}

std::string Tokenizer::ByteLevelSpelling(std::string_view bytes) {
  return ByteLevelString(bytes);
}

void Tokenizer::PreTokenize(std::string_view text,
                            absl::FunctionRef<void(std::string_view)> emit) {
  static const Regex* const regex = [] {
    auto* r = new Regex();
    std::string error;
    r->code = CompileSplitPattern(&error);
    if (r->code == nullptr) {
      std::fprintf(stderr, "cannot compile the split pattern: %s\n",
                   error.c_str());
      std::abort();
    }
    r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    return r;
  }();
  bool ascii = false;
  std::string repaired;
  if (!IsValidUtf8(text, &ascii)) {
    repaired = RepairUtf8(text, nullptr);
    text = repaired;
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(regex->code, nullptr),
      &pcre2_match_data_free);
  ForEachSplit(regex->code, regex->jit, match.get(), text,
               [&](size_t b, size_t e) { emit(text.substr(b, e - b)); });
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 4 + 4);
  EncodeImpl(text, &ids, nullptr);
  return ids;
}

std::vector<TokenSpan> Tokenizer::EncodeWithOffsets(
    std::string_view text) const {
  std::vector<int32_t> ids;
  std::vector<TokenSpan> spans;
  EncodeImpl(text, &ids, &spans);
  return spans;
}

// ---------------------------------------------------------------------------
// Decoding

std::string Tokenizer::Decode(absl::Span<const int32_t> ids,
                              bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || !known_[id]) {
      bytes += Placeholder(id);
    } else if (!(skip_special_tokens && special_[id])) {
      bytes += bytes_[id];
    }
  }
  bool ascii;
  if (IsValidUtf8(bytes, &ascii)) return bytes;
  return RepairUtf8(bytes, nullptr);
}

std::string Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !known_[id]) return Placeholder(id);
  return pieces_[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

}  // namespace garden
