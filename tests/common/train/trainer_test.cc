#include "common/train/trainer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "common/formats/safetensors.h"
#include "common/formats/safetensors_writer.h"
#include "common/model/gpt_neox.h"
#include "common/train/train_run.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
using ::garden::testing::TempDir;
using ::garden::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

GptNeoxConfig MicroConfig(int64_t vocab = 96) {
  GptNeoxConfig c;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 128;
  c.vocab_size = vocab;
  return c;
}

// A learnable stream: a few short "words" of token ids in a pseudo-random
// order, separated by 0.
std::vector<int32_t> PatternStream(int64_t n, int32_t vocab) {
  std::vector<int32_t> out;
  uint64_t x = 12345;
  while (static_cast<int64_t>(out.size()) < n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const int32_t word = static_cast<int32_t>((x >> 33) % 8);
    for (int k = 0; k < 3; ++k)
      out.push_back(1 + (word * 5 + k * 3) % (vocab - 1));
    out.push_back(0);
  }
  out.resize(n);
  return out;
}

std::string ReadAll(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileToString(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::string();
}

// Every regular file under `root`, relative path -> bytes.
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      files[fs::relative(e.path(), root).string()] = ReadAll(e.path().string());
    }
  }
  return files;
}

std::vector<std::string> Keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  return keys;
}

// ------------------------------------------------------------ schedules ---

TEST(LrScheduleTest, WarmsUpLinearlyThenDecaysByCosineToTenPercent) {
  LrSchedule lr;
  lr.peak = 1e-3;
  lr.total_steps = 1000;
  EXPECT_EQ(lr.warmup_steps(), 10);
  EXPECT_DOUBLE_EQ(lr.At(1), 1e-4);
  EXPECT_DOUBLE_EQ(lr.At(5), 5e-4);
  EXPECT_DOUBLE_EQ(lr.At(10), 1e-3);
  // Half-way through the decay the cosine is 0: the mean of peak and min.
  EXPECT_NEAR(lr.At(505), 0.55e-3, 1e-12);
  EXPECT_NEAR(lr.At(1000), 1e-4, 1e-15);
  for (int64_t s = 11; s <= 1000; ++s) EXPECT_LT(lr.At(s), lr.At(s - 1));
  // 1% of 32 steps rounds up to one warm-up step.
  LrSchedule short_run;
  short_run.peak = 2.0;
  short_run.total_steps = 32;
  EXPECT_EQ(short_run.warmup_steps(), 1);
  EXPECT_DOUBLE_EQ(short_run.At(1), 2.0);
  EXPECT_NEAR(short_run.At(32), 0.2, 1e-12);
}

TEST(CheckpointScheduleTest, PowersOfTwoThenEveryKAndTheLastStep) {
  EXPECT_THAT(*CheckpointSchedule(32, 8),
              ElementsAre(0, 1, 2, 4, 8, 16, 24, 32));
  EXPECT_THAT(
      *CheckpointSchedule(2500, 1000),
      ElementsAre(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 2500));
  // An interval beyond the run only leaves the powers and the end.
  EXPECT_THAT(*CheckpointSchedule(100, 1000),
              ElementsAre(0, 1, 2, 4, 8, 16, 32, 64, 100));
  const int64_t extra[] = {3, 8, 0};
  EXPECT_THAT(*CheckpointSchedule(10, 100, extra),
              ElementsAre(0, 1, 2, 3, 4, 8, 10));
  EXPECT_THAT(*CheckpointSchedule(1, 1), ElementsAre(0, 1));
}

TEST(CheckpointScheduleTest, RefusesStepsOutsideTheRun) {
  const int64_t beyond[] = {101};
  absl::StatusOr<std::vector<int64_t>> s = CheckpointSchedule(100, 10, beyond);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("101"));
  EXPECT_THAT(s.status().message(), HasSubstr("100"));
  EXPECT_EQ(CheckpointSchedule(100, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckpointSchedule(0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokenBatcherTest, DealsEverySampleOncePerEpochAndIsReproducible) {
  std::vector<int32_t> stream(41);
  for (int i = 0; i < 41; ++i) stream[i] = i;
  auto a = TokenBatcher::Create(stream, 4, 2, 7);
  auto b = TokenBatcher::Create(stream, 4, 2, 7);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->num_samples(), 10);  // (41 - 1) / 4
  std::vector<int> seen(10, 0);
  for (int64_t step = 1; step <= 5; ++step) {
    std::vector<int32_t> batch = a->Batch(step);
    ASSERT_EQ(batch.size(), 10u);
    for (int r = 0; r < 2; ++r) {
      const int32_t first = batch[r * 5];
      ASSERT_EQ(first % 4, 0);
      for (int k = 0; k < 5; ++k) EXPECT_EQ(batch[r * 5 + k], first + k);
      ++seen[first / 4];
    }
  }
  EXPECT_THAT(seen, ::testing::Each(1));
  // Any step can be recomputed out of order (what resuming needs).
  EXPECT_EQ(b->Batch(7), a->Batch(7));
  EXPECT_EQ(b->Batch(2), a->Batch(2));
  EXPECT_EQ(TokenBatcher::Create({1, 2, 3}, 4, 1, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// -------------------------------------------------------------- trainer ---

TEST(GptNeoxTrainerTest, InitialisesAsPythia) {
  GptNeoxConfig config = MicroConfig(512);
  config.hidden_size = 64;
  config.num_attention_heads = 4;
  config.intermediate_size = 256;
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), 3);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const GptNeoxWeights& w = (*trainer)->weights();
  const double small = std::sqrt(2.0 / (5.0 * 64));  // 0.0791
  const double wang = 2.0 / (2 * std::sqrt(64.0));   // 0.125
  auto std_of = [](const at::Tensor& t) { return t.std().item<double>(); };
  EXPECT_NEAR(std_of(w.embed_in), small, 0.02 * small);
  EXPECT_NEAR(std_of(w.embed_out), small, 0.02 * small);
  EXPECT_NEAR(std_of(w.layers[0].qkv_w), small, 0.03 * small);
  EXPECT_NEAR(std_of(w.layers[1].up_w), small, 0.03 * small);
  EXPECT_NEAR(std_of(w.layers[0].dense_w), wang, 0.05 * wang);
  EXPECT_NEAR(std_of(w.layers[1].down_w), wang, 0.03 * wang);
  EXPECT_NEAR(w.embed_in.mean().item<double>(), 0, 0.01);
  EXPECT_EQ(w.layers[0].qkv_b.abs().max().item<float>(), 0);
  EXPECT_EQ(w.layers[1].down_b.abs().max().item<float>(), 0);
  EXPECT_EQ(w.final_b.abs().max().item<float>(), 0);
  EXPECT_TRUE(w.layers[0].ln1_w.eq(1).all().item<bool>());
  EXPECT_TRUE(w.final_w.eq(1).all().item<bool>());
  EXPECT_TRUE(w.embed_in.requires_grad());
  // Untied: two draws.
  EXPECT_FALSE(w.embed_in.equal(w.embed_out));
}

TEST(GptNeoxTrainerTest, LossFallsOverThirtySteps) {
  const GptNeoxConfig config = MicroConfig();
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), 1);
  ASSERT_TRUE(trainer.ok());
  auto batcher =
      TokenBatcher::Create(PatternStream(4000, config.vocab_size), 32, 4, 1);
  ASSERT_TRUE(batcher.ok());
  LrSchedule lr;
  lr.peak = 3e-3;
  lr.total_steps = 30;
  std::vector<double> losses;
  for (int64_t step = 1; step <= 30; ++step) {
    absl::StatusOr<double> loss =
        (*trainer)->Step(batcher->Batch(step), 4, lr.At(step));
    ASSERT_TRUE(loss.ok()) << loss.status();
    losses.push_back(*loss);
  }
  EXPECT_NEAR(losses.front(), std::log(96.0), 0.3);  // uniform at the start
  EXPECT_LT(losses.back(), losses.front() - 1.5);
  EXPECT_EQ((*trainer)->step(), 30);
}

TEST(GptNeoxTrainerTest, GradientsMatchFiniteDifferences) {
  const GptNeoxConfig config = MicroConfig();
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), 5);
  ASSERT_TRUE(trainer.ok());
  const std::vector<int32_t> tokens = PatternStream(2 * 17, config.vocab_size);
  ASSERT_TRUE((*trainer)->LossAndGradients(tokens, 2).ok());
  const GptNeoxWeights& w = (*trainer)->weights();
  for (const at::Tensor* param :
       {&w.layers[0].qkv_w, &w.layers[1].down_w, &w.layers[0].ln2_w}) {
    // The entry with the largest gradient, nudged both ways.
    at::Tensor grad = param->grad().reshape({-1});
    const int64_t i = grad.abs().argmax().item<int64_t>();
    const double analytic = grad[i].item<double>();
    at::Tensor flat = param->detach().view({-1});
    const float original = flat[i].item<float>();
    const float h = 1e-2f;
    double loss[2];
    for (int side = 0; side < 2; ++side) {
      {
        at::NoGradGuard no_grad;
        flat[i].fill_(original + (side == 0 ? h : -h));
      }
      loss[side] = *(*trainer)->Loss(tokens, 2);
    }
    {
      at::NoGradGuard no_grad;
      flat[i].fill_(original);
    }
    const double numeric = (loss[0] - loss[1]) / (2.0 * h);
    EXPECT_NEAR(numeric, analytic, 0.05 * std::abs(analytic) + 1e-4)
        << "entry " << i;
  }
}

TEST(GptNeoxTrainerTest, ExportedCheckpointLoadsWithTheSameLogits) {
  const GptNeoxConfig config = MicroConfig();
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), 2);
  ASSERT_TRUE(trainer.ok());
  auto batcher =
      TokenBatcher::Create(PatternStream(2000, config.vocab_size), 16, 2, 2);
  for (int64_t step = 1; step <= 3; ++step) {
    ASSERT_TRUE((*trainer)->Step(batcher->Batch(step), 2, 1e-3).ok());
  }
  const at::Tensor ids =
      at::tensor(std::vector<int64_t>{3, 7, 0, 11, 5, 9}, at::kLong)
          .view({1, 6});
  at::Tensor expected;
  {
    at::NoGradGuard no_grad;
    expected = GptNeoxForward(config, (*trainer)->weights(), ids);
  }
  TempDir dir;
  for (DType dtype : {DType::kF32, DType::kF16}) {
    absl::StatusOr<SafetensorsWriter> writer = (*trainer)->ExportWeights(dtype);
    ASSERT_TRUE(writer.ok()) << writer.status();
    const std::string path = dir.Join(
        absl::StrCat("model_", std::string(DTypeName(dtype)), ".safetensors"));
    ASSERT_TRUE(writer->WriteAtomic(path).ok());
    auto source = TensorFileWeightSource::Open({path});
    ASSERT_TRUE(source.ok()) << source.status();
    auto model = GptNeoxModel::Load(config, **source);
    ASSERT_TRUE(model.ok()) << model.status();
    absl::StatusOr<at::Tensor> logits = (*model)->Forward(ids);
    ASSERT_TRUE(logits.ok());
    if (dtype == DType::kF32) {
      EXPECT_TRUE(logits->equal(expected)) << "F32 must be bit-exact";
    } else {
      EXPECT_LT((*logits - expected).abs().max().item<float>(), 5e-3);
    }
  }
}

TEST(GptNeoxTrainerTest, StateRestoresBitForBitAndCatchesCorruption) {
  const GptNeoxConfig config = MicroConfig();
  auto a = GptNeoxTrainer::Create(config, OptimizerOptions(), 4);
  auto b = GptNeoxTrainer::Create(config, OptimizerOptions(), 99);
  ASSERT_TRUE(a.ok() && b.ok());
  auto batcher =
      TokenBatcher::Create(PatternStream(2000, config.vocab_size), 16, 2, 4);
  for (int64_t step = 1; step <= 3; ++step) {
    ASSERT_TRUE((*a)->Step(batcher->Batch(step), 2, 1e-3).ok());
  }
  TempDir dir;
  const std::string path = dir.Join("state.safetensors");
  ASSERT_TRUE((*a)->SaveState()->WriteAtomic(path).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*b)->RestoreState(**file).ok());
  EXPECT_EQ((*b)->step(), 3);
  // The next update is the same on both.
  const double la = *(*a)->Step(batcher->Batch(4), 2, 1e-3);
  const double lb = *(*b)->Step(batcher->Batch(4), 2, 1e-3);
  EXPECT_EQ(la, lb);
  EXPECT_EQ((*a)->ExportWeights(DType::kF32)->Encode(),
            (*b)->ExportWeights(DType::kF32)->Encode());

  // One flipped bit in the data section.
  std::string bytes = ReadAll(path);
  bytes[bytes.size() - 100] ^= 0x10;
  const std::string bad = dir.Join("bad.safetensors");
  WriteFile(bad, bytes);
  auto bad_file = SafetensorsFile::Open(bad);
  ASSERT_TRUE(bad_file.ok());
  absl::Status s = (*b)->RestoreState(**bad_file);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("checksum"));
  EXPECT_EQ((*b)->step(), 4);  // untouched
}

TEST(SafetensorsWriterTest, WritesWhatTheReaderReads) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.Add("b", DType::kF32, {2}, std::string(8, '\1')).ok());
  ASSERT_TRUE(writer.Add("a", DType::kF16, {3}, std::string(6, '\2')).ok());
  writer.SetMetadata("note", "x");
  EXPECT_EQ(writer.Add("a", DType::kF16, {1}, "zz").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer.Add("c", DType::kF32, {2}, "short").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer.Add("__metadata__", DType::kU8, {0}, "").code(),
            absl::StatusCode::kInvalidArgument);
  TempDir dir;
  const std::string path = dir.Join("t.safetensors");
  ASSERT_TRUE(writer.WriteAtomic(path).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->data_offset() % 8, 0u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_EQ((*file)->metadata().at("note"), "x");
  const TensorInfo* b = (*file)->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->begin, 0u);  // insertion order in the data
  EXPECT_THAT(b->shape, ElementsAre(2));
  EXPECT_EQ((*file)->Find("a")->begin, 8u);
  EXPECT_EQ((*file)->Find("a")->dtype, DType::kF16);
}

// config.json as the trainer writes it, read back the way gpt_neox_tool does:
// errors name the file, a missing one is NOT_FOUND, a malformed one keeps
// GptNeoxConfig::FromJson's code.
TEST(ReadGptNeoxConfigTest, ReadsTheFileAndNamesItInErrors) {
  testing::TempDir dir;
  const std::string path = dir.Join("config.json");
  absl::StatusOr<GptNeoxConfig> missing = ReadGptNeoxConfig(dir.path());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              ::testing::StartsWith(path + ": cannot open"));

  WriteFile(path, "{\"hidden_size\": 64");
  absl::StatusOr<GptNeoxConfig> malformed = ReadGptNeoxConfig(dir.path());
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(malformed.status().message(),
            path + ": config.json: not valid JSON");

  WriteFile(path,
            R"({"hidden_size": 64, "num_hidden_layers": 3,
                "num_attention_heads": 4, "intermediate_size": 256,
                "vocab_size": 640, "rotary_pct": 0.25})");
  absl::StatusOr<GptNeoxConfig> config = ReadGptNeoxConfig(dir.path());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 64);
  EXPECT_EQ(config->num_hidden_layers, 3);
  EXPECT_EQ(config->head_dim(), 16);
  EXPECT_EQ(config->rotary_dims(), 4);
  EXPECT_EQ(config->vocab_size, 640);
}

// ------------------------------------------------------------ train runs ---

// A fortune folder of deterministic pseudo-English documents.
std::string WriteCorpus(const TempDir& dir, int documents = 400) {
  static const char* kWords[] = {
      "the",   "cat",    "sat",   "on",     "a",      "mat",   "and",
      "dog",   "ran",    "to",    "garden", "where",  "old",   "trees",
      "grow",  "slowly", "every", "spring", "bright", "green", "leaves",
      "fall",  "when",   "wind",  "blows",  "over",   "quiet", "hills",
      "river", "runs",   "past",  "stone",  "bridge", "under", "night"};
  const std::string folder = dir.Join("fortunes");
  fs::create_directories(folder);
  std::string text;
  uint64_t x = 42;
  for (int d = 0; d < documents; ++d) {
    if (d > 0) text += "%\n";
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const int words = 10 + static_cast<int>((x >> 40) % 12);
    for (int w = 0; w < words; ++w) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      if (w > 0) text += " ";
      text += kWords[(x >> 33) % (sizeof(kWords) / sizeof(kWords[0]))];
    }
    text += ".\n";
  }
  WriteFile(folder + "/words", text);
  return folder;
}

class TrainRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetComputeThreads(1);
    corpus_ = WriteCorpus(dir_);
  }

  TrainRunOptions Options(const std::string& out) const {
    TrainRunOptions o;
    o.out_dir = out;
    o.corpus.dir = corpus_;
    o.corpus.heldout_fraction = 0.1;
    o.variant = CorpusVariant::kDeduped;
    o.seed = 7;
    o.model = *FindTrainPreset("micro");
    o.model.vocab_size = 300;
    o.model.seq_len = 16;
    o.model.batch_size = 2;
    o.model.steps = 12;
    o.model.checkpoint_every = 5;
    o.eval_sequences = 2;
    o.log_lines = 1;
    return o;
  }

  TempDir dir_;
  std::string corpus_;
};

TEST_F(TrainRunTest, WritesThePlainLayoutAtPythiasSchedule) {
  const std::string out = dir_.Join("out");
  TrainRunOptions o = Options(out);
  o.store_f32 = true;
  absl::StatusOr<TrainRunResult> r = RunTraining(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->model_name, "fortune-micro-deduped");
  EXPECT_THAT(r->checkpoints_written, ElementsAre(0, 1, 2, 4, 5, 8, 10, 12));
  const std::string model = out + "/fortune-micro-deduped";
  for (int64_t step : r->checkpoints_written) {
    const std::string d = absl::StrCat(model, "/step", step);
    for (const char* f :
         {"config.json", "model.safetensors", "tokenizer.json"}) {
      EXPECT_TRUE(fs::is_regular_file(d + "/" + f)) << d << "/" << f;
    }
  }
  EXPECT_TRUE(fs::exists(out + "/fortune-lambada.jsonl"));
  EXPECT_TRUE(fs::exists(
      out + "/.garden-train/fortune-micro-deduped/state.safetensors"));
  // Nothing else in the model folder (the store reads it).
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(model)) {
    entries.push_back(e.path().filename().string());
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_THAT(entries,
              ElementsAre("step0", "step1", "step10", "step12", "step2",
                          "step4", "step5", "step8", "train.json"));

  // config.json: Pythia's keys; vocabulary padded past the tokenizer's.
  const nlohmann::json config =
      nlohmann::json::parse(ReadAll(model + "/step12/config.json"));
  EXPECT_EQ(config["architectures"][0], "GPTNeoXForCausalLM");
  EXPECT_EQ(config["hidden_size"], 32);
  EXPECT_EQ(config["intermediate_size"], 128);
  EXPECT_EQ(config["num_attention_heads"], 2);
  EXPECT_EQ(config["rotary_pct"], 0.25);
  EXPECT_EQ(config["tie_word_embeddings"], false);
  EXPECT_EQ(config["use_parallel_residual"], true);
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["vocab_size"].get<int>() % 128, 0);
  const nlohmann::json train =
      nlohmann::json::parse(ReadAll(model + "/train.json"));
  EXPECT_GT(config["vocab_size"].get<int>(),
            train["tokenizer_vocab_size"].get<int>());
  EXPECT_EQ(train["complete"], true);
  EXPECT_EQ(train["checkpoints"].size(), 8u);
  EXPECT_EQ(train["checkpoints"].back()["step"], 12);
  EXPECT_TRUE(train["checkpoints"].back()["heldout_loss"].is_number());

  // The final checkpoint, loaded for serving, computes what the training
  // state's master weights compute (the state uses Pythia's names too).
  absl::StatusOr<GptNeoxConfig> parsed = ReadGptNeoxConfig(model + "/step12");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto served = TensorFileWeightSource::OpenDir(model + "/step12");
  auto state = TensorFileWeightSource::Open(
      {out + "/.garden-train/fortune-micro-deduped/state.safetensors"});
  ASSERT_TRUE(served.ok() && state.ok());
  auto m1 = GptNeoxModel::Load(*parsed, **served);
  auto m2 = GptNeoxModel::Load(*parsed, **state);
  ASSERT_TRUE(m1.ok() && m2.ok()) << m1.status() << m2.status();
  const at::Tensor ids =
      at::tensor(std::vector<int64_t>{0, 5, 17, 100, 42}, at::kLong)
          .view({1, 5});
  EXPECT_TRUE((*m1)->Forward(ids)->equal(*(*m2)->Forward(ids)));
}

TEST_F(TrainRunTest, SameSeedSameBytesAndResumeMatchesAnUninterruptedRun) {
  const std::string a = dir_.Join("a"), b = dir_.Join("b"), c = dir_.Join("c");
  ASSERT_TRUE(RunTraining(Options(a)).ok());
  ASSERT_TRUE(RunTraining(Options(b)).ok());
  const auto tree_a = Tree(a);
  EXPECT_EQ(tree_a, Tree(b));
  // F16 by default.
  auto file = SafetensorsFile::Open(
      a + "/fortune-micro-deduped/step12/model.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Find("embed_out.weight")->dtype, DType::kF16);

  // Killed after update 7 (last checkpoint 5), then run again.
  TrainRunOptions stop = Options(c);
  stop.stop_after = 7;
  absl::StatusOr<TrainRunResult> first = RunTraining(stop);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->complete);
  EXPECT_FALSE(fs::exists(c + "/fortune-micro-deduped/step8"));
  absl::StatusOr<TrainRunResult> second = RunTraining(Options(c));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->start_step, 5);
  EXPECT_TRUE(second->complete);
  const auto tree_c = Tree(c);
  EXPECT_EQ(Keys(tree_a), Keys(tree_c));
  EXPECT_TRUE(tree_a == tree_c);

  // A run killed between publishing a step folder and saving the state:
  // the folder is rewritten with the same bytes.
  fs::remove_all(c + "/fortune-micro-deduped/step12");
  ASSERT_TRUE(RunTraining(Options(c)).ok());
  EXPECT_TRUE(Tree(c) == tree_a);

  // A finished run does nothing more.
  absl::StatusOr<TrainRunResult> again = RunTraining(Options(c));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->complete);
  EXPECT_TRUE(again->checkpoints_written.empty());
}

TEST_F(TrainRunTest, VariantsShareTheTokenizerAndDiffer) {
  const std::string out = dir_.Join("out");
  TrainRunOptions o = Options(out);
  ASSERT_TRUE(RunTraining(o).ok());
  o.variant = CorpusVariant::kStandard;
  ASSERT_TRUE(RunTraining(o).ok());
  EXPECT_EQ(ReadAll(out + "/fortune-micro/step0/tokenizer.json"),
            ReadAll(out + "/fortune-micro-deduped/step0/tokenizer.json"));
  EXPECT_NE(ReadAll(out + "/fortune-micro/step12/model.safetensors"),
            ReadAll(out + "/fortune-micro-deduped/step12/model.safetensors"));
}

// The recipe's knobs (weight decay, warm-up, final rate) and the tokenizer's
// extra corpus reach the run, are recorded, and keep it reproducible and
// resumable.
TEST_F(TrainRunTest, RecipeAndTokenizerCorpusAreUsedRecordedAndResumable) {
  // Words the training documents never hold, often enough to be merged.
  const std::string extra = dir_.Join("licenses");
  fs::create_directories(extra);
  std::string text;
  for (int i = 0; i < 500; ++i) text += "zebra quokka xylophone\n";
  WriteFile(extra + "/animals", text);
  WriteFile(extra + "/animals.copy", text);  // the same bytes: read once

  auto options = [&](const std::string& out) {
    TrainRunOptions o = Options(out);
    o.model.weight_decay = 0.5;
    o.model.warmup_fraction = 0.25;  // 3 of the 12 updates
    o.model.final_lr_fraction = 0.5;
    o.model.tokenizer_corpus = extra;
    return o;
  };
  const std::string a = dir_.Join("a"), b = dir_.Join("b"),
                    plain = dir_.Join("plain");
  ASSERT_TRUE(RunTraining(options(a)).ok());
  ASSERT_TRUE(RunTraining(Options(plain)).ok());
  const std::string model = "/fortune-micro-deduped";

  const nlohmann::json tokenizer =
      nlohmann::json::parse(ReadAll(a + model + "/step0/tokenizer.json"));
  EXPECT_TRUE(tokenizer["model"]["vocab"].contains("\u0120quokka"));
  const nlohmann::json plain_tokenizer =
      nlohmann::json::parse(ReadAll(plain + model + "/step0/tokenizer.json"));
  EXPECT_FALSE(plain_tokenizer["model"]["vocab"].contains("\u0120quokka"));

  const nlohmann::json train =
      nlohmann::json::parse(ReadAll(a + model + "/train.json"));
  const nlohmann::json& settings = train["settings"];
  EXPECT_EQ(settings["optimizer"]["weight_decay"], 0.5);
  EXPECT_EQ(settings["optimizer"]["warmup_steps"], 3);
  EXPECT_EQ(settings["optimizer"]["final_lr_fraction"], 0.5);
  EXPECT_EQ(settings["tokenizer_corpus"]["dir"], extra);
  EXPECT_EQ(settings["tokenizer_corpus"]["documents"], 1);
  // The rates recorded follow the schedule: the peak at the end of the
  // warm-up, half of it at the last update.
  const double peak = Options(a).model.learning_rate;
  std::map<int64_t, double> rate;
  for (const nlohmann::json& c : train["checkpoints"]) {
    rate[c["step"].get<int64_t>()] = c["learning_rate"].get<double>();
  }
  EXPECT_DOUBLE_EQ(rate.at(1), peak / 3);
  EXPECT_DOUBLE_EQ(rate.at(12), 0.5 * peak);
  // Without the options the settings are those of before (same keys).
  const nlohmann::json plain_train =
      nlohmann::json::parse(ReadAll(plain + model + "/train.json"));
  EXPECT_FALSE(plain_train["settings"].contains("tokenizer_corpus"));
  EXPECT_EQ(plain_train["settings"]["optimizer"]["weight_decay"], 0.01);
  EXPECT_NE(train["fingerprint"], plain_train["fingerprint"]);

  // Same bytes again; a killed run resumes to them.
  const auto tree_a = Tree(a);
  TrainRunOptions stop = options(b);
  stop.stop_after = 7;
  ASSERT_TRUE(RunTraining(stop).ok());
  absl::StatusOr<TrainRunResult> resumed = RunTraining(options(b));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->start_step, 5);
  EXPECT_TRUE(Tree(b) == tree_a);

  // Another weight decay is other settings, refused without --overwrite.
  TrainRunOptions other = options(a);
  other.model.weight_decay = 0.1;
  absl::StatusOr<TrainRunResult> refused = RunTraining(other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("optimizer"));
}

TEST_F(TrainRunTest, RefusesOtherSettingsUnlessOverwriting) {
  const std::string out = dir_.Join("out");
  ASSERT_TRUE(RunTraining(Options(out)).ok());
  const auto before = Tree(out);
  TrainRunOptions other = Options(out);
  other.model.steps = 14;
  absl::StatusOr<TrainRunResult> r = RunTraining(other);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("steps: 14 here, 12 there"));
  EXPECT_TRUE(Tree(out) == before);
  // Another vocabulary changes the suite's tokenizer: refused too.
  TrainRunOptions vocab = Options(out);
  vocab.model.vocab_size = 290;
  vocab.size = "other";
  EXPECT_EQ(RunTraining(vocab).status().code(),
            absl::StatusCode::kFailedPrecondition);
  other.overwrite = true;
  r = RunTraining(other);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(fs::exists(out + "/fortune-micro-deduped/step14"));
  EXPECT_FALSE(fs::exists(out + "/fortune-micro-deduped/step12"));

  // A folder garden-train did not write.
  const std::string foreign = dir_.Join("foreign");
  fs::create_directories(foreign + "/fortune-micro-deduped/step0");
  EXPECT_EQ(RunTraining(Options(foreign)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrainRunTest, OneRunPerModelAtATime) {
  const std::string out = dir_.Join("out");
  fs::create_directories(out + "/.garden-train");
  const std::string lock = out + "/.garden-train/fortune-micro-deduped.lock";
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  absl::StatusOr<TrainRunResult> r = RunTraining(Options(out));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("another garden-train"));
  close(fd);
  EXPECT_TRUE(RunTraining(Options(out)).ok());
}

TEST_F(TrainRunTest, RefusesACorruptStateAndChangesNothing) {
  const std::string out = dir_.Join("out");
  TrainRunOptions stop = Options(out);
  stop.stop_after = 6;
  ASSERT_TRUE(RunTraining(stop).ok());
  const std::string state =
      out + "/.garden-train/fortune-micro-deduped/state.safetensors";
  std::string bytes = ReadAll(state);
  bytes[bytes.size() / 2 + 1000] ^= 0x01;
  WriteFile(state, bytes);
  const auto before = Tree(out);
  absl::StatusOr<TrainRunResult> r = RunTraining(Options(out));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("corrupt"));
  EXPECT_TRUE(Tree(out) == before);
  // A truncated one too.
  WriteFile(state, bytes.substr(0, 100));
  r = RunTraining(Options(out));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("corrupt"));
}

TEST_F(TrainRunTest, BadInputFailsClearlyAndWritesNothing) {
  struct Case {
    std::string name;
    std::function<void(TrainRunOptions&)> edit;
    absl::StatusCode code;
    std::vector<std::string> mentions;
  };
  const std::string empty_dir = dir_.Join("empty");
  fs::create_directories(empty_dir);
  const std::vector<Case> cases = {
      {"missing corpus",
       [&](auto& o) { o.corpus.dir = dir_.Join("nope"); },
       absl::StatusCode::kNotFound,
       {"nope"}},
      {"empty corpus",
       [&](auto& o) { o.corpus.dir = empty_dir; },
       absl::StatusCode::kFailedPrecondition,
       {"no documents"}},
      {"small vocab",
       [](auto& o) { o.model.vocab_size = 200; },
       absl::StatusCode::kInvalidArgument,
       {"200", "258"}},
      {"checkpoint beyond steps",
       [](auto& o) { o.extra_checkpoints = {13}; },
       absl::StatusCode::kInvalidArgument,
       {"13", "12"}},
      {"zero interval",
       [](auto& o) { o.model.checkpoint_every = 0; },
       absl::StatusCode::kInvalidArgument,
       {"--checkpoint-every"}},
      {"heads",
       [](auto& o) { o.model.num_heads = 3; },
       absl::StatusCode::kInvalidArgument,
       {"--heads 3"}},
      {"odd rotary",
       [](auto& o) { o.model.num_heads = 8; },  // head_dim 4
       absl::StatusCode::kInvalidArgument,
       {"rotary"}},
      {"long sequences",
       [](auto& o) { o.model.seq_len = 4096; },
       absl::StatusCode::kInvalidArgument,
       {"4096", "2048"}},
      {"bad suite",
       [](auto& o) { o.suite = "My-Suite"; },
       absl::StatusCode::kInvalidArgument,
       {"My-Suite"}},
      {"negative weight decay",
       [](auto& o) { o.model.weight_decay = -0.5; },
       absl::StatusCode::kInvalidArgument,
       {"--weight-decay -0.5", "[0, 1)"}},
      {"NaN weight decay",
       [](auto& o) { o.model.weight_decay = std::nan(""); },
       absl::StatusCode::kInvalidArgument,
       {"--weight-decay nan"}},
      {"warm-up of every update",
       [](auto& o) { o.model.warmup_fraction = 1; },
       absl::StatusCode::kInvalidArgument,
       {"--warmup 1 ", "[0, 1)"}},
      {"final rate above the peak",
       [](auto& o) { o.model.final_lr_fraction = 1.5; },
       absl::StatusCode::kInvalidArgument,
       {"--final-lr 1.5", "[0, 1]"}},
      {"missing tokenizer corpus",
       [&](auto& o) { o.model.tokenizer_corpus = dir_.Join("no-licenses"); },
       absl::StatusCode::kNotFound,
       {"--tokenizer-corpus", "no-licenses"}},
      {"empty tokenizer corpus",
       [&](auto& o) { o.model.tokenizer_corpus = empty_dir; },
       absl::StatusCode::kFailedPrecondition,
       {"--tokenizer-corpus", "no documents"}},
  };
  for (const Case& c : cases) {
    const std::string out =
        dir_.Join("out-" + std::to_string(&c - cases.data()));
    TrainRunOptions o = Options(out);
    c.edit(o);
    absl::StatusOr<TrainRunResult> r = RunTraining(o);
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    for (const std::string& m : c.mentions) {
      EXPECT_THAT(r.status().message(), HasSubstr(m)) << c.name;
    }
    EXPECT_FALSE(fs::exists(out)) << c.name;
  }
}

}  // namespace
}  // namespace garden
