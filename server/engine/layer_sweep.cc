#include "server/engine/layer_sweep.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>


#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/formats/dtype.h"
#include "common/naming/names.h"
#include "common/stats/histogram.h"
#include "re2/re2.h"

namespace garden {

std::optional<LayerStatsCache::Entry> LayerStatsCache::Find(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
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

std::optional<uint64_t> LayerStatsCache::HashOf(const FileTensor& key) const {
  std::lock_guard lock(mu_);
  auto it = hashes_.find(key);
  if (it == hashes_.end()) return std::nullopt;
  return it->second;
}

void LayerStatsCache::RememberHash(const FileTensor& key, uint64_t hash) {
  std::lock_guard lock(mu_);
  if (hashes_.size() >= 4 * max_entries_) hashes_.clear();  // rare: start afresh
  hashes_[key] = hash;
}

namespace {

// The tensors of one step the sweep visits, by name: the 2-D float
// matrices the regex matches (every 2-D ".weight" without one).
absl::StatusOr<std::vector<TensorHandle>> Matched(const std::vector<TensorHandle>& listed,
                                                  const RE2* pattern, const std::string& regex) {
  std::vector<TensorHandle> out;
  const TensorInfo* not_a_matrix = nullptr;
  for (const TensorHandle& t : listed) {
    const TensorInfo& info = *t.info;
    const bool matrix = info.shape.size() == 2 && IsAnalysableFloat(info.dtype);
    if (pattern == nullptr ? !(matrix && info.name.ends_with(".weight"))
                           : !RE2::PartialMatch(info.name, *pattern)) {
      continue;
    }
    if (matrix) {
      out.push_back(t);
    } else if (not_a_matrix == nullptr) {
      not_a_matrix = &info;
    }
  }
  if (out.empty() && not_a_matrix != nullptr) {
    const TensorInfo& info = *not_a_matrix;
    return absl::FailedPreconditionError(absl::StrCat(
        "--tensors \"", regex, "\" matches no 2-D float matrix, only tensors such as \"",
        info.name, "\" (", ToAbsl(DTypeName(info.dtype)), ", ", info.shape.size(),
        " dimensions)"));
  }
  if (out.empty()) {
    std::vector<std::string> names;
    for (const TensorHandle& t : listed) names.push_back(t.info->name);
    return absl::NotFoundError(absl::StrCat(
        "no tensor matches --tensors \"", regex, "\"; the checkpoint has ", listed.size(),
        " tensors, the closest: ", absl::StrJoin(ClosestNames(regex, names, 3, /*anywhere=*/true), ", ")));
  }
  return out;
}

// The identity of `file` now (device, inode, size, modification time);
// empty when it cannot be told (then its tensors are read and hashed every
// time).
std::optional<LayerStatsCache::FileTensor> FileIdentity(const TensorFile& file) {
  struct stat st;
  if (::stat(file.path().c_str(), &st) != 0) return std::nullopt;
  return LayerStatsCache::FileTensor{
      .device = static_cast<uint64_t>(st.st_dev),
      .inode = static_cast<uint64_t>(st.st_ino),
      .size = static_cast<uint64_t>(st.st_size),
      .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// One matrix's record at `where`: from the cache when its file (or its
// content) was seen, else read, decoded and computed.
// `file`: FileIdentity of the tensor's file (its tensor name is set here).
absl::StatusOr<LayerRecord> MatrixRecord(LayerStatsCache& cache, const CheckpointLocation& where,
                                         const TensorHandle& handle,
                                         std::optional<LayerStatsCache::FileTensor> file,
                                         const LayerSweepOptions& options) {
  const TensorInfo& info = *handle.info;
  const uint64_t numel = info.numel();
  if (file) file->tensor = info.name;
  std::optional<uint64_t> hash = file ? cache.HashOf(*file) : std::nullopt;
  std::optional<LayerStatsCache::Entry> entry;
  const bool spectral = options.spectral || options.eigenvalues;
  const auto key = [&] {
    return LayerStatsCache::Key{*hash, spectral, options.singular_values.method};
  };
  if (hash) entry = cache.Find(key());
  std::vector<uint8_t> bytes;
  if (!entry) {
    bytes.resize(numel * DTypeSize(info.dtype));
    RETURN_IF_ERROR(handle.file->ReadElements(info, 0, absl::MakeSpan(bytes)));
    hash = XXH3_64bits(bytes.data(), bytes.size());
    const int64_t header[3] = {static_cast<int64_t>(info.dtype), info.shape[0], info.shape[1]};
    hash = XXH3_64bits_withSeed(header, sizeof header, *hash);
    if (file) cache.RememberHash(*file, *hash);
    entry = cache.Find(key());
  }
  if (!entry) {
    std::vector<double> values(numel);
    DecodeInto(bytes.data(), numel, info.dtype, values.data());
    bytes = {};
    entry.emplace();
    entry->stats = ComputeMatrixStats(values, options.sparsity_thresholds);
    if (spectral) {
      absl::StatusOr<SingularValues> computed = ComputeSingularValues(
          values, info.shape[0], info.shape[1], options.singular_values);
      if (!computed.ok()) {
        return Annotate(computed.status(), absl::StrCat("tensor \"", info.name, "\""));
      }
      const SingularValues& sv = *computed;
      const double frob2 = entry->stats.frobenius * entry->stats.frobenius;
      entry->spectrum = ComputeSpectrumStats(sv.values, info.shape[0], info.shape[1], frob2,
                                             entry->stats.std * entry->stats.std);
      entry->spectrum_method = sv.method;
      entry->singular_values = sv.values;
    }
    cache.Put(key(), *entry);
  }
  LayerRecord record;
  record.step = where.step;
  record.tensor = info.name;
  record.name = ParseLayerName(info.name);
  record.shape = info.shape;
  record.stats = std::move(entry->stats);
  record.spectrum = std::move(entry->spectrum);
  record.spectrum_method = std::move(entry->spectrum_method);
  if (options.eigenvalues) {
    const auto big = static_cast<double>(std::max(info.shape[0], info.shape[1]));
    for (double sigma : entry->singular_values) record.eigenvalues.push_back(sigma * sigma / big);
  }
  return record;
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
    ASSIGN_OR_RETURN(const std::vector<TensorHandle> listed, store.OpenAllTensors(where));
    ASSIGN_OR_RETURN(const std::vector<TensorHandle> matched,
                     Matched(listed, pattern ? &*pattern : nullptr, options.tensors_regex));
    // One stat per file of the step.
    std::map<const TensorFile*, std::optional<LayerStatsCache::FileTensor>> identities;
    for (const TensorHandle& t : matched) {
      if (cancelled && cancelled()) return absl::CancelledError("layers cancelled");
      auto [it, fresh] = identities.try_emplace(t.file.get());
      if (fresh) it->second = FileIdentity(*t.file);
      ASSIGN_OR_RETURN(const LayerRecord record,
                       MatrixRecord(cache, where, t, it->second, options));
      RETURN_IF_ERROR(emit(record));
    }
  }
  return absl::OkStatus();
}

}  // namespace garden
