#include "server/engine/unmask.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "server/engine/model_text.h"

namespace garden {
namespace {

// Six evenly spaced prefix lengths in [1, n - 1] (all of them when fewer).
std::vector<int64_t> DefaultPrefixLengths(int64_t n) {
  std::vector<int64_t> ks;
  if (n - 1 <= 6) {
    for (int64_t k = 1; k < n; ++k) ks.push_back(k);
    return ks;
  }
  for (int i = 0; i < 6; ++i) {
    ks.push_back(1 + static_cast<int64_t>(std::llround(i * (n - 2) / 5.0)));
  }
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> UnmaskPrefixLengths(
    int64_t n, absl::Span<const uint32_t> requested) {
  if (n < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "text has ", n, " token; unmasking needs at least 2"));
  }
  std::vector<int64_t> ks;
  for (uint32_t k : requested) {
    if (k < 1 || k > n - 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("prefix length ", k, " is outside [1, ", n - 1,
                       "] for a text of ", n, " tokens"));
    }
    ks.push_back(k);
  }
  if (ks.empty()) ks = DefaultPrefixLengths(n);
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

absl::StatusOr<Unmasking> Unmask(const GptNeoxModel& model,
                                 const Tokenizer& tokenizer,
                                 absl::Span<const int64_t> ids, int64_t k,
                                 const std::function<bool()>& cancelled) {
  const int64_t n = static_cast<int64_t>(ids.size());
  const absl::Span<const int64_t> prefix = ids.subspan(0, k);
  ASSIGN_OR_RETURN(
      Generation generation,
      model.Greedy(prefix, n - k,
                   [&cancelled](int64_t, float) { return !cancelled(); }));
  Unmasking out;
  out.k = k;
  out.n = n;
  out.generated = std::move(generation.tokens);
  int agree = 0;
  for (size_t i = 0; i < out.generated.size(); ++i) {
    const bool same = out.generated[i] == ids[k + i];
    out.agree.push_back(same);
    agree += same;
  }
  out.recovered = static_cast<double>(agree) / (n - k);
  out.prefix_text = DecodeIds(tokenizer, prefix);
  out.generated_text = DecodeIds(tokenizer, out.generated);
  for (const int64_t& id : out.generated) {
    out.generated_pieces.push_back(DecodeIds(tokenizer, absl::MakeConstSpan(&id, 1)));
  }
  return out;
}

}  // namespace garden
