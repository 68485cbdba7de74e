// HfCache on hand-made Hugging Face cache layouts (as huggingface_hub makes
// them: snapshots/<commit>/<file> a relative symlink to ../../blobs/<etag>):
// the repository folder, cached files, .no_exist markers, refs written and
// listed. Fetch needs the Hub and is tested elsewhere.
#include "common/hub/hf_cache.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/base/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

using ::garden::testing::TempDir;
using ::garden::testing::WriteFile;
using ::testing::IsEmpty;

constexpr char kRepo[] = "EleutherAI/pythia-70m";
constexpr char kRepoDirName[] = "models--EleutherAI--pythia-70m";
constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";
constexpr char kOtherCommit[] = "fedcba9876543210fedcba9876543210fedcba98";
constexpr char kEtag[] =
    "9b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff001";
constexpr char kGitEtag[] = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

// A blob and a snapshot link to it, as huggingface_hub lays them out: the
// link is relative, one "../" per folder of `file` plus two.
void AddCachedFile(const std::string& repo_dir, std::string_view commit,
                   std::string_view file, std::string_view etag,
                   std::string_view bytes) {
  const fs::path blob = fs::path(repo_dir) / "blobs" / std::string(etag);
  fs::create_directories(blob.parent_path());
  WriteFile(blob.string(), bytes);
  const fs::path link =
      fs::path(repo_dir) / "snapshots" / std::string(commit) / std::string(file);
  fs::create_directories(link.parent_path());
  std::string target = "../../";
  for (char c : file) {
    if (c == '/') target += "../";
  }
  target += "blobs/" + std::string(etag);
  fs::create_symlink(target, link);
}

struct Branch {
  std::string name, commit;
  bool operator==(const Branch&) const = default;
};
std::vector<Branch> Plain(const std::vector<HubBranch>& refs) {
  std::vector<Branch> out;
  for (const HubBranch& b : refs) out.push_back({b.name, b.commit});
  std::sort(out.begin(), out.end(),
            [](const Branch& a, const Branch& b) { return a.name < b.name; });
  return out;
}

// The names in a folder.
std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(HfCacheTest, RepoDirIsModelsDashDashOrgDashDashName) {
  HfCache cache("/var/cache/hf/hub");
  EXPECT_EQ(cache.root(), "/var/cache/hf/hub");
  EXPECT_EQ(cache.RepoDir(kRepo), "/var/cache/hf/hub/models--EleutherAI--pythia-70m");
  EXPECT_EQ(cache.RepoDir("EleutherAI/pythia-1.4b-deduped"),
            "/var/cache/hf/hub/models--EleutherAI--pythia-1.4b-deduped");
}

TEST(HfCacheTest, CachedFollowsTheSnapshotLinkToItsBlob) {
  TempDir tmp;
  HfCache cache(tmp.path());
  const std::string repo_dir = cache.RepoDir(kRepo);
  ASSERT_EQ(repo_dir, tmp.Join(kRepoDirName));
  AddCachedFile(repo_dir, kCommit, "config.json", kGitEtag, "{\"hidden_size\": 512}");
  AddCachedFile(repo_dir, kCommit, "model.safetensors", kEtag, "weights");

  std::optional<std::string> config = cache.Cached(kRepo, kCommit, "config.json");
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(*config, repo_dir + "/snapshots/" + kCommit + "/config.json");
  absl::StatusOr<std::string> text = ReadFileToString(*config);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "{\"hidden_size\": 512}");

  std::optional<std::string> model = cache.Cached(kRepo, kCommit, "model.safetensors");
  ASSERT_TRUE(model.has_value());
  absl::StatusOr<std::string> weights = ReadFileToString(*model);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(*weights, "weights");
}

TEST(HfCacheTest, CachedFindsAFileInASubfolder) {
  TempDir tmp;
  HfCache cache(tmp.path());
  AddCachedFile(cache.RepoDir(kRepo), kCommit, "onnx/sub/model.onnx", kEtag, "onnx!");
  std::optional<std::string> path = cache.Cached(kRepo, kCommit, "onnx/sub/model.onnx");
  ASSERT_TRUE(path.has_value());
  absl::StatusOr<std::string> bytes = ReadFileToString(*path);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "onnx!");
}

TEST(HfCacheTest, CachedIsNulloptForWhatTheCacheDoesNotHold) {
  TempDir tmp;
  HfCache cache(tmp.path());
  AddCachedFile(cache.RepoDir(kRepo), kCommit, "config.json", kGitEtag, "{}");
  EXPECT_FALSE(cache.Cached(kRepo, kCommit, "tokenizer.json").has_value());
  EXPECT_FALSE(cache.Cached(kRepo, kOtherCommit, "config.json").has_value());
  EXPECT_FALSE(cache.Cached("EleutherAI/pythia-160m", kCommit, "config.json").has_value());
  HfCache empty(tmp.Join("nowhere"));
  EXPECT_FALSE(empty.Cached(kRepo, kCommit, "config.json").has_value());
}

TEST(HfCacheTest, CachedIsNulloptForADanglingLink) {
  TempDir tmp;
  HfCache cache(tmp.path());
  const std::string repo_dir = cache.RepoDir(kRepo);
  AddCachedFile(repo_dir, kCommit, "model.safetensors", kEtag, "weights");
  fs::remove(fs::path(repo_dir) / "blobs" / kEtag);  // blob pruned
  EXPECT_FALSE(cache.Cached(kRepo, kCommit, "model.safetensors").has_value());
}

TEST(HfCacheTest, CachedIsNulloptForAFolder) {
  TempDir tmp;
  HfCache cache(tmp.path());
  AddCachedFile(cache.RepoDir(kRepo), kCommit, "onnx/model.onnx", kEtag, "x");
  EXPECT_FALSE(cache.Cached(kRepo, kCommit, "onnx").has_value());
}

TEST(HfCacheTest, KnownMissingReadsTheNoExistMarkers) {
  TempDir tmp;
  HfCache cache(tmp.path());
  const fs::path no_exist = fs::path(cache.RepoDir(kRepo)) / ".no_exist" / kCommit;
  fs::create_directories(no_exist / "sub");
  WriteFile((no_exist / "pytorch_model.bin").string(), "");
  WriteFile((no_exist / "sub" / "adapter.json").string(), "");

  EXPECT_TRUE(cache.KnownMissing(kRepo, kCommit, "pytorch_model.bin"));
  EXPECT_TRUE(cache.KnownMissing(kRepo, kCommit, "sub/adapter.json"));
  EXPECT_FALSE(cache.KnownMissing(kRepo, kCommit, "model.safetensors"));
  EXPECT_FALSE(cache.KnownMissing(kRepo, kOtherCommit, "pytorch_model.bin"));
  EXPECT_FALSE(cache.KnownMissing("EleutherAI/pythia-160m", kCommit, "pytorch_model.bin"));
}

TEST(HfCacheTest, ACachedFileIsNotKnownMissing) {
  TempDir tmp;
  HfCache cache(tmp.path());
  AddCachedFile(cache.RepoDir(kRepo), kCommit, "config.json", kGitEtag, "{}");
  EXPECT_FALSE(cache.KnownMissing(kRepo, kCommit, "config.json"));
}

TEST(HfCacheTest, WriteRefWritesTheCommitAndRefsListsIt) {
  TempDir tmp;
  HfCache cache(tmp.path());
  ASSERT_TRUE(cache.WriteRef(kRepo, "main", kCommit).ok());
  ASSERT_TRUE(cache.WriteRef(kRepo, "step1000", kOtherCommit).ok());

  const fs::path refs = fs::path(cache.RepoDir(kRepo)) / "refs";
  absl::StatusOr<std::string> main = ReadFileToString((refs / "main").string());
  ASSERT_TRUE(main.ok()) << main.status();
  EXPECT_EQ(*main, kCommit);  // no newline, as huggingface_hub writes it
  EXPECT_EQ(Plain(cache.Refs(kRepo)),
            (std::vector<Branch>{{"main", kCommit}, {"step1000", kOtherCommit}}));
}

TEST(HfCacheTest, WriteRefReplacesAtomically) {
  TempDir tmp;
  HfCache cache(tmp.path());
  ASSERT_TRUE(cache.WriteRef(kRepo, "main", kCommit).ok());
  ASSERT_TRUE(cache.WriteRef(kRepo, "main", kOtherCommit).ok());
  const fs::path refs = fs::path(cache.RepoDir(kRepo)) / "refs";
  // Replaced by a rename: no temporary file left beside it.
  EXPECT_EQ(Names(refs), std::vector<std::string>{"main"});
  EXPECT_EQ(Plain(cache.Refs(kRepo)), (std::vector<Branch>{{"main", kOtherCommit}}));
}

TEST(HfCacheTest, WriteRefFailsWhereTheRepoFolderCannotBeMade) {
  TempDir tmp;
  WriteFile(tmp.Join("file"), "not a folder");
  HfCache cache(tmp.Join("file"));
  EXPECT_FALSE(cache.WriteRef(kRepo, "main", kCommit).ok());
}

TEST(HfCacheTest, RefsSkipsBadContents) {
  TempDir tmp;
  HfCache cache(tmp.path());
  const fs::path refs = fs::path(cache.RepoDir(kRepo)) / "refs";
  fs::create_directories(refs / "pr");
  WriteFile((refs / "main").string(), kCommit);
  WriteFile((refs / "step143000").string(), std::string(kOtherCommit) + "\n");
  WriteFile((refs / "empty").string(), "");
  WriteFile((refs / "words").string(), "not a commit");
  WriteFile((refs / "path").string(), "../../../etc/passwd");
  WriteFile((refs / "long").string(), std::string(65, 'a'));
  WriteFile((refs / "pr" / "1").string(), kCommit);  // a folder is no ref
  EXPECT_EQ(Plain(cache.Refs(kRepo)),
            (std::vector<Branch>{{"main", kCommit}, {"step143000", kOtherCommit}}));
}

TEST(HfCacheTest, RefsOfAnUncachedRepoIsEmpty) {
  TempDir tmp;
  HfCache cache(tmp.path());
  EXPECT_THAT(cache.Refs(kRepo), IsEmpty());
  fs::create_directories(cache.RepoDir(kRepo));  // no refs/ folder
  EXPECT_THAT(cache.Refs(kRepo), IsEmpty());
}

}  // namespace
}  // namespace garden
