#include "server/store/checkpoint_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/formats/byte_source.h"
#include "common/formats/open_tensor_file.h"
#include "common/naming/step_spec.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

// How Hugging Face names a checkpoint's weights, in the order they are
// preferred: safetensors where a checkpoint has both.
struct WeightNames {
  std::string_view single;  // one file
  std::string_view index;   // the shard index beside the shards
};
constexpr WeightNames kWeightFormats[] = {
    {"model.safetensors", "model.safetensors.index.json"},
    {"pytorch_model.bin", "pytorch_model.bin.index.json"},
};
constexpr std::string_view kConfig = "config.json";
constexpr std::string_view kTokenizer = "tokenizer.json";
constexpr uint64_t kMaxSmallFile = 64ull << 20;

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool IsFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symlinks (hub cache blobs)
}

bool Inside(const std::string& path, const std::string& root) {
  return path == root || (absl::StartsWith(path, root) &&
                          (root.back() == '/' || path[root.size()] == '/'));
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  return ReadFileAtMost(path, kMaxSmallFile, absl::StatusCode::kDataLoss);
}

// The weight files a checkpoint is read from: of the first format present,
// the shard index where there is one.
using WeightLayout = CheckpointStore::WeightLayout;
std::optional<WeightLayout> WeightsAmong(
    const std::function<bool(std::string_view)>& has) {
  for (const WeightNames& names : kWeightFormats) {
    if (has(names.index)) return WeightLayout{names.single, names.index};
    if (has(names.single)) return WeightLayout{names.single, {}};
  }
  return std::nullopt;
}

bool HasWeights(const fs::path& dir) {
  return WeightsAmong([&](std::string_view f) { return IsFile(dir / f); })
      .has_value();
}

// Catalog under construction during a scan (the listings' steps are
// filled in at the end).
class Scanner {
 public:
  explicit Scanner(std::map<ModelKey, ModelSnapshot>* out) : out_(out) {}

  void ScanRoot(const std::string& root) {
    const fs::path root_path(root);
    if (auto key = ModelKey::FromRepoName(root_path.filename().string())) {
      ScanPlainModel(root, root_path, *key);
    }
    std::error_code ec;
    for (fs::directory_iterator it(root_path, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (absl::StartsWith(name, "models--")) {
        ScanHubRepo(root, it->path(), name);
      } else if (auto key = ModelKey::FromRepoName(name)) {
        ScanPlainModel(root, it->path(), *key);
      }
    }
    if (ec) spdlog::warn("scanning {}: {}", root, ec.message());
  }

 private:
  void ScanPlainModel(const std::string& root, const fs::path& dir,
                      const ModelKey& key) {
    if (!IsDir(dir)) return;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      const auto step = ParseStepName(it->path().filename().string());
      if (!step || !HasWeights(it->path())) continue;
      const std::string repo =
          key.suite == "pythia" ? "EleutherAI/" + key.Name() : "";
      Add(root, key, *step, it->path(), repo, "plain");
    }
  }

  void ScanHubRepo(const std::string& root, const fs::path& repo_dir,
                   const std::string& name) {
    // models--<org>--<repo>; the org may itself contain no "--".
    std::vector<std::string> parts = absl::StrSplit(name, "--");
    if (parts.size() != 3) return;
    const auto key = ModelKey::FromRepoName(parts[2]);
    if (!key) return;
    const fs::path refs = repo_dir / "refs";
    std::error_code ec;
    for (fs::directory_iterator it(refs, ec), end; !ec && it != end;
         it.increment(ec)) {
      const auto step = ParseStepName(it->path().filename().string());
      if (!step || !IsFile(it->path())) continue;
      auto commit = ReadSmallFile(it->path().string());
      if (!commit.ok()) continue;
      const std::string hash(absl::StripAsciiWhitespace(*commit));
      if (hash.empty() || hash.size() > 64 ||
          !std::all_of(hash.begin(), hash.end(), [](char c) {
            return absl::ascii_isxdigit(static_cast<unsigned char>(c));
          })) {
        spdlog::warn("{}: not a commit id, skipped", it->path().string());
        continue;
      }
      const fs::path snapshot = repo_dir / "snapshots" / hash;
      if (!HasWeights(snapshot)) continue;
      Add(root, *key, *step, snapshot, parts[1] + "/" + parts[2], "hf-cache");
    }
  }

  void Add(const std::string& root, const ModelKey& key, int64_t step,
           const fs::path& dir, const std::string& repo_id,
           const std::string& layout) {
    std::error_code ec;
    const std::string canonical = fs::canonical(dir, ec).string();
    if (ec || !Inside(canonical, root)) {
      spdlog::warn("{} resolves outside root {}, skipped", dir.string(), root);
      return;
    }
    auto& [listing, checkpoints] = (*out_)[key];
    if (checkpoints.empty()) {
      listing.key = key;
      listing.repo_id = repo_id;
      listing.layout = layout;
    }
    if (checkpoints.count(step)) {
      spdlog::debug("{} step {} found again at {}; keeping {}", key.Name(),
                    step, canonical, checkpoints[step].dir);
      return;
    }
    checkpoints[step] = CheckpointLocation{key, step, root, canonical};
  }

  std::map<ModelKey, ModelSnapshot>* out_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(
    Options options) {
  std::vector<std::string> roots;
  for (const auto& root : options.roots) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(root, ec);
    if (ec || !IsDir(canonical)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint root \"", root, "\" is not an existing folder"));
    }
    roots.push_back(canonical.string());
  }
  auto store = std::unique_ptr<CheckpointStore>(
      new CheckpointStore(std::move(options), std::move(roots)));
  store->Refresh();
  return store;
}

CheckpointStore::CheckpointStore(Options options,
                                 std::vector<std::string> roots)
    : options_(std::move(options)), roots_(std::move(roots)) {}

void CheckpointStore::AddHubModels(Catalog* catalog) const {
  if (options_.hub == nullptr) return;
  for (const HubCheckpoints::Repo& repo : options_.hub->Scan()) {
    if (catalog->count(repo.key)) {
      spdlog::debug("{} is on disk; the Hub's {} is not served", repo.key.Name(),
                    repo.repo);
      continue;
    }
    if (repo.steps.empty()) continue;
    auto& [listing, checkpoints] = (*catalog)[repo.key];
    listing.key = repo.key;
    listing.repo_id = repo.repo;
    listing.layout = "hub";
    for (const HubCheckpoints::Step& s : repo.steps) {
      checkpoints[s.step] = CheckpointLocation{
          repo.key, s.step, "", absl::StrCat("hub:", repo.repo, "@", s.branch),
          repo.repo, s.commit};
    }
  }
}

void CheckpointStore::Refresh() {
  auto catalog = std::make_shared<Catalog>();
  Scanner scanner(catalog.get());
  for (const auto& root : roots_) scanner.ScanRoot(root);
  AddHubModels(catalog.get());
  size_t checkpoints = 0;
  for (auto& [key, model] : *catalog) {
    for (const auto& [step, _] : model.checkpoints) {
      model.listing.steps.push_back(step);
    }
    checkpoints += model.checkpoints.size();
  }
  spdlog::debug("scanned {} roots: {} models, {} checkpoints", roots_.size(),
                catalog->size(), checkpoints);
  std::lock_guard lock(mu_);
  catalog_ = std::move(catalog);
  last_scan_ = std::chrono::steady_clock::now();
}

std::shared_ptr<const CheckpointStore::Catalog> CheckpointStore::Current()
    const {
  std::lock_guard lock(mu_);
  return catalog_;
}

void CheckpointStore::MaybeRescan() {
  {
    std::lock_guard lock(mu_);
    if (std::chrono::steady_clock::now() - last_scan_ <
        options_.rescan_interval) {
      return;
    }
  }
  Refresh();
}

std::vector<ModelListing> CheckpointStore::ListModels(
    std::string_view suite_filter) const {
  std::vector<ModelListing> out;
  for (const auto& [key, model] : *Current()) {
    if (suite_filter.empty() || key.suite == suite_filter) {
      out.push_back(model.listing);
    }
  }
  return out;
}

absl::StatusOr<CheckpointLocation> ModelSnapshot::Locate(int64_t step) const {
  auto it = checkpoints.find(step);
  if (it != checkpoints.end()) return it->second;
  return absl::NotFoundError(
      absl::StrCat("step ", step, " is not present for ", listing.key.Name(),
                   "; nearest present: ",
                   FormatSteps(NearestSteps(listing.steps, step))));
}

absl::StatusOr<std::vector<CheckpointLocation>> ModelSnapshot::LocateAll(
    const std::vector<int64_t>& steps) const {
  std::vector<CheckpointLocation> out;
  for (int64_t step : steps) {
    ASSIGN_OR_RETURN(CheckpointLocation where, Locate(step));
    out.push_back(std::move(where));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> CheckpointStore::FindModel(
    const ModelKey& key) {
  ++model_lookups_;
  auto catalog = Current();
  if (!catalog->count(key)) {
    MaybeRescan();
    catalog = Current();
  }
  auto it = catalog->find(key);
  if (it != catalog->end()) {
    // Shares the catalog's ownership: the snapshot outlives later rescans.
    return std::shared_ptr<const ModelSnapshot>(catalog, &it->second);
  }
  std::vector<std::string> names;
  for (const auto& [k, _] : *catalog) names.push_back(k.Name());
  if (names.empty()) {
    return absl::NotFoundError(
        absl::StrCat("model ", key.Name(), " not found: the checkpoint roots (",
                     absl::StrJoin(roots_, ", "), ") hold no models"));
  }
  return absl::NotFoundError(absl::StrCat(
      "model ", key.Name(), " (suite ", key.suite, ", size ", key.size,
      ", variant ", key.variant, ") not found; closest present: ",
      absl::StrJoin(ClosestNames(key.Name(), names, 4), ", ")));
}

absl::StatusOr<CheckpointLocation> CheckpointStore::Locate(const ModelKey& key,
                                                           int64_t step) {
  ASSIGN_OR_RETURN(auto model, FindModel(key));
  if (auto where = model->Locate(step); where.ok()) return where;
  MaybeRescan();  // the step may have been downloaded since the last scan
  if (auto again = FindModel(key); again.ok()) model = *std::move(again);
  return model->Locate(step);
}

absl::StatusOr<std::string> CheckpointStore::ResolveInside(
    const CheckpointLocation& where, std::string_view file) const {
  if (auto s = ValidateName("checkpoint file", file); !s.ok()) {
    return absl::DataLossError(
        absl::StrCat(where.dir, ": refers to a bad file name: ", s.message()));
  }
  const fs::path path = fs::path(where.dir) / std::string(file);
  std::error_code ec;
  const fs::path canonical = fs::canonical(path, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": ", ec.message()));
  }
  if (!Inside(canonical.string(), where.root)) {
    return absl::PermissionDeniedError(
        absl::StrCat(path.string(), " resolves to ", canonical.string(),
                     ", outside the checkpoint root ", where.root));
  }
  return canonical.string();
}

absl::StatusOr<std::map<std::string, std::string>>
CheckpointStore::ReadShardIndex(const CheckpointLocation& where,
                                std::string_view index_name) const {
  const std::string path = absl::StrCat(where.dir, "/", ToAbsl(index_name));
  ASSIGN_OR_RETURN(const std::string text, ReadSmall(where, index_name));
  const auto index = nlohmann::json::parse(text, nullptr, false);
  if (index.is_discarded() || !index.is_object() ||
      !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::DataLossError(absl::StrCat(
        path,
        ": not a shard index (a JSON object with a \"weight_map\" object)"));
  }
  std::map<std::string, std::string> map;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::DataLossError(absl::StrCat(path, ": weight_map entry \"",
                                              name, "\" is not a file name"));
    }
    map[name] = file.get<std::string>();
  }
  return map;
}

absl::StatusOr<bool> CheckpointStore::HasFile(const CheckpointLocation& where,
                                              std::string_view file) const {
  if (!where.on_hub()) return IsFile(fs::path(where.dir) / std::string(file));
  ASSIGN_OR_RETURN(const std::vector<std::string> files,
                   options_.hub->Files(where.hub_repo, where.hub_commit));
  return std::find(files.begin(), files.end(), file) != files.end();
}

absl::StatusOr<std::string> CheckpointStore::ReadSmall(
    const CheckpointLocation& where, std::string_view file) const {
  if (!where.on_hub()) {
    ASSIGN_OR_RETURN(const std::string path, ResolveInside(where, file));
    return ReadSmallFile(path);
  }
  ASSIGN_OR_RETURN(const std::string path,
                   options_.hub->LocalFile(where.hub_repo, where.hub_commit, file));
  return ReadSmallFile(path);
}

absl::StatusOr<std::shared_ptr<const TensorFile>>
CheckpointStore::OpenWeightFile(const CheckpointLocation& where,
                                const std::string& file, bool from_index,
                                bool whole) const {
  if (where.on_hub()) {
    RETURN_IF_ERROR(ValidateName("checkpoint file", file));
    ASSIGN_OR_RETURN(const bool present, HasFile(where, file));
    if (from_index && !present) {
      return absl::DataLossError(absl::StrCat(
          where.dir, ": the shard index names ", file, ", which is missing"));
    }
    if (!whole) {
      return options_.hub->OpenRemote(where.hub_repo, where.hub_commit, file);
    }
    ASSIGN_OR_RETURN(const std::string local,
                     options_.hub->LocalFile(where.hub_repo, where.hub_commit, file));
    ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> source,
                     LocalFileSource::Open(local));
    return OpenTensorFile(std::move(source), file);
  }
  auto path = ResolveInside(where, file);
  if (!path.ok()) {
    if (absl::IsNotFound(path.status()) && from_index) {
      return absl::DataLossError(absl::StrCat(
          where.dir, ": the shard index names ", file, ", which is missing"));
    }
    return path.status();
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> source,
                   LocalFileSource::Open(*path));
  // The checkpoint's name says the format: cache blobs have no suffix.
  return OpenTensorFile(std::move(source), file);
}

namespace {

absl::Status TensorNotFound(std::string_view tensor,
                            const CheckpointLocation& where,
                            const std::vector<std::string>& names) {
  return absl::NotFoundError(absl::StrCat(
      "tensor \"", ToAbsl(tensor), "\" not in ", where.model.Name(), " step ",
      where.step,
      "; closest: ", absl::StrJoin(ClosestNames(tensor, names), ", ")));
}

}  // namespace

// The weight files of a checkpoint the scan found (they may have gone since).
absl::StatusOr<WeightLayout> CheckpointStore::Weights(
    const CheckpointLocation& where) const {
  absl::Status listing;  // a Hub checkpoint's files may not be known (offline)
  auto layout = WeightsAmong([&](std::string_view f) {
    absl::StatusOr<bool> has = HasFile(where, f);
    if (!has.ok()) listing.Update(has.status());
    return has.ok() && *has;
  });
  RETURN_IF_ERROR(listing);
  if (layout) return *layout;
  return absl::NotFoundError(absl::StrCat(
      where.model.Name(), " step ", where.step, ": ", where.dir,
      " holds no model.safetensors, pytorch_model.bin or shard index"));
}

absl::StatusOr<TensorHandle> CheckpointStore::OpenTensor(
    const CheckpointLocation& where, std::string_view tensor) const {
  RETURN_IF_ERROR(ValidateName("tensor", tensor));
  ASSIGN_OR_RETURN(const WeightLayout layout, Weights(where));
  std::string file(layout.single);
  if (!layout.index.empty()) {
    ASSIGN_OR_RETURN(const auto index, ReadShardIndex(where, layout.index));
    auto it = index.find(std::string(tensor));
    if (it == index.end()) {
      std::vector<std::string> names;
      for (const auto& [name, _] : index) names.push_back(name);
      return TensorNotFound(tensor, where, names);
    }
    file = it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const TensorFile> opened,
                   OpenWeightFile(where, file, !layout.index.empty(), false));
  const TensorInfo* info = opened->Find(tensor);
  if (info == nullptr && !layout.index.empty()) {
    return absl::DataLossError(absl::StrCat(
        where.dir, ": ", ToAbsl(layout.index), " puts tensor \"", ToAbsl(tensor),
        "\" in ", file, ", which lacks it"));
  }
  if (info == nullptr) {
    std::vector<std::string> names;
    for (const auto& t : opened->tensors()) names.push_back(t.name);
    return TensorNotFound(tensor, where, names);
  }
  return TensorHandle{std::move(opened), info};
}

absl::StatusOr<std::vector<CheckpointStore::WeightFile>>
CheckpointStore::OpenWeightFiles(const CheckpointLocation& where,
                                 bool whole) const {
  ASSIGN_OR_RETURN(const WeightLayout layout, Weights(where));
  std::set<std::string> names;
  if (!layout.index.empty()) {
    ASSIGN_OR_RETURN(const auto index, ReadShardIndex(where, layout.index));
    for (const auto& [_, file] : index) names.insert(file);
  } else {
    names.insert(std::string(layout.single));
  }
  std::vector<WeightFile> files;
  for (const auto& name : names) {
    ASSIGN_OR_RETURN(auto opened,
                     OpenWeightFile(where, name, !layout.index.empty(), whole));
    files.push_back(WeightFile{name, std::move(opened)});
  }
  return files;
}

absl::StatusOr<std::vector<TensorListing>> CheckpointStore::ListTensors(
    const CheckpointLocation& where) const {
  ASSIGN_OR_RETURN(const auto files, OpenWeightFiles(where));
  std::vector<TensorListing> out;
  for (const auto& [name, file] : files) {
    for (const auto& info : file->tensors()) {
      out.push_back(TensorListing{info, name});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.info.name < b.info.name;
  });
  return out;
}

absl::StatusOr<std::vector<TensorHandle>> CheckpointStore::OpenAllTensors(
    const CheckpointLocation& where) const {
  ASSIGN_OR_RETURN(const auto files, OpenWeightFiles(where));
  std::vector<TensorHandle> out;
  for (const auto& [name, file] : files) {
    for (const auto& info : file->tensors()) out.push_back(TensorHandle{file, &info});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.info->name < b.info->name;
  });
  return out;
}

absl::StatusOr<std::string> CheckpointStore::TokenizerPath(
    const CheckpointLocation& where) const {
  ASSIGN_OR_RETURN(const bool has, HasFile(where, kTokenizer));
  if (!has) return std::string();
  if (where.on_hub()) {
    return options_.hub->LocalFile(where.hub_repo, where.hub_commit, kTokenizer);
  }
  return ResolveInside(where, kTokenizer);
}

absl::StatusOr<std::string> CheckpointStore::ReadConfig(
    const CheckpointLocation& where) const {
  ASSIGN_OR_RETURN(const bool has, HasFile(where, kConfig));
  if (!has) return std::string();
  return ReadSmall(where, kConfig);
}

}  // namespace garden
