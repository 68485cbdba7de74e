// Secrets: random bytes from OpenSSL's CSPRNG, and comparison in time that
// does not depend on where two byte strings differ.
#ifndef GARDEN_COMMON_CRYPTO_RANDOM_H_
#define GARDEN_COMMON_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace garden {

// `n` random bytes. INTERNAL if the generator fails (it is never silently
// weak).
absl::StatusOr<std::string> RandomBytes(size_t n);

// a == b for `n` bytes, in time independent of their contents.
bool ConstantTimeEqual(const uint8_t* a, const uint8_t* b, size_t n);

}  // namespace garden

#endif  // GARDEN_COMMON_CRYPTO_RANDOM_H_
