#include "common/text/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "common/base/files.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "common/text/added_tokens.h"
#include "common/text/bpe.h"
#include "common/text/decoder.h"
#include "common/text/normalizer.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/tokenizer_json.h"

namespace garden {

using tokenizer_internal::AddedToken;
using tokenizer_internal::AddedTokenSplitter;
using tokenizer_internal::BpeModel;
using tokenizer_internal::ByteLevelDecoder;
using tokenizer_internal::MapBack;
using tokenizer_internal::NfcScratch;
using tokenizer_internal::ParseTokenizerJson;
using tokenizer_internal::PieceIds;
using tokenizer_internal::Region;
using tokenizer_internal::SplitPattern;
using tokenizer_internal::TokenizerSpec;

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return FromJson(text, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    std::string_view json_text, std::string_view name) {
  ASSIGN_OR_RETURN(TokenizerSpec spec, ParseTokenizerJson(json_text, name));
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  t->nfc_ = spec.nfc;
  t->add_prefix_space_ = spec.add_prefix_space;
  t->use_regex_ = spec.use_regex;
  // Normalized added tokens match their normalized content.
  t->raw_added_ = std::make_unique<AddedTokenSplitter>();
  t->normalized_added_ = std::make_unique<AddedTokenSplitter>();
  NfcScratch nfc;
  for (const AddedToken& a : spec.added) {
    if (!a.normalized) {
      t->raw_added_->Add(a, a.content);
    } else if (t->nfc_) {
      std::string content;
      tokenizer_internal::AppendNfc(a.content, nfc, &content);
      t->normalized_added_->Add(a, content);
    } else {
      t->normalized_added_->Add(a, a.content);
    }
  }
  t->decoder_ = std::make_unique<ByteLevelDecoder>(
      std::move(spec.pieces), std::move(spec.known), std::move(spec.special));
  t->bpe_ = std::make_unique<BpeModel>(
      spec.byte_ids, std::move(spec.merges),
      spec.ignore_merges ? std::move(spec.vocab) : PieceIds());
  ASSIGN_OR_RETURN(t->split_, SplitPattern::Get());
  return t;
}

// ---------------------------------------------------------------------------
// Encoding

// Per-call working memory.
struct Tokenizer::Scratch {
  SplitPattern::MatchData match;
  std::string prefixed;
  NfcScratch nfc;
};

std::vector<int32_t> Tokenizer::BpeForTesting(std::string_view word,
                                              bool heap) const {
  std::vector<int32_t> ids;
  if (heap) {
    bpe_->MergeLong(word, &ids);
  } else {
    bpe_->MergeShort(word, &ids);
  }
  return ids;
}

void Tokenizer::EncodeNormalized(
    std::string_view text, Scratch& scratch, std::vector<int32_t>* ids,
    std::vector<std::pair<size_t, size_t>>* ranges) const {
  auto on_token = [&](int32_t id, size_t begin, size_t end) {
    ids->push_back(id);
    if (ranges) ranges->push_back({begin, end});
  };
  auto on_text = [&](size_t begin, size_t end) {
    std::string_view piece = text.substr(begin, end - begin);
    // Positions in `piece` are shifted by `base` from those in `text`; a
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
      bpe_->Encode(piece.substr(b, e - b), ids);
      if (!ranges) return;
      size_t at = b;
      for (size_t i = first; i < ids->size(); ++i) {
        size_t next = at + decoder_->TokenBytes((*ids)[i]).size();
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
    split_->ForEach(scratch.match.get(), piece, emit_word);
  };
  if (normalized_added_->empty()) {
    if (!text.empty()) on_text(0, text.size());
  } else {
    normalized_added_->Split(text, on_text, on_token);
  }
}

void Tokenizer::EncodeImpl(std::string_view input, std::vector<int32_t>* ids,
                           std::vector<TokenSpan>* spans) const {
  // Invalid UTF-8 becomes U+FFFD first, so everything after sees valid text.
  bool ascii = false;
  std::string repaired;
  std::vector<Region> repairs;
  std::string_view text = input;
  if (!IsValidUtf8(input, &ascii)) {
    repaired = ReplaceInvalidUtf8(input, kReplacementCharacter,
                                  spans ? &repairs : nullptr);
    text = repaired;
  }
  Scratch scratch;
  scratch.match = split_->NewMatchData();
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
        NormalizeNfc(segment, scratch.nfc, &normalized,
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
  if (raw_added_->empty()) {
    if (!text.empty()) on_text(0, text.size());
  } else {
    raw_added_->Split(text, on_text, on_token);
  }
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

std::string Tokenizer::Normalize(std::string_view text) const {
  bool ascii = false;
  std::string repaired;
  if (!IsValidUtf8(text, &ascii)) {
    repaired = ReplaceInvalidUtf8(text);
    text = repaired;
  }
  if (!nfc_ || ascii) return std::string(text);
  NfcScratch scratch;
  std::string out;
  if (!NormalizeNfc(text, scratch, &out, nullptr)) return std::string(text);
  return out;
}

std::string Tokenizer::ByteLevelSpelling(std::string_view bytes) {
  return tokenizer_internal::ByteLevelString(bytes);
}

void Tokenizer::PreTokenize(std::string_view text,
                            absl::FunctionRef<void(std::string_view)> emit) {
  static const SplitPattern* const pattern = [] {
    absl::StatusOr<const SplitPattern*> compiled = SplitPattern::Get();
    if (!compiled.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(compiled.status().message()).c_str());
      std::abort();
    }
    return *compiled;
  }();
  bool ascii = false;
  std::string repaired;
  if (!IsValidUtf8(text, &ascii)) {
    repaired = ReplaceInvalidUtf8(text);
    text = repaired;
  }
  const SplitPattern::MatchData match = pattern->NewMatchData();
  pattern->ForEach(match.get(), text,
                   [&](size_t b, size_t e) { emit(text.substr(b, e - b)); });
}

// ---------------------------------------------------------------------------
// Decoding and the id table

std::string Tokenizer::Decode(absl::Span<const int32_t> ids,
                              bool skip_special_tokens) const {
  return decoder_->Decode(ids, skip_special_tokens);
}

std::string Tokenizer::IdToPiece(int32_t id) const {
  return decoder_->IdToPiece(id);
}

int32_t Tokenizer::vocab_size() const { return decoder_->size(); }

bool Tokenizer::IsSpecial(int32_t id) const { return decoder_->IsSpecial(id); }

}  // namespace garden
