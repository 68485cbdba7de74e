#include "common/naming/step_spec.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {
namespace {

absl::StatusOr<int64_t> ParseStep(absl::string_view token,
                                  absl::string_view whole) {
  token = absl::StripAsciiWhitespace(token);
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed steps \"", whole, "\": empty step"));
  }
  int64_t value = 0;
  for (char c : token) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed steps \"", whole, "\": \"", token,
                       "\" is not a non-negative integer"));
    }
    value = value * 10 + (c - '0');
    if (value > kMaxStep) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed steps \"", whole, "\": step \"", token,
                       "\" exceeds the limit ", kMaxStep));
    }
  }
  return value;
}

}  // namespace

absl::StatusOr<StepSpec> StepSpec::Parse(std::string_view text_in) {
  const absl::string_view whole = ToAbsl(text_in);
  const absl::string_view text = absl::StripAsciiWhitespace(whole);
  StepSpec spec;
  if (text == "all") return spec;
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed steps \"", whole,
                     "\": expected all, a list 0,1,2 or a range A:B"));
  }
  if (text.find(':') != absl::string_view::npos) {
    std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed steps \"", whole, "\": a range is FIRST:LAST"));
    }
    ASSIGN_OR_RETURN(const int64_t first, ParseStep(parts[0], whole));
    ASSIGN_OR_RETURN(const int64_t last, ParseStep(parts[1], whole));
    if (first > last) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed steps \"", whole, "\": range start ", first,
                       " is after its end ", last));
    }
    spec.kind = Kind::kRange;
    spec.first = first;
    spec.last = last;
    return spec;
  }
  spec.kind = Kind::kList;
  for (absl::string_view token : absl::StrSplit(text, ',')) {
    ASSIGN_OR_RETURN(const int64_t step, ParseStep(token, whole));
    spec.list.push_back(step);
  }
  return spec;
}

absl::StatusOr<std::vector<int64_t>> StepSpec::Resolve(
    const std::vector<int64_t>& present, std::string_view model_name) const {
  const absl::string_view model = ToAbsl(model_name);
  switch (kind) {
    case Kind::kAll:
      if (present.empty()) {
        return absl::NotFoundError(absl::StrCat(model, " has no steps"));
      }
      return present;
    case Kind::kRange: {
      if (first < 0 || first > last) {
        return absl::InvalidArgumentError(absl::StrCat(
            "step range ", first, ":", last, " is empty or negative"));
      }
      std::vector<int64_t> out;
      for (int64_t s : present) {
        if (s >= first && s <= last) out.push_back(s);
      }
      if (out.empty()) {
        return absl::NotFoundError(absl::StrCat(
            "no step of ", model, " in ", first, ":", last,
            "; nearest present: ", FormatSteps(NearestSteps(present, first))));
      }
      return out;
    }
    case Kind::kList: {
      if (list.empty()) {
        return absl::InvalidArgumentError("step list is empty");
      }
      std::vector<int64_t> out = list;
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
      for (int64_t s : out) {
        if (s < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("step ", s, " is negative"));
        }
        if (!std::binary_search(present.begin(), present.end(), s)) {
          return absl::NotFoundError(absl::StrCat(
              "step ", s, " is not present for ", model,
              "; nearest present: ", FormatSteps(NearestSteps(present, s))));
        }
      }
      return out;
    }
  }
  return absl::InternalError("unknown step selection");
}

std::string StepSpec::ToString() const {
  switch (kind) {
    case Kind::kAll:
      return "all";
    case Kind::kRange:
      return absl::StrCat(first, ":", last);
    case Kind::kList:
      return absl::StrJoin(list, ",");
  }
  return "";
}

std::vector<int64_t> NearestSteps(const std::vector<int64_t>& present,
                                  int64_t step, size_t k) {
  std::vector<int64_t> sorted = present;
  std::stable_sort(sorted.begin(), sorted.end(), [step](int64_t a, int64_t b) {
    const auto da = a > step ? a - step : step - a;
    const auto db = b > step ? b - step : step - b;
    return da < db || (da == db && a < b);
  });
  if (sorted.size() > k) sorted.resize(k);
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

std::string FormatSteps(const std::vector<int64_t>& steps) {
  if (steps.empty()) return "(none)";
  constexpr size_t kShown = 8;
  if (steps.size() <= kShown) return absl::StrJoin(steps, ", ");
  std::vector<int64_t> head(steps.begin(), steps.begin() + kShown / 2);
  std::vector<int64_t> tail(steps.end() - kShown / 2, steps.end());
  return absl::StrCat(absl::StrJoin(head, ", "), ", ... (",
                      steps.size() - kShown, " more), ",
                      absl::StrJoin(tail, ", "));
}

const std::vector<int64_t>& PythiaSchedule() {
  static const std::vector<int64_t> schedule = [] {
    std::vector<int64_t> s = {0};
    for (int64_t p = 1; p <= 512; p *= 2) s.push_back(p);
    for (int64_t k = 1000; k <= 143000; k += 1000) s.push_back(k);
    return s;
  }();
  return schedule;
}

std::optional<int64_t> ParseStepName(std::string_view name) {
  if (name.size() <= 4 || name.substr(0, 4) != "step") return std::nullopt;
  int64_t step = 0;
  for (char c : name.substr(4)) {
    if (c < '0' || c > '9') return std::nullopt;
    step = step * 10 + (c - '0');
    if (step > kMaxStep) return std::nullopt;
  }
  return step;
}

}  // namespace garden
