#include "common/auth/token_table.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "common/crypto/random.h"

namespace garden {
namespace {

constexpr size_t kMaxNameBytes = 64;
constexpr uint64_t kMaxFileBytes = uint64_t{16} << 20;
constexpr size_t kTokenBytes = 32;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 64 hex digits into the 32 bytes they spell.
std::optional<Sha256Bytes> ParseDigest(std::string_view hex) {
  Sha256Bytes digest;
  if (hex.size() != 2 * digest.size()) return std::nullopt;
  for (size_t i = 0; i < digest.size(); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    digest[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return digest;
}

}  // namespace

bool IsTokenName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '@' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text,
                                             std::string_view file) {
  TokenTable table;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(ToAbsl(text), '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const auto fail = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(file), ":", number, ": ", ToAbsl(why),
                       " (each line is NAME:SHA256-OF-TOKEN, as "
                       "`garden token new NAME` prints it)"));
    };
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return fail("no ':' in the line");
    const std::string_view name(line.data(), colon);
    const absl::string_view hex_text = absl::StripAsciiWhitespace(line.substr(colon + 1));
    const std::string_view hex(hex_text.data(), hex_text.size());
    if (!IsTokenName(name)) {
      return fail(absl::StrCat("the name ", QuoteForMessage(name),
                               " is not 1-64 of [A-Za-z0-9._@-]"));
    }
    // The digest, not the token: a line holding a token would be a secret
    // in a file that is meant to hold none.
    const std::optional<Sha256Bytes> digest = ParseDigest(hex);
    if (!digest) {
      return fail(absl::StrCat("after the name, ", hex.size(),
                               " characters where 64 hex digits (a SHA-256) "
                               "were expected"));
    }
    for (const Entry& e : table.entries_) {
      if (e.digest == *digest) {
        return fail(absl::StrCat("the same token as ", QuoteForMessage(e.name),
                                 "'s, given again"));
      }
    }
    table.entries_.push_back({std::string(name), *digest});
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text,
                   ReadFileAtMost(path, kMaxFileBytes, absl::StatusCode::kInvalidArgument));
  return Parse(text, path);
}

std::optional<std::string> TokenTable::Find(std::string_view token) const {
  const Sha256Bytes digest = Sha256Digest(token);
  const Entry* found = nullptr;
  // Every entry is compared, whatever matched before.
  for (const Entry& e : entries_) {
    const bool same =
        ConstantTimeEqual(e.digest.data(), digest.data(), digest.size());
    if (same) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->name;
}

absl::StatusOr<NewToken> MakeToken(std::string_view name) {
  if (!IsTokenName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token name ", QuoteForMessage(name),
                     " is not 1-64 of [A-Za-z0-9._@-]"));
  }
  ASSIGN_OR_RETURN(const std::string random, RandomBytes(kTokenBytes));
  NewToken made;
  made.token = absl::StrCat(
      "gdn_", ToHex(reinterpret_cast<const uint8_t*>(random.data()), random.size()));
  made.line = absl::StrCat(ToAbsl(name), ":", Sha256Hex(made.token));
  return made;
}

}  // namespace garden
