#include "common/crypto/sha256.h"

#include <openssl/evp.h>

namespace garden {

struct Sha256::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
};

Sha256::Sha256() : ctx_(new Context) {
  // Allocation failures leave md null; Update and Finish then do nothing
  // and the digest is all zeros, which matches nothing real.
  if (ctx_->md != nullptr) EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_->md);
  delete ctx_;
}

void Sha256::Update(const void* data, size_t n) {
  if (ctx_->md != nullptr) EVP_DigestUpdate(ctx_->md, data, n);
}

Sha256Bytes Sha256::Finish() {
  Sha256Bytes digest{};
  unsigned int n = 0;
  if (ctx_->md != nullptr) EVP_DigestFinal_ex(ctx_->md, digest.data(), &n);
  return digest;
}

std::string Sha256::FinishHex() {
  const Sha256Bytes digest = Finish();
  return ToHex(digest.data(), digest.size());
}

Sha256Bytes Sha256Digest(std::string_view data) {
  Sha256 hash;
  hash.Update(data.data(), data.size());
  return hash.Finish();
}

std::string Sha256Hex(std::string_view data) {
  const Sha256Bytes digest = Sha256Digest(data);
  return ToHex(digest.data(), digest.size());
}

std::string ToHex(const uint8_t* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

}  // namespace garden
