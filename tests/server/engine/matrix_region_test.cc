// ResolveMatrixRegion's bounds and ReadMatrixRegion's blocks against the
// fixture's own values.
#include "server/engine/matrix_region.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/testing/suite.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::HasSubstr;

TEST(ResolveMatrixRegionTest, FillsEndsAndRefusesWhatDoesNotFit) {
  auto r = ResolveMatrixRegion({6, 10}, {.row_begin = 2, .col_begin = 3}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::vector<int64_t>({r->row_begin, r->row_end, r->col_begin, r->col_end}),
            std::vector<int64_t>({2, 6, 3, 10}));
  r = ResolveMatrixRegion({7}, {}, {});  // one row
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::vector<int64_t>({r->row_begin, r->row_end, r->col_begin, r->col_end}),
            std::vector<int64_t>({0, 1, 0, 7}));
  EXPECT_THAT(ResolveMatrixRegion({6, 10}, {.row_begin = 4, .row_end = 8}, {}).status().message(),
              HasSubstr("rows [4, 8) is not a non-empty range within [0, 6)"));
  EXPECT_THAT(ResolveMatrixRegion({6, 10}, {.col_begin = 10}, {}).status().message(),
              HasSubstr("columns [10, 10)"));
  EXPECT_THAT(ResolveMatrixRegion({2, 3, 4}, {}, {}).status().message(),
              HasSubstr("1 or 2 dimensions, not shape [2, 3, 4]"));
  EXPECT_THAT(ResolveMatrixRegion({6, 10}, {}, {.max_values = 59}).status().message(),
              HasSubstr("is 60 values; at most 59 per request"));
  EXPECT_EQ(ResolveMatrixRegion({6, 10}, {}, {.max_values = 59}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadMatrixRegionTest, HandsOnTheRectangleInBlocksOfRows) {
  testing::TempDir root;
  std::vector<float> xs(6 * 10);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.25f * static_cast<float>(i) - 3;
  const testing::TensorSpec spec{"w", "F16", {6, 10}, testing::F16Bytes(xs)};
  testing::WritePlainCheckpoint(root.path(), "pythia-70m", 0, {spec});
  auto store = testing::OpenTestStore({root.path()});
  auto where = store->Locate({"pythia", "70m", "standard", ""}, 0);
  ASSERT_TRUE(where.ok()) << where.status();
  auto tensor = store->OpenTensor(*where, "w");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  const std::vector<double> all = testing::DecodedValues(spec);

  const MatrixRegion region{.row_begin = 1, .row_end = 6, .col_begin = 2, .col_end = 5};
  std::vector<int64_t> firsts;
  std::vector<double> got;
  ASSERT_TRUE(ReadMatrixRegion(*tensor, region, {.block_values = 7}, nullptr,
                               [&](int64_t first, absl::Span<const double> v) {
                                 firsts.push_back(first);
                                 got.insert(got.end(), v.begin(), v.end());
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(firsts, std::vector<int64_t>({1, 3, 5}));  // 2 rows of 3 fit 7 values
  std::vector<double> want;
  for (int64_t r = 1; r < 6; ++r) {
    for (int64_t c = 2; c < 5; ++c) want.push_back(all[r * 10 + c]);
  }
  EXPECT_EQ(got, want);

  // A block's error stops the read; so does cancellation.
  int blocks = 0;
  EXPECT_EQ(ReadMatrixRegion(*tensor, region, {.block_values = 3}, nullptr,
                             [&](int64_t, absl::Span<const double>) {
                               ++blocks;
                               return absl::AbortedError("enough");
                             })
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(blocks, 1);
  EXPECT_EQ(ReadMatrixRegion(*tensor, region, {}, [] { return true; },
                             [](int64_t, absl::Span<const double>) { return absl::OkStatus(); })
                .code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace garden
