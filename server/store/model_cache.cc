#include "server/store/model_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include <xxhash.h>

#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/naming/names.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

// Bytes one parameter takes once loaded.
uint64_t ComputeBytes(const std::string& dtype) {
  return dtype == "float32" ? 4 : 2;
}

}  // namespace

ModelCache::ModelCache(const CheckpointStore& store, Options options)
    : store_(store), options_(std::move(options)) {}

absl::StatusOr<std::pair<std::shared_ptr<const GptNeoxModel>, uint64_t>>
ModelCache::Load(const CheckpointLocation& where) const {
  ASSIGN_OR_RETURN(const std::string config_text, store_.ReadConfig(where));
  if (config_text.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where.model.Name(), " step ", where.step, " has no ",
                     where.dir, "/config.json, so no model can be built"));
  }
  auto config = GptNeoxConfig::FromJson(config_text);
  if (!config.ok()) {
    // One rule for files on the server (INVALID_ARGUMENT is for what a
    // request says): bytes that are not JSON are DATA_LOSS; JSON that
    // describes no model gardend can build, FAILED_PRECONDITION.
    absl::StatusCode code = config.status().code();
    if (code == absl::StatusCode::kInvalidArgument) {
      code = nlohmann::json::accept(config_text) ? absl::StatusCode::kFailedPrecondition
                                                 : absl::StatusCode::kDataLoss;
    }
    // The parser's messages start with "config.json: "; say which one.
    return absl::Status(code, absl::StrCat(where.model.Name(), " step ", where.step,
                                           ": ", where.dir, "/",
                                           config.status().message()));
  }
  ASSIGN_OR_RETURN(const auto files, store_.OpenWeightFiles(where, /*whole=*/true));
  std::vector<std::shared_ptr<const TensorFile>> opened;
  uint64_t parameters = 0;
  for (const auto& f : files) {
    opened.push_back(f.file);
    // What the model holds: not the buffers .bin files carry beside it.
    for (const auto& t : f.file->tensors()) {
      if (!IsNonParameterBuffer(t.name)) parameters += t.numel();
    }
  }
  TensorFileWeightSource source(std::move(opened));
  LoadOptions load;
  load.device = options_.device;
  load.dtype = options_.dtype;
  ASSIGN_OR_RETURN(std::shared_ptr<const GptNeoxModel> model,
                   GptNeoxModel::Load(*config, source, load));
  spdlog::info("loaded {} step {} on {} ({} parameters)", where.model.Name(),
               where.step, model->device(), parameters);
  return std::make_pair(std::move(model),
                        parameters * ComputeBytes(options_.dtype));
}

absl::StatusOr<std::shared_ptr<const GptNeoxModel>> ModelCache::Model(
    const CheckpointLocation& where) {
  const Key key{where.model.Name(), where.step};
  std::shared_ptr<Slot> slot;
  {
    std::unique_lock lock(mu_);
    auto it = slots_.find(key);
    if (it == slots_.end()) {
      ++misses_;
      slot = std::make_shared<Slot>();
      slots_[key] = slot;
    } else {
      ++hits_;
      slot = it->second;
      loaded_.wait(lock, [&] { return slot->ready; });
      if (slot->model.ok() && slots_.count(key)) {
        recency_.remove(key);
        recency_.push_front(key);
      }
      return slot->model;
    }
  }
  auto result = Load(where);  // outside the lock: loads take seconds
  {
    std::lock_guard lock(mu_);
    slot->ready = true;
    if (result.ok()) {
      slot->model = result->first;
      slot->bytes = result->second;
      used_bytes_ += slot->bytes;
      recency_.push_front(key);
      EvictLocked(key);
    } else {
      slot->model = result.status();
      slots_.erase(key);  // the next request tries again
    }
  }
  loaded_.notify_all();
  RETURN_IF_ERROR(result.status());
  return result->first;
}

void ModelCache::EvictLocked(const Key& keep) {
  while (used_bytes_ > options_.capacity_bytes && !recency_.empty()) {
    const Key victim = recency_.back();
    if (victim == keep) break;  // one model over the budget is still served
    recency_.pop_back();
    auto it = slots_.find(victim);
    if (it == slots_.end()) continue;
    used_bytes_ -= it->second->bytes;
    ++evictions_;
    spdlog::info("evicted {} step {} from the model cache", victim.first,
                 victim.second);
    slots_.erase(it);
  }
}

uint64_t ModelCache::cached_bytes() const {
  std::lock_guard lock(mu_);
  return used_bytes_;
}

ModelCache::Stats ModelCache::stats() const {
  std::lock_guard lock(mu_);
  return {.hits = hits_,
          .misses = misses_,
          .evictions = evictions_,
          .bytes = used_bytes_,
          .models = recency_.size(),
          .tokenizer_loads = tokenizer_loads_};
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> ModelCache::TokenizerFor(
    const CheckpointLocation& where) {
  ASSIGN_OR_RETURN(const std::string beside, store_.TokenizerPath(where));
  const std::string path = beside.empty() ? options_.fallback_tokenizer : beside;
  if (path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no tokenizer for ", where.model.Name(), " step ",
                     where.step, ": looked for ", where.dir,
                     "/tokenizer.json, and gardend has no --tokenizer file"));
  }
  // The file as it is now: a load (or a failure) is kept until it changes.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(path, errno, "cannot read the tokenizer");
  }
  const FileStamp stamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                        static_cast<uint64_t>(st.st_size),
                        static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                            st.st_mtim.tv_nsec};
  std::shared_ptr<TokenizerSlot> slot;
  {
    std::unique_lock lock(mu_);
    auto it = tokenizers_.find(path);
    if (it != tokenizers_.end() && it->second->stamp == stamp) {
      slot = it->second;
      // Concurrent requests for one file wait for the one load.
      loaded_.wait(lock, [&] { return slot->ready; });
      return slot->tokenizer;
    }
    slot = std::make_shared<TokenizerSlot>();
    slot->stamp = stamp;
    tokenizers_[path] = slot;
  }
  absl::StatusOr<std::shared_ptr<const Tokenizer>> result = LoadTokenizer(path);
  {
    std::lock_guard lock(mu_);
    slot->tokenizer = result;
    slot->ready = true;
  }
  loaded_.notify_all();
  return result;
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> ModelCache::LoadTokenizer(
    const std::string& path) {
  {
    std::lock_guard lock(mu_);
    ++tokenizer_loads_;
  }
  ASSIGN_OR_RETURN(const std::string bytes,
                   ReadFileAtMost(path, kMaxTokenizerBytes, absl::StatusCode::kFailedPrecondition));
  const XXH128_hash_t hash = XXH3_128bits(bytes.data(), bytes.size());
  const auto content = std::make_tuple(hash.high64, hash.low64, bytes.size());
  {
    std::lock_guard lock(mu_);
    auto it = tokenizers_by_content_.find(content);
    if (it != tokenizers_by_content_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> shared,
                   Tokenizer::FromJson(bytes, path));
  std::lock_guard lock(mu_);
  return tokenizers_by_content_.try_emplace(content, std::move(shared)).first->second;
}

}  // namespace garden
