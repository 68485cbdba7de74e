// The server's registry of evaluation datasets: specs, files, lookups.
#include "server/store/dataset_registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

TEST(DatasetRegistryTest, ReadsTextsInFileOrderAndFindsThemByName) {
  TempDir dir;
  WriteFile(dir.Join("a.jsonl"),
            "{\"text\": \"one two\"}\r\n\n  \n{\"text\": \"caf\\u00e9 three\", "
            "\"extra\": 1}\n");
  WriteFile(dir.Join("b.jsonl"), "{\"text\": \"x y\"}");
  auto registry = DatasetRegistry::Open(
      {.specs = {"lambada=" + dir.Join("a.jsonl"), "b=" + dir.Join("b.jsonl")}});
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto a = (*registry)->Find("lambada");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT((*a)->texts, ElementsAre("one two", "caf\xC3\xA9 three"));
  EXPECT_EQ((*registry)->List().size(), 2u);
  EXPECT_EQ((*registry)->List()[0]->name, "b");  // by name

  auto missing = (*registry)->Find("lambda");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("\"lambda\" is not registered; known: b, lambada"));
}

TEST(DatasetRegistryTest, MalformedLinesNameFileAndLine) {
  TempDir dir;
  const std::string path = dir.Join("bad.jsonl");
  for (const std::string bad :
       {"{\"text\": 3}", "[\"text\"]", "{\"text\": \"a\"", "{\"txt\": \"a\"}"}) {
    WriteFile(path, "{\"text\": \"fine\"}\n" + bad + "\n");
    auto registry = DatasetRegistry::Open({.specs = {"d=" + path}});
    EXPECT_EQ(registry.status().code(), absl::StatusCode::kDataLoss) << bad;
    EXPECT_THAT(registry.status().message(), HasSubstr(path + ":2:")) << bad;
  }
  WriteFile(path, "\n\n");
  EXPECT_THAT(DatasetRegistry::Open({.specs = {"d=" + path}}).status().message(),
              HasSubstr("no examples"));
}

TEST(DatasetRegistryTest, BadSpecsAndFiles) {
  TempDir dir;
  WriteFile(dir.Join("ok.jsonl"), "{\"text\": \"a b\"}\n");
  const std::string ok = dir.Join("ok.jsonl");
  struct Case {
    std::vector<std::string> specs;
    absl::StatusCode code;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"lambada"}, absl::StatusCode::kInvalidArgument, "name=path"},
           {{"../x=" + ok}, absl::StatusCode::kInvalidArgument, "dataset name"},
           {{"d=" + ok, "d=" + ok}, absl::StatusCode::kInvalidArgument,
            "registered twice"},
           {{"d=" + dir.Join("none.jsonl")}, absl::StatusCode::kNotFound,
            "none.jsonl"},
           {{"d=" + dir.path()}, absl::StatusCode::kInvalidArgument,
            "not a regular file"},
       }) {
    auto registry = DatasetRegistry::Open({.specs = c.specs});
    EXPECT_EQ(registry.status().code(), c.code) << c.specs[0];
    EXPECT_THAT(registry.status().message(), HasSubstr(c.message));
  }
  auto small = DatasetRegistry::Open({.specs = {"d=" + ok}, .max_file_bytes = 4});
  EXPECT_THAT(small.status().message(), HasSubstr("the limit is 4"));
}

}  // namespace
}  // namespace garden
