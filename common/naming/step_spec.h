// Step selections: "all", a list "0,1,2,512", or an inclusive range
// "1000:5000".
#ifndef GARDEN_COMMON_NAMING_STEP_SPEC_H_
#define GARDEN_COMMON_NAMING_STEP_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace garden {

struct StepSpec {
  enum class Kind { kAll, kList, kRange };
  Kind kind = Kind::kAll;
  std::vector<int64_t> list;  // kList: as given (duplicates allowed)
  int64_t first = 0;          // kRange: inclusive bounds
  int64_t last = 0;

  // INVALID_ARGUMENT, quoting the offending token, for anything else:
  // empty items, signs, non-digits, values above kMaxStep, first > last.
  static absl::StatusOr<StepSpec> Parse(std::string_view text);

  // The selected steps among `present` (ascending): all of them; the list,
  // sorted and deduplicated, each of which must be present (NOT_FOUND naming
  // the nearest present steps otherwise); or those inside the range, which
  // must hold at least one (NOT_FOUND otherwise).
  absl::StatusOr<std::vector<int64_t>> Resolve(
      const std::vector<int64_t>& present, std::string_view model_name) const;

  std::string ToString() const;
};

// Training steps above this are refused as malformed (Pythia ends at 143000).
inline constexpr int64_t kMaxStep = int64_t{1} << 40;

// Up to `k` present steps closest to `step`, ascending, for error messages.
std::vector<int64_t> NearestSteps(const std::vector<int64_t>& present,
                                  int64_t step, size_t k = 2);

// "1000, 2000" style list for messages; long lists are elided in the middle.
std::string FormatSteps(const std::vector<int64_t>& steps);

// The step a checkpoint folder or Hub branch names: "step<N>" with N decimal
// digits up to kMaxStep; nullopt for any other name.
std::optional<int64_t> ParseStepName(std::string_view name);

// Pythia's 154 published checkpoints: 0, 1, 2, 4, ..., 512, then 1000,
// 2000, ..., 143000.
const std::vector<int64_t>& PythiaSchedule();

}  // namespace garden

#endif  // GARDEN_COMMON_NAMING_STEP_SPEC_H_
