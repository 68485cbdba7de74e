#include "common/text/tokenizer_json.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/absl_compat.h"
#include "common/base/file_content.h"
#include "common/base/utf8.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/unicode.h"
#include "nlohmann/json.hpp"

namespace garden::tokenizer_internal {
namespace {

using Json = nlohmann::json;

// A malformed or unsupported file; ParseTokenizerJson makes it DATA_LOSS.
struct LoadError {
  std::string message;
};

[[noreturn]] void Fail(std::string message) {
  throw LoadError{std::move(message)};
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

// model: a BPE without the options this tokenizer lacks.
void CheckModel(const Json& model, TokenizerSpec& spec) {
  if (const Json* type = Member(model, "type");
      type != nullptr && *type != "BPE") {
    Fail(absl::StrCat("model.type ", ContentForMessage(type->dump()),
                      " is not supported (only \"BPE\")"));
  }
  if (const Json* d = Member(model, "dropout");
      d != nullptr && !(d->is_number() && d->get<double>() == 0.0)) {
    Fail("model.dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = Member(model, key);
    if (v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
      Fail(absl::StrCat("model.", key, " is not supported"));
    }
  }
  if (BoolMember(model, "byte_fallback", false, "model")) {
    Fail("model.byte_fallback is not supported");
  }
  spec.ignore_merges = BoolMember(model, "ignore_merges", false, "model");
}

void ParseVocab(const Json& model, TokenizerSpec& spec) {
  const Json* vocab = Member(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    Fail("model.vocab must be an object");
  }
  spec.vocab.reserve(vocab->size());
  for (const auto& [piece, value] : vocab->items()) {
    const int32_t id =
        IdOf(value, absl::StrCat("model.vocab[", ContentForMessage(piece), "]"));
    spec.vocab[piece] = id;
    spec.max_id = std::max(spec.max_id, id);
  }
}

void ParseAddedTokens(const Json& json, TokenizerSpec& spec) {
  const Json* added = Member(json, "added_tokens");
  if (added == nullptr) return;
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
    spec.max_id = std::max(spec.max_id, token.id);
    spec.added.push_back(std::move(token));
  }
}

void BuildIdTable(TokenizerSpec& spec) {
  if (spec.max_id < 0) Fail("the vocabulary is empty");
  const size_t size = static_cast<size_t>(spec.max_id) + 1;
  spec.pieces.assign(size, std::string());
  spec.known.assign(size, false);
  spec.special.assign(size, false);
  for (const auto& [piece, id] : spec.vocab) {
    if (spec.known[id]) {
      Fail(absl::StrCat("model.vocab gives id ", id, " to both ",
                        ContentForMessage(spec.pieces[id]), " and ", ContentForMessage(piece)));
    }
    spec.pieces[id] = piece;
    spec.known[id] = true;
  }
  for (const AddedToken& a : spec.added) {
    spec.pieces[a.id] = a.content;
    spec.known[a.id] = true;
    spec.special[a.id] = a.special;
  }
}

// Bytes C0, C1 and F5 to FF never occur in UTF-8, and Pythia's vocabulary
// lacks them; every other byte needs its symbol.
void FindByteIds(TokenizerSpec& spec) {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    AppendUtf8(alphabet.char_of[b], &symbol);
    auto it = spec.vocab.find(symbol);
    const bool never_in_utf8 = b == 0xC0 || b == 0xC1 || b >= 0xF5;
    if (it == spec.vocab.end() && never_in_utf8) {
      spec.byte_ids[b] = -1;
      continue;
    }
    if (it == spec.vocab.end()) {
      Fail(absl::StrFormat(
          "model.vocab lacks the byte-level symbol %s for byte 0x%02X "
          "(not a byte-level BPE vocabulary?)",
          QuoteForMessage(symbol), b));
    }
    spec.byte_ids[b] = it->second;
  }
}

// The two halves of model.merges[i]: a "left right" string, or a [left,
// right] pair in newer files.
std::pair<std::string, std::string> MergeHalves(const Json& m, size_t i) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != s.npos) {
      Fail(absl::StrCat("model.merges[", i, "] ", ContentForMessage(s),
                        " is not two tokens separated by a space"));
    }
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  Fail(absl::StrCat("model.merges[", i,
                    "] must be a string or a pair of strings"));
}

void ParseMerges(const Json& model, TokenizerSpec& spec) {
  const Json* merges = Member(model, "merges");
  if (merges == nullptr || !merges->is_array()) {
    Fail("model.merges must be an array");
  }
  const PieceIds& ids = spec.vocab;
  spec.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const auto [left, right] = MergeHalves((*merges)[i], i);
    auto l = ids.find(left), r = ids.find(right),
         merged = ids.find(left + right);
    for (const auto& [it, piece] :
         {std::pair{l, &left}, {r, &right}, {merged, nullptr}}) {
      if (it == ids.end()) {
        Fail(absl::StrCat("model.merges[", i,
                          "]: ", ContentForMessage(piece ? *piece : left + right),
                          " is not in model.vocab"));
      }
    }
    // A repeated pair takes its last rank, as in the library.
    spec.merges[BpeModel::PairKey(l->second, r->second)] = {
        static_cast<int32_t>(i), merged->second};
  }
}

// normalizer: NFC or nothing.
void ParseNormalizer(const Json& json, TokenizerSpec& spec) {
  const Json* norm = Member(json, "normalizer");
  if (norm == nullptr) return;
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
      Fail(absl::StrCat("normalizer ", ContentForMessage(part),
                        " is not supported (only NFC)"));
    }
    spec.nfc = true;
  }
}

// pre_tokenizer, decoder and post_processor: ByteLevel (the last may be
// absent).
void ParseByteLevelStages(const Json& json, TokenizerSpec& spec) {
  const Json* pre = Member(json, "pre_tokenizer");
  if (pre == nullptr || TypeOf(*pre, "pre_tokenizer") != "ByteLevel") {
    Fail("pre_tokenizer must be ByteLevel");
  }
  spec.add_prefix_space =
      BoolMember(*pre, "add_prefix_space", true, "pre_tokenizer");
  spec.use_regex = BoolMember(*pre, "use_regex", true, "pre_tokenizer");

  const Json* decoder = Member(json, "decoder");
  if (decoder == nullptr || TypeOf(*decoder, "decoder") != "ByteLevel") {
    Fail("decoder must be ByteLevel");
  }
  if (const Json* post = Member(json, "post_processor");
      post != nullptr && TypeOf(*post, "post_processor") != "ByteLevel") {
    Fail(absl::StrCat("post_processor ", ContentForMessage(TypeOf(*post, "")),
                      " is not supported (only ByteLevel or none)"));
  }
}

// Throws LoadError, or Json::exception for a value of an unexpected type.
TokenizerSpec ParseSpec(std::string_view json_text) {
  Json json;
  try {
    json = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    Fail(absl::StrCat("not valid JSON: ", JsonErrorForMessage(e.what())));
  }
  if (!json.is_object()) Fail("the top level must be a JSON object");
  const Json* model = Member(json, "model");
  if (model == nullptr || !model->is_object()) Fail("no \"model\" object");

  TokenizerSpec spec;
  CheckModel(*model, spec);
  ParseVocab(*model, spec);
  ParseAddedTokens(json, spec);
  BuildIdTable(spec);
  FindByteIds(spec);
  ParseMerges(*model, spec);
  ParseNormalizer(json, spec);
  ParseByteLevelStages(json, spec);
  return spec;
}

}  // namespace

absl::StatusOr<TokenizerSpec> ParseTokenizerJson(std::string_view json_text,
                                                 std::string_view name) {
  try {
    return ParseSpec(json_text);
  } catch (const LoadError& e) {
    return absl::DataLossError(absl::StrCat(ToAbsl(name), ": ", e.message));
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(ToAbsl(name), ": ", JsonErrorForMessage(e.what())));
  }
}

}  // namespace garden::tokenizer_internal
