// Fixture suites for the server's tests: plain-layout checkpoints written
// into a temporary root, the store over them and a request's step tensors.
#ifndef GARDEN_TESTS_SERVER_TESTING_SUITE_H_
#define GARDEN_TESTS_SERVER_TESTING_SUITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine/step_tensors.h"
#include "server/store/checkpoint_store.h"
#include "tests/testing/test_files.h"

namespace garden::testing {

// ROOT/<model>/step<step>/{model.safetensors, config.json}.
void WritePlainCheckpoint(const std::string& root, const std::string& model,
                          int64_t step, const std::vector<TensorSpec>& tensors,
                          std::string_view config_json = R"({"hidden_size": 16})");

// A store over `roots` that rescans on every miss.
std::unique_ptr<CheckpointStore> OpenTestStore(std::vector<std::string> roots);

// `tensor` at `steps` of `model`, located as a request does (one lookup).
std::shared_ptr<const StepTensors> TensorAtSteps(
    CheckpointStore& store, const ModelKey& model,
    const std::vector<int64_t>& steps, const std::string& tensor);

// The values a fixture's F32, F16 or BF16 bytes hold, decoded exactly.
std::vector<double> DecodedValues(const TensorSpec& spec);

}  // namespace garden::testing

#endif  // GARDEN_TESTS_SERVER_TESTING_SUITE_H_
