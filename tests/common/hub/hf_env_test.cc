// ResolveHfSettings with an injected environment: defaults, HF_HOME,
// HF_HUB_CACHE, HF_ENDPOINT, the token's sources in their order of
// precedence, HF_HUB_OFFLINE, and that the token never reaches the log line.
#include "common/hub/hf_env.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

using ::garden::testing::TempDir;
using ::garden::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

absl::StatusOr<HfSettings> Resolve(const Env& env,
                                   const HfOverrides& flags = HfOverrides()) {
  return ResolveHfSettings(flags, [&env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

// Overrides with one flag given (designated initializers would leave the
// rest to -Wmissing-field-initializers).
HfOverrides EndpointFlag(std::string v) { HfOverrides f; f.endpoint = std::move(v); return f; }
HfOverrides TokenFileFlag(std::string v) { HfOverrides f; f.token_file = std::move(v); return f; }
HfOverrides CacheFlag(std::string v) { HfOverrides f; f.cache_dir = std::move(v); return f; }
HfOverrides OfflineFlag() { HfOverrides f; f.offline = true; return f; }

// A home folder with nothing in it, and paths under it.
class HfEnvTest : public ::testing::Test {
 protected:
  std::string Home() const { return tmp_.Join("home"); }
  std::string HfHome() const { return Home() + "/.cache/huggingface"; }
  // Writes a file (and its folders).
  std::string Write(const std::string& path, std::string_view text) {
    fs::create_directories(fs::path(path).parent_path());
    WriteFile(path, text);
    return path;
  }
  void SetUp() override { fs::create_directories(Home()); }

  TempDir tmp_;
};

TEST_F(HfEnvTest, DefaultsWithOnlyHome) {
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->endpoint, "https://huggingface.co");
  EXPECT_EQ(s->cache_dir, Home() + "/.cache/huggingface/hub");
  EXPECT_EQ(s->token, "");
  EXPECT_EQ(s->token_source, "");
  EXPECT_FALSE(s->offline);
}

TEST_F(HfEnvTest, DefaultTokenFileUnderHome) {
  Write(HfHome() + "/token", "hf_fromdefaultfile\n");
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_fromdefaultfile");
  EXPECT_EQ(s->token_source, HfHome() + "/token");
}

TEST_F(HfEnvTest, HfHomeMovesTheCacheAndTheTokenFile) {
  const std::string hf_home = tmp_.Join("hfhome");
  Write(HfHome() + "/token", "hf_notthisone");
  Write(hf_home + "/token", "hf_fromhfhome");
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_HOME", hf_home}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cache_dir, hf_home + "/hub");
  EXPECT_EQ(s->token, "hf_fromhfhome");
  EXPECT_EQ(s->token_source, hf_home + "/token");
}

TEST_F(HfEnvTest, HfHubCacheOverridesTheCache) {
  absl::StatusOr<HfSettings> s = Resolve(
      {{"HOME", Home()}, {"HF_HOME", tmp_.Join("hfhome")}, {"HF_HUB_CACHE", "/data/hub"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cache_dir, "/data/hub");
}

TEST_F(HfEnvTest, CacheFlagBeatsHfHubCache) {
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_HUB_CACHE", "/data/hub"}},
                                         CacheFlag("/flag/hub"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cache_dir, "/flag/hub");
}

TEST_F(HfEnvTest, HfEndpointWithTrailingSlashTrimmed) {
  absl::StatusOr<HfSettings> s =
      Resolve({{"HOME", Home()}, {"HF_ENDPOINT", "https://hf-mirror.example/"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->endpoint, "https://hf-mirror.example");
  s = Resolve({{"HOME", Home()}, {"HF_ENDPOINT", "http://127.0.0.1:8080//"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->endpoint, "http://127.0.0.1:8080");
}

TEST_F(HfEnvTest, EndpointFlagBeatsHfEndpoint) {
  absl::StatusOr<HfSettings> s =
      Resolve({{"HOME", Home()}, {"HF_ENDPOINT", "https://hf-mirror.example"}},
              EndpointFlag("http://localhost:9000/"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->endpoint, "http://localhost:9000");
}

TEST_F(HfEnvTest, HfTokenBeatsTheTokenFile) {
  Write(HfHome() + "/token", "hf_fromfile");
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_TOKEN", "hf_fromenv"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_fromenv");
  EXPECT_EQ(s->token_source, "HF_TOKEN");
}

TEST_F(HfEnvTest, HfTokenPathBeatsHfHomeToken) {
  const std::string hf_home = tmp_.Join("hfhome");
  Write(hf_home + "/token", "hf_fromhfhome");
  const std::string path = Write(tmp_.Join("elsewhere/tok"), "hf_fromtokenpath");
  absl::StatusOr<HfSettings> s =
      Resolve({{"HOME", Home()}, {"HF_HOME", hf_home}, {"HF_TOKEN_PATH", path}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_fromtokenpath");
  EXPECT_EQ(s->token_source, path);
}

TEST_F(HfEnvTest, TokenFileFlagBeatsHfToken) {
  const std::string path = Write(tmp_.Join("flag/tok"), "hf_fromflag");
  absl::StatusOr<HfSettings> s = Resolve(
      {{"HOME", Home()}, {"HF_TOKEN", "hf_fromenv"}, {"HF_TOKEN_PATH", tmp_.Join("none")}},
      TokenFileFlag(path));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_fromflag");
  EXPECT_EQ(s->token_source, path);
}

TEST_F(HfEnvTest, MissingTokenFileFlagIsNotFound) {
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_TOKEN", "hf_fromenv"}},
                                         TokenFileFlag(tmp_.Join("no/such/token")));
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(tmp_.Join("no/such/token")));
}

TEST_F(HfEnvTest, MissingDefaultTokenFilesMeanAnonymous) {
  absl::StatusOr<HfSettings> s =
      Resolve({{"HOME", Home()}, {"HF_TOKEN_PATH", tmp_.Join("no/such/token")}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "");
  EXPECT_EQ(s->token_source, "");
}

TEST_F(HfEnvTest, TokenFileFirstLineTrimmed) {
  const std::string path =
      Write(tmp_.Join("tok"), "  hf_firstline \t\r\nhf_secondline\n");
  absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}}, TokenFileFlag(path));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_firstline");
  // The same rule for the default files.
  Write(HfHome() + "/token", "hf_default\nsomething else\n");
  s = Resolve({{"HOME", Home()}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "hf_default");
}

TEST_F(HfEnvTest, HfHubOfflineTruthyValues) {
  for (const char* value : {"1", "true", "ON", "yes", "True", " on "}) {
    absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_HUB_OFFLINE", value}});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->offline) << "HF_HUB_OFFLINE=\"" << value << "\"";
  }
}

TEST_F(HfEnvTest, HfHubOfflineOtherValues) {
  for (const char* value : {"0", "false", "off", "no", ""}) {
    absl::StatusOr<HfSettings> s = Resolve({{"HOME", Home()}, {"HF_HUB_OFFLINE", value}});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_FALSE(s->offline) << "HF_HUB_OFFLINE=\"" << value << "\"";
  }
}

TEST_F(HfEnvTest, OfflineFlagWinsOverHfHubOffline) {
  absl::StatusOr<HfSettings> s =
      Resolve({{"HOME", Home()}, {"HF_HUB_OFFLINE", "0"}}, OfflineFlag());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->offline);
}

TEST_F(HfEnvTest, TokenSourceNeverContainsTheToken) {
  constexpr char kSecret[] = "hf_SeCrEtZ9q8w7";
  const std::string file = Write(tmp_.Join("flagfile"), kSecret);
  const std::string path_file = Write(tmp_.Join("pathfile"), kSecret);
  Write(HfHome() + "/token", kSecret);
  struct Case {
    Env env;
    HfOverrides flags;
  };
  const std::vector<Case> cases = {
      {{{"HOME", Home()}}, TokenFileFlag(file)},
      {{{"HOME", Home()}, {"HF_TOKEN", kSecret}}, HfOverrides()},
      {{{"HOME", Home()}, {"HF_TOKEN_PATH", path_file}}, HfOverrides()},
      {{{"HOME", Home()}}, HfOverrides()},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    absl::StatusOr<HfSettings> s = Resolve(cases[i].env, cases[i].flags);
    ASSERT_TRUE(s.ok()) << "case " << i << ": " << s.status();
    EXPECT_EQ(s->token, kSecret) << "case " << i;
    EXPECT_FALSE(s->token_source.empty()) << "case " << i;
    EXPECT_THAT(s->token_source, Not(HasSubstr(kSecret))) << "case " << i;
  }
}

}  // namespace
}  // namespace garden
