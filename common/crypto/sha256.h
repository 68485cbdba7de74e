// SHA-256 through OpenSSL's EVP interface: streamed (Sha256) or of one
// string (Sha256Digest), as raw bytes or lower-case hex.
#ifndef GARDEN_COMMON_CRYPTO_SHA256_H_
#define GARDEN_COMMON_CRYPTO_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace garden {

using Sha256Bytes = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  // The digest of everything given so far; ends this hash.
  Sha256Bytes Finish();
  std::string FinishHex();

 private:
  struct Context;
  Context* ctx_;
};

Sha256Bytes Sha256Digest(std::string_view data);
std::string Sha256Hex(std::string_view data);

// Lower-case hex of `bytes`.
std::string ToHex(const uint8_t* bytes, size_t n);

}  // namespace garden

#endif  // GARDEN_COMMON_CRYPTO_SHA256_H_
