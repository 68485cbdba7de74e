#include "server/engine/layer_sweep.h"

#include <xxhash.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/formats/dtype.h"
#include "common/stats/histogram.h"
#include "re2/re2.h"

namespace garden {

std::optional<LayerStatsCache::Entry> LayerStatsCache::Find(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++hits_;
  return it->second->second;
}

void LayerStatsCache::Put(const Key& key, Entry entry) {
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, std::move(entry));
  index_[key] = lru_.begin();
  while (lru_.size() > max_entries_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

uint64_t LayerStatsCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

namespace {

// The tensors of one step the sweep visits, by name.
absl::StatusOr<std::vector<TensorListing>> Matched(const std::vector<TensorListing>& listed,
                                                   const RE2* pattern, const std::string& regex) {
  std::vector<TensorListing> out;
  for (const TensorListing& t : listed) {
    const bool matrix = t.info.shape.size() == 2 && IsAnalysableFloat(t.info.dtype);
    if (pattern == nullptr ? matrix && t.info.name.ends_with(".weight")
                           : RE2::PartialMatch(t.info.name, *pattern)) {
      if (!matrix) {
        return absl::FailedPreconditionError(absl::StrCat(
            "tensor \"", t.info.name, "\" (", ToAbsl(DTypeName(t.info.dtype)), ", ",
            t.info.shape.size(), " dimensions) matches --tensors \"", regex,
            "\" but is not a 2-D float matrix"));
      }
      out.push_back(t);
    }
  }
  if (out.empty()) {
    std::vector<std::string> some;
    for (size_t i = 0; i < listed.size() && some.size() < 8; ++i) some.push_back(listed[i].info.name);
    return absl::NotFoundError(absl::StrCat(
        "no tensor matches --tensors \"", regex, "\"; the checkpoint has ", listed.size(),
        " tensors, e.g. ", absl::StrJoin(some, ", ")));
  }
  return out;
}

}  // namespace

absl::Status RunLayerSweep(CheckpointStore& store, LayerStatsCache& cache,
                           const LayerSweepOptions& options,
                           const std::function<bool()>& cancelled,
                           const std::function<absl::Status(const LayerRecord&)>& emit) {
  std::optional<RE2> pattern;
  if (!options.tensors_regex.empty()) {
    pattern.emplace(options.tensors_regex, RE2::Quiet);
    if (!pattern->ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tensors \"", options.tensors_regex, "\" is not a regular expression: ",
          pattern->error()));
    }
  }
  for (const CheckpointLocation& where : options.steps) {
    ASSIGN_OR_RETURN(const std::vector<TensorListing> listed, store.ListTensors(where));
    ASSIGN_OR_RETURN(const std::vector<TensorListing> matched,
                     Matched(listed, pattern ? &*pattern : nullptr, options.tensors_regex));
    for (const TensorListing& t : matched) {
      if (cancelled && cancelled()) return absl::CancelledError("layers cancelled");
      ASSIGN_OR_RETURN(const TensorHandle handle, store.OpenTensor(where, t.info.name));
      const TensorInfo& info = *handle.info;
      const uint64_t numel = info.numel();
      std::vector<uint8_t> bytes(numel * DTypeSize(info.dtype));
      RETURN_IF_ERROR(handle.file->ReadElements(info, 0, absl::MakeSpan(bytes)));
      uint64_t hash = XXH3_64bits(bytes.data(), bytes.size());
      const int64_t header[3] = {static_cast<int64_t>(info.dtype), info.shape[0], info.shape[1]};
      hash = XXH3_64bits_withSeed(header, sizeof header, hash);
      const LayerStatsCache::Key key{hash, options.spectral};
      std::optional<LayerStatsCache::Entry> entry = cache.Find(key);
      if (!entry) {
        std::vector<double> values(numel);
        DecodeInto(bytes.data(), numel, info.dtype, values.data());
        bytes = {};
        entry.emplace();
        entry->stats = ComputeMatrixStats(values, options.sparsity_thresholds);
        if (options.spectral) {
          ASSIGN_OR_RETURN(const SingularValues sv,
                           ComputeSingularValues(values, info.shape[0], info.shape[1],
                                                 options.singular_values));
          const double frob2 = entry->stats.frobenius * entry->stats.frobenius;
          entry->spectrum = ComputeSpectrumStats(sv.values, info.shape[0], info.shape[1], frob2,
                                                 entry->stats.std * entry->stats.std);
          entry->spectrum_method = sv.method;
        }
        cache.Put(key, *entry);
      }
      LayerRecord record;
      record.step = where.step;
      record.tensor = info.name;
      record.name = ParseLayerName(info.name);
      record.shape = info.shape;
      record.stats = std::move(entry->stats);
      record.spectrum = std::move(entry->spectrum);
      record.spectrum_method = std::move(entry->spectrum_method);
      RETURN_IF_ERROR(emit(record));
    }
  }
  return absl::OkStatus();
}

}  // namespace garden
