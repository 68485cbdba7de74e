// Bimodality on planted data: an equal mixture of N(-mu, 1) and N(mu, 1) is
// bimodal only for mu > 1, and its dip reaches 5 % near mu = 1.15.
#include "common/stats/bifurcation.h"

#include <cmath>
#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace garden {
namespace {

struct Planted {
  Histogram histogram;
  ValueSummary summary;
};

Planted Mixture(double mu, size_t n, unsigned seed, uint32_t bins = 1024) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> unit(0, 1);
  std::vector<double> xs(n);
  for (size_t i = 0; i < n; ++i) xs[i] = unit(rng) + (i % 2 ? mu : -mu);
  const auto bytes = absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(xs.data()), n * sizeof(double));
  auto summary = ScanValues(bytes, DType::kF64, nullptr);
  const auto [lo, hi] =
      AutoRange(summary->summary.min, summary->summary.max, bins);
  auto binner = *Binner::Create(lo, hi, bins);
  auto scan = ScanValues(bytes, DType::kF64, &binner);
  return {*scan->histogram, scan->summary};
}

TEST(BimodalityCoefficientTest, KnownDistributions) {
  // Normal: g = 0, k = 0 -> 1/3 for large n; uniform: k = -1.2 -> 1/1.8.
  EXPECT_NEAR(BimodalityCoefficient(0, 0, 1e9), 1.0 / 3, 1e-8);
  EXPECT_NEAR(BimodalityCoefficient(0, -1.2, 1e9), 1 / 1.8, 1e-8);
  // Finite-sample correction: n = 10 -> 3 * 81 / 56.
  EXPECT_NEAR(BimodalityCoefficient(1, 0, 10), 2 / (3.0 * 81 / 56), 1e-12);
  EXPECT_TRUE(std::isnan(BimodalityCoefficient(0, 0, 3)));
  EXPECT_TRUE(std::isnan(BimodalityCoefficient(NAN, 0, 100)));
}

TEST(AnalyzeShapeTest, UnimodalBelowTheThreshold) {
  for (double mu : {0.0, 0.5, 0.9}) {
    const Planted p = Mixture(mu, 1'000'000, 7);
    const StepShape shape = AnalyzeShape(p.histogram, p.summary, {});
    EXPECT_FALSE(shape.bimodal) << "mu " << mu << " dip " << shape.dip;
    EXPECT_LT(shape.dip, 0.05) << "mu " << mu;
    EXPECT_LT(shape.bc, 5.0 / 9) << "mu " << mu;
  }
}

TEST(AnalyzeShapeTest, BimodalAboveTheThreshold) {
  for (double mu : {1.4, 2.0, 3.0}) {
    const Planted p = Mixture(mu, 1'000'000, 8);
    const StepShape shape = AnalyzeShape(p.histogram, p.summary, {});
    EXPECT_TRUE(shape.bimodal) << "mu " << mu << " dip " << shape.dip;
    ASSERT_GE(shape.modes.size(), 2u);
    // The two largest modes sit near -mu and +mu (closer to 0 while the
    // components overlap).
    std::vector<Mode> top = shape.modes;
    std::sort(top.begin(), top.end(),
              [](const Mode& a, const Mode& b) { return a.height > b.height; });
    const double left = std::min(top[0].location, top[1].location);
    const double right = std::max(top[0].location, top[1].location);
    EXPECT_NEAR(left, -mu, 0.35 * mu) << "mu " << mu;
    EXPECT_NEAR(right, mu, 0.35 * mu) << "mu " << mu;
  }
  // Well separated: the density between the modes nearly vanishes.
  const Planted far = Mixture(3.0, 1'000'000, 9);
  EXPECT_GT(AnalyzeShape(far.histogram, far.summary, {}).dip, 0.9);
}

TEST(AnalyzeShapeTest, DipCrossesFivePercentNearOnePointOneFive) {
  const Planted below = Mixture(1.05, 4'000'000, 10);
  EXPECT_LT(AnalyzeShape(below.histogram, below.summary, {}).dip, 0.05);
  const Planted above = Mixture(1.3, 4'000'000, 11);
  EXPECT_GT(AnalyzeShape(above.histogram, above.summary, {}).dip, 0.05);
  // The threshold is an option.
  BifurcationOptions strict;
  strict.min_dip = 0.5;
  EXPECT_FALSE(AnalyzeShape(above.histogram, above.summary, strict).bimodal);
}

TEST(BifurcationOnsetTest, FirstPersistentRun) {
  EXPECT_EQ(BifurcationOnset({false, true, false, true, true, true}, 2), 3u);
  EXPECT_EQ(BifurcationOnset({false, true, false, true, true, true}, 1), 1u);
  EXPECT_EQ(BifurcationOnset({false, true, false, true, true, true}, 3), 3u);
  EXPECT_EQ(BifurcationOnset({false, true, false, true}, 2), std::nullopt);
  EXPECT_EQ(BifurcationOnset({}, 2), std::nullopt);
}

TEST(BifurcationOnsetTest, PlantedSplitIsFoundAtItsCheckpoint) {
  // mu/sigma below 0.9 before checkpoint 5, at least 1.4 from it on.
  const std::vector<double> mus = {0.0, 0.3, 0.6, 0.8, 0.9, 1.4, 1.6, 1.9, 2.2};
  std::vector<bool> bimodal;
  for (size_t i = 0; i < mus.size(); ++i) {
    const Planted p = Mixture(mus[i], 400'000, 100 + i);
    bimodal.push_back(AnalyzeShape(p.histogram, p.summary, {}).bimodal);
  }
  EXPECT_EQ(BifurcationOnset(bimodal, 2), 5u);
}

}  // namespace
}  // namespace garden
