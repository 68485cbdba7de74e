#include "server/engine/prune.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include <re2/re2.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/number_text.h"
#include "common/base/status.h"

namespace garden {

absl::Status ValidatePruneFraction(double fraction) {
  if (!(fraction >= 0 && fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fraction ", ExactDouble(fraction),
        " is outside [0, 1): the share of each tensor's entries to zero"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePruneFractions(const std::vector<double>& fractions) {
  if (fractions.empty()) {
    return absl::InvalidArgumentError(
        "fractions is required: at least one in [0, 1)");
  }
  if (fractions.size() > kMaxPruneFractions) {
    return absl::InvalidArgumentError(
        absl::StrCat(fractions.size(), " fractions; at most ",
                     kMaxPruneFractions, " per request"));
  }
  std::set<double> seen;
  for (double f : fractions) {
    RETURN_IF_ERROR(ValidatePruneFraction(f));
    if (!seen.insert(f).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("fraction ", ExactDouble(f), " is given twice"));
    }
  }
  return absl::OkStatus();
}

uint64_t PrunedCount(double fraction, uint64_t numel) {
  const double k = std::floor(fraction * static_cast<double>(numel));
  if (!(k > 0)) return 0;
  return std::min<uint64_t>(static_cast<uint64_t>(k), numel);
}

absl::Status ValidatePruneRegex(const std::string& regex) {
  if (regex.empty()) return absl::OkStatus();
  RE2 pattern(regex, RE2::Quiet);
  if (!pattern.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tensors \"", regex, "\" is not a regular expression: ", pattern.error()));
  }
  return absl::OkStatus();
}

namespace {

// The edit distance from `pattern` to the closest substring of `text`
// (Sellers' algorithm): how far a regex, matched anywhere, is from
// matching literally.
size_t SubstringDistance(std::string_view pattern, std::string_view text) {
  std::vector<size_t> row(text.size() + 1, 0);  // a match may start anywhere
  for (size_t i = 1; i <= pattern.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= text.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diag + (pattern[i - 1] == text[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return *std::min_element(row.begin(), row.end());
}

// Up to `k` of `names` closest to `regex` read as text, nearest first, in
// parameter order among equals.
std::vector<std::string> ClosestParameters(const std::string& regex,
                                           const std::vector<std::string>& names,
                                           size_t k) {
  std::vector<std::pair<size_t, size_t>> scored;  // distance, index
  for (size_t i = 0; i < names.size(); ++i) {
    scored.emplace_back(SubstringDistance(regex, names[i]), i);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < k; ++i) {
    out.push_back(names[scored[i].second]);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<PruneTensor>> MatchPruneTensors(
    const GptNeoxConfig& config, const std::string& regex) {
  RETURN_IF_ERROR(ValidatePruneRegex(regex));
  std::optional<RE2> pattern;
  if (!regex.empty()) pattern.emplace(regex, RE2::Quiet);
  GptNeoxWeights unused;
  std::vector<PruneTensor> out;
  std::vector<std::string> names;
  for (const GptNeoxTensorSlot& slot : GptNeoxTensorSlots(config, &unused)) {
    names.push_back(slot.name);
    const bool match = pattern ? RE2::PartialMatch(slot.name, *pattern)
                               : slot.shape.size() == 2 && slot.name.ends_with(".weight");
    if (!match) continue;
    uint64_t numel = 1;
    for (int64_t d : slot.shape) numel *= static_cast<uint64_t>(std::max<int64_t>(d, 0));
    out.push_back({slot.name, numel});
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no parameter matches --tensors \"", regex, "\"; the model has ",
        names.size(), " parameters, the closest: ",
        absl::StrJoin(ClosestParameters(regex, names, 4), ", ")));
  }
  return out;
}

uint64_t PruneWorkingBytes(const std::vector<PruneTensor>& tensors,
                           double fraction) {
  uint64_t copies = 0, largest = 0;
  for (const PruneTensor& t : tensors) {
    if (PrunedCount(fraction, t.numel) == 0) continue;
    copies += 4 * t.numel;
    largest = std::max(largest, t.numel);
  }
  return copies + largest * 2 * (4 + 8);
}

at::Tensor SmallestMagnitudeIndices(const at::Tensor& values, int64_t k) {
  const at::Tensor flat = values.reshape({-1});
  const int64_t n = flat.numel();
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(flat.device());
  if (k <= 0) return at::empty({0}, long_options);
  if (k >= n) return at::arange(n, long_options);
  const at::Tensor magnitude = flat.abs();
  // The k-th smallest |w|: every smaller one is taken, then the equal ones
  // in index order until there are k (nonzero lists indices ascending).
  const at::Tensor threshold = std::get<0>(at::kthvalue(magnitude, k));
  if (!std::isnan(threshold.item<double>())) {
    const at::Tensor less = at::nonzero(magnitude < threshold).reshape({-1});
    const at::Tensor equal = at::nonzero(magnitude == threshold).reshape({-1});
    const int64_t need = k - less.numel();
    const at::Tensor picked = at::cat({less, equal.slice(0, 0, need)});
    return std::get<0>(at::sort(picked));
  }
  // Fewer than k numbers: NaNs sort last; a stable sort keeps index order.
  const at::Tensor order = std::get<1>(
      at::sort(magnitude, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  return std::get<0>(at::sort(order.slice(0, 0, k)));
}

absl::StatusOr<PrunedModel> PruneModel(std::shared_ptr<const GptNeoxModel> model,
                                       const std::vector<PruneTensor>& tensors,
                                       double fraction) {
  RETURN_IF_ERROR(ValidatePruneFraction(fraction));
  PrunedModel out;
  std::map<std::string, size_t> wanted;
  for (const PruneTensor& t : tensors) {
    const uint64_t k = PrunedCount(fraction, t.numel);
    wanted.emplace(t.name, out.tensors.size());
    out.tensors.push_back({t.name, t.numel, k});
    out.zeroed += k;
    out.numel += t.numel;
  }
  if (out.zeroed == 0) {
    out.model = std::move(model);
    return out;
  }
  std::vector<bool> found(tensors.size(), false);
  ASSIGN_OR_RETURN(
      std::unique_ptr<GptNeoxModel> pruned,
      model->WithWeights([&](const GptNeoxTensorSlot& slot) -> absl::Status {
        const auto it = wanted.find(slot.name);
        if (it == wanted.end()) return absl::OkStatus();
        found[it->second] = true;
        const PrunedTensorCount& want = out.tensors[it->second];
        const at::Tensor& shared = *slot.tensor;
        if (static_cast<uint64_t>(shared.numel()) != want.numel) {
          return absl::FailedPreconditionError(absl::StrCat(
              "weight ", slot.name, " has ", shared.numel(), " entries, not ",
              want.numel));
        }
        if (want.zeroed == 0) return absl::OkStatus();
        at::Tensor copy = shared.clone(at::MemoryFormat::Contiguous);
        copy.view({-1}).index_fill_(
            0, SmallestMagnitudeIndices(copy, static_cast<int64_t>(want.zeroed)), 0);
        *slot.tensor = std::move(copy);
        return absl::OkStatus();
      }));
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!found[i]) {
      return absl::FailedPreconditionError(
          absl::StrCat("the model has no weight ", tensors[i].name));
    }
  }
  out.model = std::move(pruned);
  return out;
}

}  // namespace garden
