// The evaluation datasets gardend serves, registered by name at start-up
// (`--dataset lambada=/data/lambada_test.jsonl`), so that clients ask for
// "lambada" and never pass a path. The one place that knows where datasets
// live; everything else asks it by name.
#ifndef GARDEN_SERVER_STORE_DATASET_REGISTRY_H_
#define GARDEN_SERVER_STORE_DATASET_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace garden {

// One cloze dataset: the "text" of each line of a JSON-lines file, in file
// order (lambada_openai's format).
struct Dataset {
  std::string name;
  std::string path;
  std::vector<std::string> texts;
};

class DatasetRegistry {
 public:
  struct Options {
    // "name=path" each; names accept [A-Za-z0-9._-].
    std::vector<std::string> specs;
    // A file larger than this is refused: datasets are held in memory.
    uint64_t max_file_bytes = uint64_t{256} << 20;
  };

  // Reads every dataset. INVALID_ARGUMENT for a spec without "=", a bad or
  // repeated name; NOT_FOUND / PERMISSION_DENIED for a file that cannot be
  // read; DATA_LOSS naming the file and line for a line that is not a JSON
  // object with a string "text", or a file with no examples.
  static absl::StatusOr<std::unique_ptr<DatasetRegistry>> Open(
      const Options& options);

  // NOT_FOUND naming `name` and the registered names.
  absl::StatusOr<std::shared_ptr<const Dataset>> Find(
      const std::string& name) const;

  std::vector<std::shared_ptr<const Dataset>> List() const;

 private:
  DatasetRegistry() = default;
  std::map<std::string, std::shared_ptr<const Dataset>> datasets_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_STORE_DATASET_REGISTRY_H_
