#include "tests/server/testing/suite.h"

#include <filesystem>

#include "common/stats/histogram.h"
#include "gtest/gtest.h"

namespace garden::testing {

namespace fs = std::filesystem;

void WritePlainCheckpoint(const std::string& root, const std::string& model,
                          int64_t step, const std::vector<TensorSpec>& tensors,
                          std::string_view config_json) {
  const fs::path dir = fs::path(root) / model / ("step" + std::to_string(step));
  fs::create_directories(dir);
  WriteSafetensors((dir / "model.safetensors").string(), tensors);
  WriteFile((dir / "config.json").string(), config_json);
}

std::unique_ptr<CheckpointStore> OpenTestStore(std::vector<std::string> roots) {
  auto store =
      CheckpointStore::Open({.roots = std::move(roots),
                             .rescan_interval = std::chrono::milliseconds(0)});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::shared_ptr<const StepTensors> TensorAtSteps(
    CheckpointStore& store, const ModelKey& model,
    const std::vector<int64_t>& steps, const std::string& tensor) {
  auto snapshot = store.FindModel(model);
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  if (!snapshot.ok()) return nullptr;
  auto located = (*snapshot)->LocateAll(steps);
  EXPECT_TRUE(located.ok()) << located.status();
  if (!located.ok()) return nullptr;
  return std::make_shared<const StepTensors>(store, *std::move(located),
                                             tensor);
}

std::vector<double> DecodedValues(const TensorSpec& spec) {
  const absl::StatusOr<DType> dtype = ParseDType(spec.dtype);
  EXPECT_TRUE(dtype.ok()) << spec.dtype;
  std::vector<double> out(spec.bytes.size() / DTypeSize(*dtype));
  DecodeInto(reinterpret_cast<const uint8_t*>(spec.bytes.data()), out.size(),
             *dtype, out.data());
  return out;
}

}  // namespace garden::testing
