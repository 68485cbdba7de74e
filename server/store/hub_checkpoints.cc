#include "server/store/hub_checkpoints.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/formats/open_tensor_file.h"
#include "common/hub/hub_file_source.h"
#include "common/naming/step_spec.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string CommitKey(std::string_view repo, std::string_view commit) {
  return absl::StrCat(ToAbsl(repo), "@", ToAbsl(commit));
}

absl::Status Offline(std::string_view repo, std::string_view commit,
                     std::string_view what) {
  return absl::UnavailableError(absl::StrCat(
      "offline (HF_HUB_OFFLINE / --offline): ", ToAbsl(repo), " commit ",
      ToAbsl(commit), ": ", ToAbsl(what),
      " is not in the cache; run once online to fetch it"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HubCheckpoints>> HubCheckpoints::Open(
    Options options) {
  auto hub = std::unique_ptr<HubCheckpoints>(new HubCheckpoints(options));
  for (const std::string& repo : options.repos) {
    const size_t slash = repo.find('/');
    std::optional<ModelKey> key;
    if (slash != std::string::npos) {
      key = ModelKey::FromRepoName(std::string_view(repo).substr(slash + 1));
    }
    if (!key || !ValidateName("repository", repo.substr(0, slash)).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--hub-repo \"", repo,
          "\" is not ORG/NAME with a model name such as pythia-70m-deduped"));
    }
    hub->last_scan_[repo] = Repo{repo, *key, {}};
  }
  if (!options.offline) {
    ASSIGN_OR_RETURN(std::unique_ptr<HubClient> client,
                     HubClient::Create(options.client));
    hub->client_ = std::move(client);
  }
  hub->hf_cache_ = std::make_unique<HfCache>(options.cache_dir);
  ASSIGN_OR_RETURN(hub->extracts_,
                   ExtractCache::Open({.dir = (fs::path(options.cache_dir) /
                                               "garden" / "extracts")
                                                  .string(),
                                       .max_bytes = options.extract_bytes}));
  return hub;
}

uint64_t HubCheckpoints::bytes_received() const {
  return client_ ? client_->bytes_received() : 0;
}

std::vector<HubCheckpoints::Repo> HubCheckpoints::Scan() {
  std::vector<Repo> out;
  for (const std::string& name : options_.repos) {
    std::vector<HubBranch> branches;
    if (client_) {
      absl::StatusOr<std::vector<HubBranch>> listed = client_->ListBranches(name);
      if (listed.ok()) {
        branches = *std::move(listed);
        for (const HubBranch& b : branches) {
          if (ParseStepName(b.name)) (void)hf_cache_->WriteRef(name, b.name, b.commit);
        }
      } else {
        spdlog::warn("hub: cannot list {}: {}", name, listed.status().ToString());
        std::lock_guard lock(mu_);
        out.push_back(last_scan_[name]);
        continue;
      }
    } else {
      branches = hf_cache_->Refs(name);
    }
    Repo repo{name, last_scan_[name].key, {}};
    for (const HubBranch& b : branches) {
      if (auto step = ParseStepName(b.name)) {
        repo.steps.push_back(Step{*step, b.name, b.commit});
      }
    }
    std::sort(repo.steps.begin(), repo.steps.end(),
              [](const Step& a, const Step& b) { return a.step < b.step; });
    std::lock_guard lock(mu_);
    last_scan_[name] = repo;
    out.push_back(std::move(repo));
  }
  return out;
}

std::string HubCheckpoints::MetaPath(std::string_view repo,
                                     std::string_view commit) const {
  return (fs::path(options_.cache_dir) / "garden" / "meta" /
          absl::StrReplaceAll(ToAbsl(repo), {{"/", "--"}}) /
          absl::StrCat(ToAbsl(commit), ".json"))
      .string();
}

// What offline mode needs of a commit: its file names and each file's
// etag and size (the extract cache is keyed by etag).
void HubCheckpoints::SaveMeta(std::string_view repo, std::string_view commit) {
  Json json;
  {
    std::lock_guard lock(mu_);
    const Commit& c = commits_[CommitKey(repo, commit)];
    json["files"] = c.files;
    for (const auto& [file, info] : c.infos) {
      json["infos"][file] = {{"etag", info.etag}, {"size", info.size},
                             {"lfs", info.lfs}};
    }
  }
  const std::string path = MetaPath(repo, commit);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (absl::Status s = WriteFileAtomic(path, json.dump()); !s.ok()) {
    spdlog::warn("hub: {}", s.ToString());
  }
}

void HubCheckpoints::LoadMeta(std::string_view repo, std::string_view commit) {
  std::lock_guard lock(mu_);
  Commit& c = commits_[CommitKey(repo, commit)];
  if (c.loaded) return;
  c.loaded = true;
  absl::StatusOr<std::string> text = ReadFileToString(MetaPath(repo, commit));
  if (!text.ok()) return;
  const Json json = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return;
  if (json.contains("files") && json["files"].is_array()) {
    for (const Json& f : json["files"]) {
      if (f.is_string()) c.files.push_back(f.get<std::string>());
    }
  }
  if (!json.contains("infos") || !json["infos"].is_object()) return;
  for (const auto& [file, j] : json["infos"].items()) {
    if (!j.is_object() || !j.contains("etag") || !j["etag"].is_string() ||
        !j.contains("size") || !j["size"].is_number_unsigned()) {
      continue;
    }
    HubFileInfo info{std::string(repo), std::string(commit), file,
                     std::string(commit), j["etag"].get<std::string>(),
                     j["size"].get<uint64_t>(), j.value("lfs", false), ""};
    c.infos[file] = std::move(info);
  }
}

absl::StatusOr<std::vector<std::string>> HubCheckpoints::Files(
    std::string_view repo, std::string_view commit) {
  LoadMeta(repo, commit);
  {
    std::lock_guard lock(mu_);
    const Commit& c = commits_[CommitKey(repo, commit)];
    if (!c.files.empty()) return c.files;
  }
  if (!client_) return Offline(repo, commit, "the list of files");
  ASSIGN_OR_RETURN(std::vector<std::string> files,
                   client_->ListFiles(repo, commit));
  {
    std::lock_guard lock(mu_);
    commits_[CommitKey(repo, commit)].files = files;
  }
  SaveMeta(repo, commit);
  return files;
}

absl::StatusOr<HubFileInfo> HubCheckpoints::Info(std::string_view repo,
                                                 std::string_view commit,
                                                 std::string_view file) {
  LoadMeta(repo, commit);
  {
    std::lock_guard lock(mu_);
    const Commit& c = commits_[CommitKey(repo, commit)];
    auto it = c.infos.find(std::string(file));
    // A remembered entry has no download URL (it expires): fetch one when
    // online, so that reads can go out.
    if (it != c.infos.end() && (!client_ || !it->second.download_url.empty())) {
      return it->second;
    }
  }
  if (!client_) return Offline(repo, commit, absl::StrCat("file ", ToAbsl(file)));
  ASSIGN_OR_RETURN(HubFileInfo info, client_->FileInfo(repo, commit, file));
  {
    std::lock_guard lock(mu_);
    commits_[CommitKey(repo, commit)].infos[std::string(file)] = info;
  }
  SaveMeta(repo, commit);
  return info;
}

absl::StatusOr<std::string> HubCheckpoints::LocalFile(std::string_view repo,
                                                      std::string_view commit,
                                                      std::string_view file) {
  if (auto cached = hf_cache_->Cached(repo, commit, file)) return *cached;
  if (!client_) return Offline(repo, commit, absl::StrCat("file ", ToAbsl(file)));
  return hf_cache_->Fetch(*client_, repo, commit, file);
}

absl::StatusOr<std::shared_ptr<const TensorFile>> HubCheckpoints::OpenRemote(
    std::string_view repo, std::string_view commit, std::string_view file) {
  std::shared_ptr<const ByteSource> source;
  if (auto cached = hf_cache_->Cached(repo, commit, file)) {
    ASSIGN_OR_RETURN(source, LocalFileSource::Open(*cached));
  } else {
    ASSIGN_OR_RETURN(HubFileInfo info, Info(repo, commit, file));
    source = std::make_shared<HubFileSource>(client_, std::move(info), extracts_);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TensorFile> opened,
                   OpenTensorFile(std::move(source), file));
  return std::shared_ptr<const TensorFile>(std::move(opened));
}

}  // namespace garden
