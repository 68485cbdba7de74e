#include "common/naming/names.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {
namespace {

// Printable rendering of a rejected name for messages (NUL and control bytes
// escaped, long names cut).
std::string Quote(std::string_view value) {
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < 80; ++i) {
    const unsigned char c = value[i];
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (value.size() > 80) out += "...";
  return out + "\"";
}

bool AllOf(std::string_view s, bool (*pred)(unsigned char)) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsSuiteChar(unsigned char c) {
  return absl::ascii_islower(c) || absl::ascii_isdigit(c);
}
bool IsSizeChar(unsigned char c) { return IsSuiteChar(c) || c == '.'; }

}  // namespace

std::vector<std::string> ClosestNames(std::string_view want,
                                      const std::vector<std::string>& have,
                                      size_t k, bool anywhere) {
  // Levenshtein distance of a to b, or (anywhere) to b's closest substring:
  // b's characters before and after the match then cost nothing.
  auto distance = [anywhere](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = anywhere ? 0 : j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return anywhere ? *std::min_element(row.begin(), row.end()) : row[b.size()];
  };
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& name : have) {
    const bool contains = !want.empty() && name.find(want) != std::string::npos;
    scored.emplace_back(contains ? 0 : 1 + distance(want, name), name);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < k; ++i) {
    out.push_back(scored[i].second);
  }
  return out;
}

bool IsNonParameterBuffer(std::string_view tensor) {
  for (std::string_view suffix : {".attention.bias", ".attention.masked_bias",
                                  ".rotary_emb.inv_freq"}) {
    if (absl::EndsWith(ToAbsl(tensor), ToAbsl(suffix))) return true;
  }
  return false;
}

absl::Status ValidateName(std::string_view field, std::string_view value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), " is empty"));
  }
  if (value.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(field), " is ", value.size(),
                     " characters long; the limit is ", kMaxNameLength));
  }
  for (unsigned char c : value) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(field), " ", Quote(value),
                       " has a character outside [A-Za-z0-9._-]"));
    }
  }
  if (value == "." || value == ".." ||
      ToAbsl(value).find("..") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(field), " ", Quote(value), " contains \"..\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CanonicalVariant(std::string_view variant) {
  const std::string v = absl::AsciiStrToLower(ToAbsl(variant));
  if (v == "standard" || v == "ndd") return std::string("standard");
  if (v == "deduped" || v == "dd") return std::string("deduped");
  return absl::InvalidArgumentError(absl::StrCat(
      "variant ", Quote(variant),
      " is unknown; use standard (alias NDD) or deduped (alias DD)"));
}

namespace {

// "seedN", "weight-seedN", "data-seedN" (lower case), N 1 to 9 digits.
bool IsRunName(absl::string_view run) {
  for (absl::string_view prefix : {"weight-", "data-"}) {
    if (absl::StartsWith(run, prefix)) run.remove_prefix(prefix.size());
  }
  if (!absl::StartsWith(run, "seed")) return false;
  run.remove_prefix(4);
  return !run.empty() && run.size() <= 9 &&
         std::all_of(run.begin(), run.end(), [](char c) { return absl::ascii_isdigit(c); });
}

}  // namespace

absl::StatusOr<std::string> CanonicalRun(std::string_view run) {
  const std::string r = absl::AsciiStrToLower(ToAbsl(run));
  if (r.empty() || IsRunName(r)) return r;
  return absl::InvalidArgumentError(absl::StrCat(
      "run ", Quote(run),
      " is unknown; use seedN, weight-seedN or data-seedN (N: 1 to 9 digits), "
      "or none for the main run"));
}

std::string ModelKey::Name() const {
  return absl::StrCat(suite, "-", size, variant == "deduped" ? "-deduped" : "",
                      run.empty() ? "" : "-", run);
}

std::optional<ModelKey> ModelKey::FromRepoName(std::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(ToAbsl(name), '-');
  std::string run;
  if (parts.size() >= 3 && IsRunName(parts.back())) {
    run = std::string(parts.back());
    parts.pop_back();
    if (parts.size() >= 3 && (parts.back() == "weight" || parts.back() == "data")) {
      run = absl::StrCat(parts.back(), "-", run);
      parts.pop_back();
    }
  }
  if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
  if (parts.size() == 3 && parts[2] != "deduped") return std::nullopt;
  if (!AllOf(std::string(parts[0]), IsSuiteChar) ||
      !AllOf(std::string(parts[1]), IsSizeChar)) {
    return std::nullopt;
  }
  if (parts[1] == "." || parts[1].find("..") != absl::string_view::npos) {
    return std::nullopt;
  }
  return ModelKey{std::string(parts[0]), std::string(parts[1]),
                  parts.size() == 3 ? "deduped" : "standard", run};
}

absl::StatusOr<ModelKey> MakeModelKey(std::string_view suite,
                                      std::string_view size,
                                      std::string_view variant,
                                      std::string_view run) {
  ModelKey key;
  // Folder names are lower case; users may type "Pythia" or "70M".
  key.suite = suite.empty() ? std::string(kDefaultSuite)
                            : absl::AsciiStrToLower(ToAbsl(suite));
  RETURN_IF_ERROR(ValidateName("suite", suite.empty() ? key.suite : suite));
  RETURN_IF_ERROR(ValidateName("size", size));
  key.size = absl::AsciiStrToLower(ToAbsl(size));
  if (variant.empty()) {
    return absl::InvalidArgumentError(
        "variant is empty; use standard (alias NDD) or deduped (alias DD)");
  }
  RETURN_IF_ERROR(ValidateName("variant", variant));
  ASSIGN_OR_RETURN(key.variant, CanonicalVariant(variant));
  if (!run.empty()) RETURN_IF_ERROR(ValidateName("run", run));
  ASSIGN_OR_RETURN(key.run, CanonicalRun(run));
  return key;
}

}  // namespace garden
