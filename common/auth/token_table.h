// The tokens gardend accepts: its --auth-tokens file, one entry a line,
//
//   # comments and blank lines are ignored
//   alice:3f0a…(64 hex digits: the SHA-256 of alice's token)
//
// so the file holds no secret. A name is 1-64 of [A-Za-z0-9._@-]; one name
// may have several tokens (to rotate them). `garden token new NAME` makes a
// token and its line (MakeToken).
//
// Find hashes the presented token and compares the digest with every entry
// (CRYPTO_memcmp), so its time depends on neither the token nor where it
// differs from a known one.
#ifndef GARDEN_COMMON_AUTH_TOKEN_TABLE_H_
#define GARDEN_COMMON_AUTH_TOKEN_TABLE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"

namespace garden {

class TokenTable {
 public:
  // The entries of a token file's text; `file` names it in errors.
  // INVALID_ARGUMENT "FILE:LINE: ..." for a malformed line or a digest
  // given twice; an empty table is allowed (it admits no one).
  static absl::StatusOr<TokenTable> Parse(std::string_view text,
                                          std::string_view file);
  // Reads and parses `path`: NOT_FOUND / PERMISSION_DENIED naming it if it
  // cannot be read, INVALID_ARGUMENT for files over 16 MiB.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The name whose token this is, or nullopt.
  std::optional<std::string> Find(std::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string name;
    Sha256Bytes digest;
  };
  std::vector<Entry> entries_;
};

// A fresh token ("gdn_" and 64 hex digits of 32 random bytes) and the line
// that admits it.
struct NewToken {
  std::string token;
  std::string line;  // "NAME:<sha256 hex>"
};
// INVALID_ARGUMENT for a name TokenTable would refuse.
absl::StatusOr<NewToken> MakeToken(std::string_view name);

// Whether TokenTable takes `name`.
bool IsTokenName(std::string_view name);

}  // namespace garden

#endif  // GARDEN_COMMON_AUTH_TOKEN_TABLE_H_
