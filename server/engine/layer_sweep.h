// `garden layers`: per step and per matrix, the statistics of
// common/stats/matrix_stats.h and the spectra of common/stats/spectrum.h.
// Each matrix is read whole (decoded to double) once; results are cached by
// the tensor's content (XXH3 of its bytes, dtype and shape), whether the
// spectrum was asked for and how, so a step whose tensor is a byte copy of
// another costs a read and a hash; and the content hash by the file's
// identity, so a repeated request costs one open and a stat per file.
#ifndef GARDEN_SERVER_ENGINE_LAYER_SWEEP_H_
#define GARDEN_SERVER_ENGINE_LAYER_SWEEP_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/naming/layer_names.h"
#include "common/spectral/singular_values.h"
#include "common/stats/matrix_stats.h"
#include "common/stats/spectrum.h"
#include "server/store/checkpoint_store.h"

namespace garden {

struct LayerRecord {
  int64_t step = 0;
  std::string tensor;
  LayerName name;
  std::vector<int64_t> shape;
  MatrixStats stats;
  std::optional<SpectrumStats> spectrum;  // when asked for
  std::string spectrum_method;            // "svd" or "gram"
  std::vector<double> eigenvalues;        // with options.eigenvalues: the ESD, descending
};

// What one matrix gave, by content; thread-safe, least recently used out.
class LayerStatsCache {
 public:
  explicit LayerStatsCache(size_t max_entries = 4096) : max_entries_(max_entries) {}

  struct Entry {
    MatrixStats stats;
    std::optional<SpectrumStats> spectrum;
    std::string spectrum_method;
    std::vector<double> singular_values;  // with the spectrum, descending
  };
  struct Key {
    uint64_t content = 0;  // XXH3 of the bytes, dtype and shape
    bool spectral = false;
    SpectrumMethod method = SpectrumMethod::kAuto;
    auto operator<=>(const Key&) const = default;
  };

  std::optional<Entry> Find(const Key& key);
  void Put(const Key& key, Entry entry);

  // A file's tensor as last read: the file's identity (device, inode, size,
  // modification time) and the tensor's name, to its content hash, so that
  // a repeated request finds its entries without reading the tensor again.
  // A file rewritten in place has another size or time, and is read.
  struct FileTensor {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0;
    std::string tensor;
    auto operator<=>(const FileTensor&) const = default;
  };
  std::optional<uint64_t> HashOf(const FileTensor& key) const;
  void RememberHash(const FileTensor& key, uint64_t hash);

 private:
  mutable std::mutex mu_;
  size_t max_entries_;
  std::map<FileTensor, uint64_t> hashes_;  // at most max_entries_ * 4
  std::list<std::pair<Key, Entry>> lru_;  // most recent first
  std::map<Key, std::list<std::pair<Key, Entry>>::iterator> index_;
};

struct LayerSweepOptions {
  std::vector<CheckpointLocation> steps;  // in the order to report
  // RE2 syntax, matched anywhere in the name; empty: every 2-D ".weight".
  std::string tensors_regex;
  bool spectral = true;
  // Also hand on each matrix's eigenvalues sigma^2 / N (implies spectral).
  bool eigenvalues = false;
  std::vector<double> sparsity_thresholds = DefaultSparsityThresholds();
  SingularValuesOptions singular_values;
};

// Calls `emit` for each step in order and each matched tensor by name.
// The regex's matches that are not 2-D float matrices (biases, layer norms)
// are left out. INVALID_ARGUMENT for a regex RE2 cannot compile; NOT_FOUND
// when it matches no tensor of a step (naming some that exist);
// FAILED_PRECONDITION when it matches tensors but no 2-D float matrix;
// RESOURCE_EXHAUSTED for a matrix too large for an exact spectrum
// (ComputeSingularValues), naming it; the store's and the file's errors as
// they come; CANCELLED once `cancelled` says so.
absl::Status RunLayerSweep(CheckpointStore& store, LayerStatsCache& cache,
                           const LayerSweepOptions& options,
                           const std::function<bool()>& cancelled,
                           const std::function<absl::Status(const LayerRecord&)>& emit);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_LAYER_SWEEP_H_
