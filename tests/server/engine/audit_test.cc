// The audit on a planted suite: a step that serves its predecessor's bytes,
// a step that jumps away and back, and Pythia steps missing in between, each
// found exactly, with the MSD-based scores recomputed by brute force.
#include "server/engine/audit.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/testing/suite.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const ModelKey kModel{"pythia", "70m", "standard", ""};
// Pythia's published steps in [0, 512] but 4 and 32.
const std::vector<int64_t> kSteps = {0, 1, 2, 8, 16, 64, 128, 256, 512};
constexpr size_t kN = 4096;

// Per-step drift rates (MSD per step), varied so that their logs spread.
double Rate(int64_t step) {
  switch (step) {
    case 1: return 1.0e-6;
    case 2: return 1.3e-6;
    case 8: return 0.8e-6;
    case 64: return 1.1e-6;
    case 512: return 0.9e-6;
    default: return 1.0e-6;
  }
}

// embed_out.weight at each step: a random walk with the rates above, except
// that step 16 repeats step 8 and step 128 jumps far away from step 64,
// step 256 continuing from step 64 as if step 128 never happened.
std::map<int64_t, std::vector<float>> Walk() {
  std::mt19937 rng(11);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  auto step_away = [&](const std::vector<float>& from, double msd) {
    std::vector<float> to(from);
    for (float& x : to) x += static_cast<float>(std::sqrt(msd)) * unit(rng);
    return to;
  };
  std::map<int64_t, std::vector<float>> w;
  w[0] = step_away(std::vector<float>(kN, 0.0f), 4e-4);
  for (size_t k = 1; k < kSteps.size(); ++k) {
    const int64_t step = kSteps[k], prev = kSteps[k - 1];
    if (step == 16) {
      w[step] = w[prev];
    } else if (step == 128) {
      w[step] = step_away(w[prev], 1e-2);
    } else if (step == 256) {
      w[step] = step_away(w[64], Rate(step) * (256 - 64));
    } else {
      w[step] = step_away(w[prev], Rate(step) * (step - prev));
    }
  }
  return w;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [step, xs] : Walk()) {
      testing::TensorSpec spec{"embed_out.weight", "F32",
                               {64, 64}, testing::F32Bytes(xs)};
      testing::WritePlainCheckpoint(
          root_.path(), "pythia-70m", step,
          {spec, {"gpt_neox.embed_in.weight", "F32", {2}, testing::F32Bytes({1, 2})}});
      values_[step] = testing::DecodedValues(spec);
    }
    store_ = testing::OpenTestStore({root_.path()});
  }

  absl::StatusOr<AuditReport> Audit(bool all_tensors = false) {
    AuditOptions options;
    options.steps =
        testing::TensorAtSteps(*store_, kModel, kSteps, "embed_out.weight");
    options.present_steps = kSteps;
    options.all_tensors = all_tensors;
    return RunAudit(pool_, options, [] { return false; });
  }

  double Msd(int64_t a, int64_t b) {
    long double sum = 0;
    for (size_t i = 0; i < kN; ++i) {
      const long double d =
          static_cast<long double>(values_[a][i]) - values_[b][i];
      sum += d * d;
    }
    return static_cast<double>(sum / kN);
  }

  static double Median(std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    const size_t n = xs.size();
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
  }

  testing::TempDir root_;
  std::unique_ptr<CheckpointStore> store_;
  ThreadPool pool_{2};
  std::map<int64_t, std::vector<double>> values_;
};

TEST_F(AuditTest, FindsExactlyWhatWasPlanted) {
  auto report = Audit();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tensors_checked, 1u);
  // Robust z of the log rates of the pairs that moved.
  std::vector<double> logs;
  for (size_t k = 1; k < kSteps.size(); ++k) {
    const double rate =
        Msd(kSteps[k], kSteps[k - 1]) / (kSteps[k] - kSteps[k - 1]);
    if (rate > 0) logs.push_back(std::log(rate));
  }
  const double median = Median(logs);
  std::vector<double> deviations;
  for (double x : logs) deviations.push_back(std::abs(x - median));
  const double sigma = 1.4826 * Median(deviations);
  auto z = [&](int64_t a, int64_t b) {
    return (std::log(Msd(b, a) / (b - a)) - median) / sigma;
  };

  const auto& f = report->findings;
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].kind, "identical");
  EXPECT_THAT(f[0].steps, ElementsAre(8, 16));
  EXPECT_EQ(f[0].tensor, "embed_out.weight");
  EXPECT_EQ(f[0].score, 2);
  EXPECT_THAT(f[0].detail, HasSubstr("byte-identical at 2 steps (xxh3 "));
  // The jump's two rates are outliers; the others are not.
  EXPECT_EQ(f[1].kind, "discontinuity");
  EXPECT_THAT(f[1].steps, ElementsAre(64, 128));
  EXPECT_NEAR(f[1].score, z(64, 128), 1e-9);
  EXPECT_GT(f[1].score, 3.5);
  EXPECT_EQ(f[2].kind, "discontinuity");
  EXPECT_THAT(f[2].steps, ElementsAre(128, 256));
  EXPECT_NEAR(f[2].score, z(128, 256), 1e-9);
  EXPECT_GT(f[2].score, 3.5);
  EXPECT_LT(std::abs(z(256, 512)), 3.5);
  // Step 256 is closer to 64 than to 128: 128 jumped away and back.
  EXPECT_EQ(f[3].kind, "discontinuity");
  EXPECT_THAT(f[3].steps, ElementsAre(64, 128, 256));
  EXPECT_NEAR(f[3].score, Msd(256, 128) / Msd(256, 64), 1e-9 * f[3].score);
  EXPECT_EQ(f[3].detail,
            absl::StrFormat("step 256 is closer to step 64 (MSD %.4g) than to "
                            "step 128 (MSD %.4g): step 128 jumped away and back",
                            Msd(256, 64), Msd(256, 128)));
  EXPECT_EQ(f[4].kind, "missing");
  EXPECT_THAT(f[4].steps, ElementsAre(4, 32));
  EXPECT_EQ(f[4].detail, "2 published Pythia steps are absent: 4, 32");
  EXPECT_EQ(f[4].tensor, "");

  EXPECT_THAT(FlaggedSteps(*report), ElementsAre(16, 128));
}

TEST_F(AuditTest, AllTensorsHashesEveryFloatTensor) {
  auto report = Audit(/*all_tensors=*/true);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tensors_checked, 2u);
  // The constant embedding is identical at every step.
  ASSERT_GE(report->findings.size(), 2u);
  EXPECT_EQ(report->findings[0].tensor, "embed_out.weight");
  EXPECT_EQ(report->findings[1].tensor, "gpt_neox.embed_in.weight");
  EXPECT_EQ(report->findings[1].steps, kSteps);
  EXPECT_EQ(report->findings[1].score, kSteps.size());
}

TEST_F(AuditTest, WithoutFlaggedStepsLeavesTheFlaggedOut) {
  auto steps =
      testing::TensorAtSteps(*store_, kModel, kSteps, "embed_out.weight");
  auto unflagged = WithoutFlaggedSteps(pool_, steps, [] { return false; });
  ASSERT_TRUE(unflagged.ok()) << unflagged.status();
  EXPECT_THAT(unflagged->flagged, ElementsAre(16, 128));
  EXPECT_THAT(unflagged->kept->steps(),
              ElementsAre(0, 1, 2, 8, 64, 256, 512));
  EXPECT_EQ(unflagged->kept->tensor(), "embed_out.weight");

  auto twins = testing::TensorAtSteps(*store_, kModel, {8, 16},
                                      "gpt_neox.embed_in.weight");
  auto none = WithoutFlaggedSteps(pool_, twins, [] { return false; });
  ASSERT_TRUE(none.ok()) << none.status();  // the first of a group stays
  EXPECT_THAT(none->kept->steps(), ElementsAre(8));
}

TEST_F(AuditTest, CancellationStopsIt) {
  AuditOptions options;
  options.steps =
      testing::TensorAtSteps(*store_, kModel, kSteps, "embed_out.weight");
  auto report = RunAudit(pool_, options, [] { return true; });
  EXPECT_EQ(report.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace garden
