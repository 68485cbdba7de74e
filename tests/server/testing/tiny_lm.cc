#include "tests/server/testing/tiny_lm.h"

#include "common/text/bpe_trainer.h"
#include "common/train/trainer.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden::testing {

TinyLm MakeTinyLm(uint64_t seed, int64_t context) {
  TinyLm lm;
  auto json = TrainByteLevelBpe(
      {"The cat sat on the mat.", "The dog sat on the log.",
       "A cat and a dog met on the mat by the log."},
      {.vocab_size = 300});
  EXPECT_TRUE(json.ok()) << json.status();
  auto tokenizer = Tokenizer::FromJson(*json, "tiny tokenizer.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  lm.tokenizer = *std::move(tokenizer);

  GptNeoxConfig config;
  config.hidden_size = 32;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.intermediate_size = 128;
  config.vocab_size = lm.tokenizer->vocab_size();
  config.max_position_embeddings = context;
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), seed);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  auto weights = (*trainer)->ExportWeights(DType::kF32);
  EXPECT_TRUE(weights.ok()) << weights.status();
  TempDir dir;
  const std::string path = dir.Join("model.safetensors");
  EXPECT_TRUE(weights->WriteAtomic(path).ok());
  auto source = TensorFileWeightSource::Open({path});
  EXPECT_TRUE(source.ok()) << source.status();
  auto model = GptNeoxModel::Load(config, **source);
  EXPECT_TRUE(model.ok()) << model.status();
  lm.model = *std::move(model);
  return lm;
}

}  // namespace garden::testing
