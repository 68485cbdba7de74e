// A randomly initialised GPT-NeoX model small enough for unit tests, with a
// byte-level BPE tokenizer whose vocabulary it covers.
#ifndef GARDEN_TESTS_SERVER_TESTING_TINY_LM_H_
#define GARDEN_TESTS_SERVER_TESTING_TINY_LM_H_

#include <cstdint>
#include <memory>

#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"

namespace garden::testing {

struct TinyLm {
  std::shared_ptr<const GptNeoxModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;
};

// Two layers of width 32, the tokenizer's vocabulary (~300 ids: the 256
// bytes, <|endoftext|>, <|padding|> and merges of a few English
// sentences), `context` positions. The same seed gives the same weights.
TinyLm MakeTinyLm(uint64_t seed = 7, int64_t context = 64);

}  // namespace garden::testing

#endif  // GARDEN_TESTS_SERVER_TESTING_TINY_LM_H_
