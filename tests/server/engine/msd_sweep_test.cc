// The MSD sweep in every mode against brute-force sums in long double over
// the fixture's decoded values: F16, BF16, F32 and a tensor whose dtype
// changes between steps, one larger than a read chunk, and the failures
// that must come before the first point.
#include "server/engine/msd_sweep.h"

#include <cmath>
#include <map>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/testing/suite.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::HasSubstr;
using testing::TensorSpec;

const ModelKey kModel{"pythia", "70m", "standard", ""};
const std::vector<int64_t> kSteps = {0, 1, 3, 4, 8, 10};

// Values that drift away from step 0 by an amount growing with the step.
std::vector<float> Drifted(int64_t step, size_t n, unsigned salt) {
  std::mt19937 base_rng(salt);
  std::mt19937 step_rng(salt * 1000 + static_cast<unsigned>(step));
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> xs(n);
  for (float& x : xs) {
    x = dist(base_rng) + 0.1f * std::sqrt(static_cast<float>(step)) *
                             dist(step_rng);
  }
  return xs;
}

TensorSpec Spec(const std::string& name, const std::string& dtype,
                std::vector<int64_t> shape, const std::vector<float>& xs) {
  std::string bytes = dtype == "F16"    ? testing::F16Bytes(xs)
                      : dtype == "BF16" ? testing::BF16Bytes(xs)
                                        : testing::F32Bytes(xs);
  return {name, dtype, std::move(shape), std::move(bytes)};
}

std::vector<TensorSpec> Checkpoint(int64_t step) {
  return {
      Spec("f16", "F16", {16, 33}, Drifted(step, 16 * 33, 1)),
      Spec("bf16", "BF16", {5, 7}, Drifted(step, 35, 2)),
      Spec("f32", "F32", {3, 11}, Drifted(step, 33, 3)),
      // F16 except at step 4: pairs of different dtypes.
      Spec("mixed", step == 4 ? "F32" : "F16", {9}, Drifted(step, 9, 4)),
      // More than one 4 MiB read chunk.
      Spec("big", "F16", {1025, 2049}, Drifted(step, 1025 * 2049, 5)),
      // Its shape changes at step 8.
      Spec("reshaped", "F16", step == 8 ? std::vector<int64_t>{4, 2}
                                        : std::vector<int64_t>{2, 4},
           Drifted(0, 8, 6)),
      {"ids", "I64", {2}, std::string(16, '\0')},
  };
}

class MsdSweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int64_t step : kSteps) {
      const auto tensors = Checkpoint(step);
      testing::WritePlainCheckpoint(root_.path(), "pythia-70m", step, tensors);
      for (const auto& t : tensors) {
        if (t.dtype != "I64") values_[t.name][step] = testing::DecodedValues(t);
      }
    }
    store_ = testing::OpenTestStore({root_.path()});
  }

  // Runs a sweep; the points it gave and its status.
  std::pair<std::vector<MsdPoint>, absl::Status> Run(
      const std::string& tensor, MsdSweepOptions::Mode mode,
      int64_t reference_step = 0, std::vector<int64_t> steps = kSteps,
      size_t stop_after = SIZE_MAX) {
    MsdSweepOptions options;
    options.steps = testing::TensorAtSteps(*store_, kModel, steps, tensor);
    options.mode = mode;
    options.reference_step = reference_step;
    std::vector<MsdPoint> points;
    const absl::Status status = RunMsdSweep(
        pool_, options,
        [&](const MsdPoint& p) {
          points.push_back(p);
          return points.size() < stop_after;
        },
        [] { return false; });
    return {points, status};
  }

  // mean((w(a) - w(b))^2) over the decoded values, in long double.
  double Msd(const std::string& tensor, int64_t a, int64_t b) {
    const auto& x = values_[tensor][a];
    const auto& y = values_[tensor][b];
    long double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const long double d = static_cast<long double>(x[i]) - y[i];
      sum += d * d;
    }
    return static_cast<double>(sum / x.size());
  }

  testing::TempDir root_;
  std::unique_ptr<CheckpointStore> store_;
  ThreadPool pool_{3};
  std::map<std::string, std::map<int64_t, std::vector<double>>> values_;
};

const std::vector<std::string> kTensors = {"f16", "bf16", "f32", "mixed",
                                           "big"};

TEST_F(MsdSweepTest, ReferenceModeMatchesBruteForceFromAnyReference) {
  for (const std::string& tensor : kTensors) {
    for (int64_t t0 : {int64_t{0}, int64_t{4}}) {
      auto [points, status] = Run(tensor, MsdSweepOptions::Mode::kReference, t0);
      ASSERT_TRUE(status.ok()) << tensor << ": " << status;
      ASSERT_EQ(points.size(), kSteps.size());
      for (size_t i = 0; i < kSteps.size(); ++i) {
        const MsdPoint& p = points[i];
        EXPECT_EQ(p.step, kSteps[i]);
        EXPECT_EQ(p.from_step, t0);
        EXPECT_EQ(p.n, values_[tensor][0].size());
        const double want = Msd(tensor, kSteps[i], t0);
        EXPECT_NEAR(p.msd, want, 1e-12 * want) << tensor << " step " << p.step;
        if (kSteps[i] == t0) {
          EXPECT_EQ(p.msd, 0.0);
        }
        EXPECT_FALSE(p.msd_before_previous.has_value());
      }
    }
  }
}

TEST_F(MsdSweepTest, ConsecutiveModeMatchesBruteForceWithTheStepBefore) {
  for (const std::string& tensor : kTensors) {
    auto [points, status] = Run(tensor, MsdSweepOptions::Mode::kConsecutive);
    ASSERT_TRUE(status.ok()) << tensor << ": " << status;
    ASSERT_EQ(points.size(), kSteps.size());
    EXPECT_EQ(points[0].step, 0);
    EXPECT_EQ(points[0].from_step, 0);
    EXPECT_EQ(points[0].msd, 0.0);
    for (size_t k = 1; k < kSteps.size(); ++k) {
      const MsdPoint& p = points[k];
      EXPECT_EQ(p.step, kSteps[k]);
      EXPECT_EQ(p.from_step, kSteps[k - 1]);
      const double want = Msd(tensor, kSteps[k], kSteps[k - 1]);
      EXPECT_NEAR(p.msd, want, 1e-12 * want) << tensor << " step " << p.step;
      EXPECT_NEAR(p.rate, want / (kSteps[k] - kSteps[k - 1]), 1e-12 * want);
      if (k == 1) {
        EXPECT_FALSE(p.msd_before_previous.has_value());
        continue;
      }
      ASSERT_TRUE(p.msd_before_previous.has_value());
      EXPECT_EQ(p.before_previous_step, kSteps[k - 2]);
      const double before = Msd(tensor, kSteps[k], kSteps[k - 2]);
      EXPECT_NEAR(*p.msd_before_previous, before, 1e-12 * before);
    }
  }
}

TEST_F(MsdSweepTest, LagModeAveragesEveryPairTauApart) {
  for (const std::string& tensor : kTensors) {
    auto [points, status] = Run(tensor, MsdSweepOptions::Mode::kLag);
    ASSERT_TRUE(status.ok()) << tensor << ": " << status;
    std::map<int64_t, std::vector<double>> pairs;
    for (size_t i = 0; i < kSteps.size(); ++i) {
      for (size_t j = i + 1; j < kSteps.size(); ++j) {
        pairs[kSteps[j] - kSteps[i]].push_back(Msd(tensor, kSteps[j], kSteps[i]));
      }
    }
    ASSERT_EQ(points.size(), pairs.size()) << tensor;
    size_t i = 0;
    for (const auto& [tau, msds] : pairs) {
      const MsdPoint& p = points[i++];
      EXPECT_EQ(p.step, tau);
      EXPECT_EQ(p.pairs, msds.size());
      long double sum = 0;
      for (double m : msds) sum += m;
      const double want = static_cast<double>(sum / msds.size());
      // The Gram matrix subtracts large sums: a looser bound.
      EXPECT_NEAR(p.msd, want, 1e-9 * want) << tensor << " tau " << tau;
    }
  }
}

TEST_F(MsdSweepTest, HeadersAreCheckedBeforeThePoints) {
  for (auto mode : {MsdSweepOptions::Mode::kReference,
                    MsdSweepOptions::Mode::kConsecutive,
                    MsdSweepOptions::Mode::kLag}) {
    for (const auto& [tensor, message] :
         {std::pair<std::string, std::string>{
              "reshaped",
              "tensor \"reshaped\" of pythia-70m has shape [4, 2] at step 8 "
              "but [2, 4] at step 0; MSD needs one shape"},
          {"ids",
           "\"ids\" of pythia-70m step 0 has dtype I64; MSD needs F64, F32, "
           "F16 or BF16"}}) {
      auto [points, status] = Run(tensor, mode);
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(status.message(), HasSubstr(message));
      EXPECT_TRUE(points.empty());
    }
  }
}

TEST_F(MsdSweepTest, BadSelectionsAreInvalidArguments) {
  auto [points, status] = Run("f16", MsdSweepOptions::Mode::kReference, 2);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("reference step 2 is not among the selected steps"));
  EXPECT_TRUE(points.empty());
  auto [lags, one] = Run("f16", MsdSweepOptions::Mode::kLag, 0, {4});
  EXPECT_EQ(one.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(one.message(), HasSubstr("the lag mode needs at least 2 steps"));
}

TEST_F(MsdSweepTest, StopsWhenTheConsumerStops) {
  for (auto mode : {MsdSweepOptions::Mode::kReference,
                    MsdSweepOptions::Mode::kConsecutive}) {
    auto [points, status] = Run("f16", mode, 0, kSteps, /*stop_after=*/2);
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(points.size(), 2u);
  }
}

}  // namespace
}  // namespace garden
