#include "common/text/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "common/text/unicode.h"

namespace garden::tokenizer_internal {
namespace {

constexpr utf8proc_option_t kNfc =
    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);

// The changed stretch `run` (source text[run_begin, ...), NFC `nfc`, written
// at out_at) as regions, one per changed grapheme cluster if normalizing the
// clusters one by one gives the same text (it does unless Unicode
// surprises), else the whole run.
void AddRunRegions(std::string_view run, size_t run_begin, std::string_view nfc,
                   size_t out_at, NfcScratch& scratch,
                   std::vector<Region>* regions) {
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
    AppendNfc(run.substr(b, e - b), scratch, &pieces);
    if (std::string_view(pieces).substr(out_begin) != run.substr(b, e - b)) {
      fine.push_back({out_at + out_begin, out_at + pieces.size(), run_begin + b,
                      run_begin + e});
    }
  }
  if (pieces == nfc) {
    regions->insert(regions->end(), fine.begin(), fine.end());
  } else {
    regions->push_back(
        {out_at, out_at + nfc.size(), run_begin, run_begin + run.size()});
  }
}

}  // namespace

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

void AppendNfc(std::string_view s, NfcScratch& scratch, std::string* out) {
  if (s.empty()) return;
  std::vector<int32_t>& buffer = scratch.code_points;
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

// Only runs of non-ASCII characters, with the ASCII character before each,
// can change: an ASCII character never combines with what precedes it, so
// the text can be cut before each one and normalized piece by piece.
bool NormalizeNfc(std::string_view text, NfcScratch& scratch, std::string* out,
                  std::vector<Region>* regions) {
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::string& nfc = scratch.run;
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
    AppendNfc(run, scratch, &nfc);
    if (nfc == run) continue;
    if (!changed) {
      out->clear();
      out->reserve(n + 16);
      changed = true;
    }
    out->append(text.substr(copied, run_begin - copied));
    copied = i;
    if (regions != nullptr) {
      AddRunRegions(run, run_begin, nfc, out->size(), scratch, regions);
    }
    out->append(nfc);
  }
  if (changed) out->append(text.substr(copied));
  return changed;
}

}  // namespace garden::tokenizer_internal
