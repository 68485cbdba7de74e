// TokenTable: the --auth-tokens file's rules, lookups, and MakeToken.
#include "common/auth/token_table.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

// The line that admits `token` for `name`, computed here the long way (the
// digest is checked against a known SHA-256 below).
std::string LineFor(const std::string& name, const std::string& token) {
  return name + ":" + Sha256Hex(token);
}

TEST(Sha256Test, KnownDigests) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenTableTest, FindsEachNameByItsTokenAndNothingElse) {
  const std::string text = "# lab tokens\n\n" + LineFor("alice", "secret-a") + "\n  " +
                           LineFor("bob.smith@lab", "secret-b") + "  \n" +
                           LineFor("alice", "rotated-a") + "\n";
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  EXPECT_EQ(table->Find("secret-a"), "alice");
  EXPECT_EQ(table->Find("rotated-a"), "alice");
  EXPECT_EQ(table->Find("secret-b"), "bob.smith@lab");
  for (const char* wrong : {"", "secret", "secret-a ", "SECRET-A", "secret-c"}) {
    EXPECT_EQ(table->Find(wrong), std::nullopt) << wrong;
  }
  // The line holds the digest, so the digest itself is no token.
  EXPECT_EQ(table->Find(Sha256Hex("secret-a")), std::nullopt);
}

TEST(TokenTableTest, UpperCaseDigestsAreRead) {
  std::string line = LineFor("carol", "t");
  for (size_t i = 6; i < line.size(); ++i) line[i] = static_cast<char>(std::toupper(line[i]));
  absl::StatusOr<TokenTable> table = TokenTable::Parse(line, "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find("t"), "carol");
}

TEST(TokenTableTest, EmptyFileAdmitsNoOne) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse("# nobody yet\n", "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 0u);
  EXPECT_EQ(table->Find(""), std::nullopt);
}

TEST(TokenTableTest, MalformedLinesNameTheFileAndLine) {
  const std::string good = LineFor("alice", "a");
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {good + "\nalice\n", "tokens.txt:2: no ':' in the line"},
      {"\n\n:" + Sha256Hex("x"), "tokens.txt:3: the name \"\" is not"},
      {"al ice:" + Sha256Hex("x"), "tokens.txt:1: the name \"al ice\" is not"},
      {std::string(65, 'a') + ":" + Sha256Hex("x"), "is not 1-64"},
      {"bob:gdn_0123", "tokens.txt:1: after the name, 8 characters where 64 hex digits"},
      {"bob:" + Sha256Hex("x").substr(1) + "g", "64 hex digits"},
      {good + "\n# c\n" + LineFor("mallory", "a"),
       "tokens.txt:3: the same token as \"alice\"'s, given again"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(c.text, "tokens.txt");
    EXPECT_TRUE(absl::IsInvalidArgument(table.status())) << c.text << ": " << table.status();
    EXPECT_THAT(table.status().message(), HasSubstr(c.want)) << c.text;
    EXPECT_THAT(table.status().message(), HasSubstr("garden token new NAME"));
  }
}

TEST(TokenTableTest, LoadNamesAMissingFile) {
  TempDir tmp;
  const std::string path = tmp.path() + "/absent";
  absl::StatusOr<TokenTable> table = TokenTable::Load(path);
  EXPECT_TRUE(absl::IsNotFound(table.status())) << table.status();
  EXPECT_THAT(table.status().message(), HasSubstr(path));
}

TEST(TokenTableTest, LoadReadsAFile) {
  TempDir tmp;
  const std::string path = tmp.path() + "/tokens";
  WriteFile(path, LineFor("alice", "a") + "\n");
  absl::StatusOr<TokenTable> table = TokenTable::Load(path);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find("a"), "alice");
}

TEST(MakeTokenTest, TokenIsFreshAndItsLineAdmitsIt) {
  absl::StatusOr<NewToken> a = MakeToken("alice");
  absl::StatusOr<NewToken> b = MakeToken("alice");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT(a->token, ::testing::MatchesRegex("gdn_[0-9a-f]{64}"));
  EXPECT_NE(a->token, b->token);
  EXPECT_EQ(a->line, LineFor("alice", a->token));
  absl::StatusOr<TokenTable> table = TokenTable::Parse(a->line + "\n" + b->line, "t");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find(a->token), "alice");
  EXPECT_EQ(table->Find(b->token), "alice");
}

TEST(MakeTokenTest, RefusesNamesTheTableWouldRefuse) {
  for (const char* name : {"", "a b", "a:b", "ünï", "x\n"}) {
    absl::StatusOr<NewToken> made = MakeToken(name);
    EXPECT_TRUE(absl::IsInvalidArgument(made.status())) << name;
    EXPECT_FALSE(IsTokenName(name)) << name;
  }
  EXPECT_TRUE(IsTokenName("ci-runner_2.lab@example.org"));
}

}  // namespace
}  // namespace garden
