#include "common/train/corpus.h"

#include <sys/stat.h>
#include <utf8proc.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

constexpr std::string_view kAsciiSpace = " \t\n\r\f\v";

bool IsAsciiSpace(char c) {
  return kAsciiSpace.find(c) != std::string_view::npos;
}

// The code point at s[i] and its length; -1 and length 1 for a byte that
// does not start a valid UTF-8 sequence.
int32_t CodePointAt(std::string_view s, size_t i, size_t* len) {
  utf8proc_int32_t c = -1;
  const auto n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                       static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  if (n <= 0) {
    *len = 1;
    return -1;
  }
  *len = static_cast<size_t>(n);
  return c;
}


bool IsLetter(int32_t c) {
  if (c < 0) return false;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

// One entry as a document: leading blank lines dropped, trailing whitespace
// trimmed. Empty if nothing is left.
std::string_view CleanEntry(std::string_view entry) {
  const size_t last = entry.find_last_not_of(kAsciiSpace);
  if (last == std::string_view::npos) return {};
  entry = entry.substr(0, last + 1);
  const size_t first = entry.find_first_not_of(kAsciiSpace);
  // Back to the start of that line, keeping its indentation.
  const size_t line_start = entry.rfind('\n', first);
  return line_start == std::string_view::npos ? entry
                                              : entry.substr(line_start + 1);
}

// Calls add(document) for each non-empty entry of a fortune file.
template <typename Add>
void ForEachEntry(std::string_view text, Add&& add) {
  size_t entry_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "%") {
      const std::string_view doc =
          CleanEntry(text.substr(entry_begin, pos - entry_begin));
      if (!doc.empty()) add(doc);
      entry_begin = std::min(eol + 1, text.size());
    }
    pos = eol + 1;
  }
  if (entry_begin < text.size()) {
    const std::string_view doc = CleanEntry(text.substr(entry_begin));
    if (!doc.empty()) add(doc);
  }
}

bool IsHeldOut(std::string_view doc, double fraction) {
  const uint64_t h = XXH3_64bits(doc.data(), doc.size());
  return static_cast<double>(h >> 11) * 0x1.0p-53 < fraction;
}

// Uniform in [0, n): the high half of a 128-bit product, which needs no
// rejection loop and has a bias of at most n / 2^64.
uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >>
                               64);
}

int RepeatCount(std::mt19937_64& rng, const RepetitionOptions& options) {
  const int cap = std::max(options.max_repeats, 1);
  if (!(options.alpha > 0)) return cap;
  // u in (0, 1], never 0, so the power is finite.
  const double u = static_cast<double>((rng() >> 11) + 1) * 0x1.0p-53;
  const double r = std::floor(std::pow(u, -1.0 / options.alpha));
  return r >= cap ? cap : std::max(1, static_cast<int>(r));
}

// Step 1 of ClozeExamples: the text without its closing attribution.
std::string_view CutAttribution(std::string_view doc) {
  size_t line_start = doc.size();
  bool indented_after = true;  // every line after this one is indented
  while (line_start > 0) {
    const size_t nl = doc.rfind('\n', line_start - 1);
    const size_t begin = nl == std::string_view::npos ? 0 : nl + 1;
    const std::string_view line = doc.substr(begin, line_start - begin);
    const size_t text = line.find_first_not_of(" \t");
    if (text != std::string_view::npos && line.substr(text).starts_with("--")) {
      if (begin > 0 && indented_after) return doc.substr(0, begin);
      return doc;
    }
    if (line.empty() || (line[0] != ' ' && line[0] != '\t')) {
      indented_after = false;
    }
    if (nl == std::string_view::npos) break;
    line_start = nl;
  }
  return doc;
}

// Steps 2 to 5 of ClozeExamples; empty if the document gives no example.
std::string ClozeOf(std::string_view doc) {
  doc = CutAttribution(doc);
  std::string text;
  text.reserve(doc.size());
  for (char c : doc) {
    if (!IsAsciiSpace(c)) {
      text.push_back(c);
    } else if (!text.empty() && text.back() != ' ') {
      text.push_back(' ');
    }
  }
  // Code points of the text, to cut trailing non-letters.
  size_t end = 0;  // one past the last letter
  for (size_t i = 0; i < text.size();) {
    size_t len;
    const int32_t c = CodePointAt(text, i, &len);
    i += len;
    if (IsLetter(c)) end = i;
  }
  text.resize(end);
  const size_t space = text.rfind(' ');
  if (space == std::string::npos) return {};
  const std::string_view target = std::string_view(text).substr(space + 1);
  size_t letters = 0;
  for (size_t i = 0; i < target.size(); ++letters) {
    size_t len;
    if (!IsLetter(CodePointAt(target, i, &len))) return {};
    i += len;
  }
  if (letters < 2) return {};
  // Context words, and how many of them hold a letter.
  size_t words = 0, wordy = 0;
  const std::string_view context = std::string_view(text).substr(0, space);
  for (size_t i = 0; i < context.size();) {
    size_t word_end = context.find(' ', i);
    if (word_end == std::string_view::npos) word_end = context.size();
    bool has_letter = false;
    for (size_t k = i; k < word_end && !has_letter;) {
      size_t len;
      has_letter = IsLetter(CodePointAt(context, k, &len));
      k += len;
    }
    ++words;
    wordy += has_letter;
    i = word_end + 1;
  }
  if (words < 8 || 4 * wordy < 3 * words) return {};
  return text;
}

}  // namespace

absl::StatusOr<Corpus> LoadFortunes(const CorpusOptions& options) {
  if (!(options.heldout_fraction >= 0 && options.heldout_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "heldout_fraction ", options.heldout_fraction, " is not in [0, 1]"));
  }
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(options.dir, ec), end;
       !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return ErrnoStatus(options.dir, ec.value(), "cannot list");
  std::sort(names.begin(), names.end());

  Corpus corpus;
  // Contents of the files read, by hash, to skip copies and links.
  absl::flat_hash_map<uint64_t, std::vector<std::string>> contents;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& name : names) {
    if (name.starts_with('.') || name.ends_with(".dat")) continue;
    const std::string path = absl::StrCat(options.dir, "/", name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    std::vector<std::string>& same_hash =
        contents[XXH3_64bits(text.data(), text.size())];
    if (std::find(same_hash.begin(), same_hash.end(), text) !=
        same_hash.end()) {
      continue;
    }
    if (IsValidUtf8(text)) {
      corpus.files.push_back(name);
      ForEachEntry(text, [&](std::string_view doc) {
        if (!seen.emplace(doc).second) {
          ++corpus.duplicates_removed;
          return;
        }
        (IsHeldOut(doc, options.heldout_fraction) ? corpus.heldout
                                                  : corpus.train)
            .emplace_back(doc);
      });
    } else {
      corpus.skipped_not_utf8.push_back(name);
    }
    same_hash.push_back(std::move(text));
  }
  if (corpus.train.empty() && corpus.heldout.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.dir, ": no documents"));
  }
  return corpus;
}

std::vector<std::string> VariantDocuments(const Corpus& corpus,
                                          CorpusVariant variant,
                                          uint64_t seed) {
  return VariantDocuments(corpus, variant, seed, RepetitionOptions());
}

std::vector<std::string> VariantDocuments(const Corpus& corpus,
                                          CorpusVariant variant, uint64_t seed,
                                          const RepetitionOptions& repetition) {
  std::mt19937_64 rng(seed);
  // Indices into corpus.train, shuffled, then materialized.
  std::vector<uint32_t> order;
  if (variant == CorpusVariant::kDeduped) {
    order.resize(corpus.train.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  } else {
    order.reserve(corpus.train.size() * 2);
    for (uint32_t i = 0; i < corpus.train.size(); ++i) {
      order.insert(order.end(), RepeatCount(rng, repetition), i);
    }
  }
  for (size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[Below(rng, i)]);
  }
  std::vector<std::string> out;
  out.reserve(order.size());
  for (uint32_t i : order) out.push_back(corpus.train[i]);
  return out;
}

std::vector<std::string> ClozeExamples(
    const std::vector<std::string>& heldout) {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& doc : heldout) {
    std::string example = ClozeOf(doc);
    if (example.empty() || !seen.insert(example).second) continue;
    out.push_back(std::move(example));
  }
  return out;
}

absl::Status WriteClozeJsonl(const std::vector<std::string>& examples,
                             const std::string& path) {
  std::string text;
  for (const std::string& example : examples) {
    nlohmann::json line = {{"text", example}};
    text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
  }
  return WriteFileAtomic(path, text);
}

}  // namespace garden
