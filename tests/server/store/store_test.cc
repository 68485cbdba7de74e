// The checkpoint store (layouts, path safety, corrupt files) and the
// histogram sweep over it, on fixture suites written by the test.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <random>

#include "common/model/gpt_neox.h"
#include "common/text/bpe_trainer.h"
#include "common/text/tokenizer.h"
#include "common/train/trainer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/histogram_sweep.h"
#include "server/store/checkpoint_store.h"
#include "server/store/model_cache.h"
#include "tests/server/testing/suite.h"
#include "tests/testing/brute_force.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TensorSpec;

// Values of embed_out.weight at a step, as stored in F16 (decoded exactly).
std::vector<float> StepValues(int64_t step, size_t n) {
  std::mt19937 rng(static_cast<unsigned>(step) + 17);
  std::normal_distribution<float> dist(0.0f, 0.02f * (1 + step / 1000.0f));
  std::vector<float> xs(n);
  for (auto& x : xs) x = dist(rng);
  return xs;
}

std::vector<double> StoredF16(const std::vector<float>& xs) {
  std::vector<double> out;
  for (float x : xs) out.push_back(DecodeF16(testing::FloatToF16Bits(x)));
  return out;
}

std::vector<TensorSpec> Checkpoint(int64_t step,
                                   const std::string& dtype = "F16") {
  const std::vector<float> xs = StepValues(step, 64 * 16);
  return {
      {"embed_out.weight",
       dtype,
       {64, 16},
       dtype == "F16" ? testing::F16Bytes(xs) : testing::F32Bytes(xs)},
      {"gpt_neox.embed_in.weight", "F16", {64, 16}, testing::F16Bytes(xs)},
      {"gpt_neox.final_layer_norm.weight",
       "F16",
       {16},
       testing::F16Bytes(std::vector<float>(16, 1.0f))},
      {"gpt_neox.layers.0.attention.bias", "BOOL", {4}, std::string(4, '\1')},
  };
}

void WritePlain(const std::string& root, const std::string& model, int64_t step,
                const std::vector<TensorSpec>& tensors) {
  testing::WritePlainCheckpoint(root, model, step, tensors);
}

std::unique_ptr<CheckpointStore> OpenStore(std::vector<std::string> roots) {
  return testing::OpenTestStore(std::move(roots));
}

ModelKey Key(const std::string& size, const std::string& variant = "standard") {
  return ModelKey{"pythia", size, variant, ""};
}

TEST(CheckpointStoreTest, DiscoversThePlainLayout) {
  TempDir root;
  for (int64_t step : {0, 1, 1000}) {
    WritePlain(root.path(), "pythia-70m-deduped", step, Checkpoint(step));
  }
  WritePlain(root.path(), "pythia-1.4b", 512, Checkpoint(512));
  fs::create_directories(root.Join("pythia-1.4b/step9"));  // no weights
  fs::create_directories(root.Join("pythia-1.4b/stepX/"));
  fs::create_directories(root.Join("not-a-model-folder/step1"));
  auto store = OpenStore({root.path()});
  const auto models = store->ListModels("");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].key.Name(), "pythia-1.4b");
  EXPECT_THAT(models[0].steps, ElementsAre(512));
  EXPECT_EQ(models[1].key.Name(), "pythia-70m-deduped");
  EXPECT_THAT(models[1].steps, ElementsAre(0, 1, 1000));
  EXPECT_EQ(models[1].repo_id, "EleutherAI/pythia-70m-deduped");
  EXPECT_EQ(models[1].layout, "plain");
  EXPECT_TRUE(store->ListModels("other").empty());

  auto where = store->Locate(Key("70m", "deduped"), 1000);
  ASSERT_TRUE(where.ok()) << where.status();
  auto tensor = store->OpenTensor(*where, "embed_out.weight");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_THAT(tensor->info->shape, ElementsAre(64, 16));
  EXPECT_THAT(*store->ReadConfig(*where), HasSubstr("hidden_size"));
}

TEST(CheckpointStoreTest, AcceptsARootThatIsAModelFolder) {
  TempDir root;
  WritePlain(root.path(), "pythia-14m", 0, Checkpoint(0));
  auto store = OpenStore({root.Join("pythia-14m")});
  ASSERT_EQ(store->ListModels("").size(), 1u);
  EXPECT_EQ(store->ListModels("")[0].key.Name(), "pythia-14m");
}

TEST(CheckpointStoreTest, DiscoversTheHubCache) {
  TempDir root;
  const fs::path repo = root.Join("models--EleutherAI--pythia-160m");
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "blobs");
  int i = 0;
  for (int64_t step : {0, 2000}) {
    const std::string commit(40, static_cast<char>('a' + i++));
    testing::WriteFile(
        (repo / "refs" / ("step" + std::to_string(step))).string(), commit);
    const std::string blob = "blob" + std::to_string(step);
    testing::WriteSafetensors((repo / "blobs" / blob).string(),
                              Checkpoint(step));
    fs::create_directories(repo / "snapshots" / commit);
    fs::create_symlink("../../blobs/" + blob,
                       repo / "snapshots" / commit / "model.safetensors");
  }
  testing::WriteFile((repo / "refs" / "main").string(), std::string(40, 'a'));
  testing::WriteFile((repo / "refs" / "step5").string(), "not a commit!");
  auto store = OpenStore({root.path()});
  const auto models = store->ListModels("pythia");
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].key.Name(), "pythia-160m");
  EXPECT_EQ(models[0].layout, "hf-cache");
  EXPECT_EQ(models[0].repo_id, "EleutherAI/pythia-160m");
  EXPECT_THAT(models[0].steps, ElementsAre(0, 2000));
  auto where = store->Locate(Key("160m"), 2000);
  ASSERT_TRUE(where.ok());
  auto tensor = store->OpenTensor(*where, "embed_out.weight");
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_EQ(tensor->info->num_bytes(), 64u * 16 * 2);
}

TEST(CheckpointStoreTest, ReadsOnlyTheShardHoldingTheTensor) {
  TempDir root;
  const fs::path dir = root.Join("pythia-2.8b/step3000");
  fs::create_directories(dir);
  auto tensors = Checkpoint(3000);
  testing::WriteSafetensors((dir / "model-00001-of-00002.safetensors").string(),
                            {tensors[0], tensors[3]});
  testing::WriteSafetensors((dir / "model-00002-of-00002.safetensors").string(),
                            {tensors[1], tensors[2]});
  testing::WriteFile((dir / "model.safetensors.index.json").string(), R"({
    "metadata": {"total_size": 4200},
    "weight_map": {
      "embed_out.weight": "model-00001-of-00002.safetensors",
      "gpt_neox.layers.0.attention.bias": "model-00001-of-00002.safetensors",
      "gpt_neox.embed_in.weight": "model-00002-of-00002.safetensors",
      "gpt_neox.final_layer_norm.weight": "model-00002-of-00002.safetensors",
      "gpt_neox.missing": "model-00003-of-00002.safetensors"}})");
  auto store = OpenStore({root.path()});
  auto where = store->Locate(Key("2.8b"), 3000);
  ASSERT_TRUE(where.ok()) << where.status();
  auto t = store->OpenTensor(*where, "gpt_neox.embed_in.weight");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->file->path(), HasSubstr("model-00002-of-00002"));
  auto missing = store->OpenTensor(*where, "gpt_neox.missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(missing.status().message(), HasSubstr("model-00003-of-00002"));
  // Corrupting the other shard does not affect a tensor of this one.
  testing::WriteFile((dir / "model-00001-of-00002.safetensors").string(),
                     "junk");
  EXPECT_TRUE(store->OpenTensor(*where, "gpt_neox.embed_in.weight").ok());
  EXPECT_EQ(store->OpenTensor(*where, "embed_out.weight").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(CheckpointStoreTest, NeverLeavesItsRoots) {
  TempDir root, outside;
  WritePlain(outside.path(), "pythia-70m", 0, Checkpoint(0));
  // A step folder that links outside the root is not served.
  fs::create_directories(root.Join("pythia-70m"));
  fs::create_directory_symlink(outside.Join("pythia-70m/step0"),
                               root.Join("pythia-70m/step0"));
  WritePlain(root.path(), "pythia-70m", 1, Checkpoint(1));
  // A shard index naming a path, and a shard linking outside.
  const fs::path dir = root.Join("pythia-70m/step2");
  fs::create_directories(dir);
  testing::WriteFile((dir / "model.safetensors.index.json").string(), R"({
    "weight_map": {"embed_out.weight": "../step1/model.safetensors",
                   "gpt_neox.embed_in.weight": "linked.safetensors"}})");
  fs::create_symlink(outside.Join("pythia-70m/step0/model.safetensors"),
                     dir / "linked.safetensors");
  auto store = OpenStore({root.path()});
  const auto models = store->ListModels("");
  ASSERT_EQ(models.size(), 1u);
  EXPECT_THAT(models[0].steps, ElementsAre(1, 2));
  auto where = store->Locate(Key("70m"), 2);
  ASSERT_TRUE(where.ok());
  auto by_name = store->OpenTensor(*where, "embed_out.weight");
  EXPECT_EQ(by_name.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(by_name.status().message(), HasSubstr("bad file name"));
  auto by_link = store->OpenTensor(*where, "gpt_neox.embed_in.weight");
  EXPECT_EQ(by_link.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(by_link.status().message(),
              HasSubstr("outside the checkpoint root"));
  EXPECT_EQ(store->OpenTensor(*where, "../../etc/passwd").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckpointStoreTest, MissesNameWhatExists) {
  TempDir root;
  for (int64_t step : {0, 1000, 2000}) {
    WritePlain(root.path(), "pythia-70m", step, Checkpoint(step));
  }
  WritePlain(root.path(), "pythia-70m-deduped", 0, Checkpoint(0));
  auto store = OpenStore({root.path()});
  auto model = store->FindModel(Key("71m"));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(model.status().message(), HasSubstr("pythia-70m"));
  auto step = store->Locate(Key("70m"), 1400);
  EXPECT_EQ(step.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(step.status().message(),
              HasSubstr("step 1400 is not present for pythia-70m; nearest "
                        "present: 1000, 2000"));
  auto where = store->Locate(Key("70m"), 0);
  auto tensor = store->OpenTensor(*where, "embed_out.weigth");
  EXPECT_EQ(tensor.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tensor.status().message(),
              HasSubstr("closest: embed_out.weight"));
}

TEST(CheckpointStoreTest, ASnapshotLocatesStepsWithoutLookingAgain) {
  TempDir root;
  for (int64_t step : {0, 1000, 2000}) {
    WritePlain(root.path(), "pythia-70m", step, Checkpoint(step));
  }
  auto store = OpenStore({root.path()});
  EXPECT_EQ(store->model_lookups(), 0u);
  auto model = store->FindModel(Key("70m"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT((*model)->listing.steps, ElementsAre(0, 1000, 2000));
  auto located = (*model)->LocateAll({0, 2000});
  ASSERT_TRUE(located.ok()) << located.status();
  EXPECT_EQ((*located)[1].step, 2000);
  EXPECT_EQ((*located)[1].dir, fs::canonical(root.Join("pythia-70m/step2000")));
  auto missing = (*model)->LocateAll({0, 1400});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("step 1400 is not present for pythia-70m; nearest "
                        "present: 1000, 2000"));
  EXPECT_EQ(store->model_lookups(), 1u);
  // A snapshot outlives rescans and keeps what it saw.
  WritePlain(root.path(), "pythia-70m", 3000, Checkpoint(3000));
  store->Refresh();
  EXPECT_EQ((*model)->listing.steps.size(), 3u);
  EXPECT_TRUE(store->Locate(Key("70m"), 3000).ok());
  EXPECT_EQ(store->model_lookups(), 2u);
}

TEST(CheckpointStoreTest, FindsCheckpointsAddedWhileRunning) {
  TempDir root;
  WritePlain(root.path(), "pythia-70m", 0, Checkpoint(0));
  auto store = OpenStore({root.path()});
  EXPECT_FALSE(store->Locate(Key("70m"), 1000).ok());
  WritePlain(root.path(), "pythia-70m", 1000, Checkpoint(1000));
  EXPECT_TRUE(store->Locate(Key("70m"), 1000).ok());
}

// Rewrites `path` in place (same inode) with `bytes` and gives it back the
// modification time it had: a change the cache's file stamp cannot see.
void RewriteKeepingStamp(const std::string& path, const std::string& bytes) {
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(ModelCacheTest, ATokenizerThatFailedFailsAgainUntilItsFileChanges) {
  TempDir root;
  auto good = TrainByteLevelBpe({"a small corpus"}, {.vocab_size = 270});
  ASSERT_TRUE(good.ok());
  WritePlain(root.path(), "pythia-70m", 0, Checkpoint(0));
  const std::string path = root.Join("pythia-70m/step0/tokenizer.json");
  // As long as the good file: {"model": ... cut short, then spaces.
  std::string bad = good->substr(0, good->size() / 2);
  bad.resize(good->size(), ' ');
  testing::WriteFile(path, bad);
  auto store = OpenStore({root.path()});
  ModelCache cache(*store, {});
  auto where = store->Locate(Key("70m"), 0);
  ASSERT_TRUE(where.ok()) << where.status();
  const absl::Status first = cache.TokenizerFor(*where).status();
  ASSERT_FALSE(first.ok());
  // Now a good file, but the stamp (size, mtime, inode) is the old one: the
  // failure is remembered, not paid again.
  RewriteKeepingStamp(path, *good);
  EXPECT_EQ(cache.TokenizerFor(*where).status(), first);
  // A file that changed is loaded again.
  const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), now, 0), 0);
  auto loaded = cache.TokenizerFor(*where);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
}

TEST(ModelCacheTest, TokenizerFilesOverTheCapAreRefusedUnread) {
  TempDir root;
  WritePlain(root.path(), "pythia-70m", 0, Checkpoint(0));
  const std::string path = root.Join("pythia-70m/step0/tokenizer.json");
  testing::WriteFile(path, "");
  // Sparse: its size is over the cap, its bytes are never there to read.
  ASSERT_EQ(::truncate(path.c_str(), ModelCache::kMaxTokenizerBytes + 1), 0);
  auto store = OpenStore({root.path()});
  ModelCache cache(*store, {});
  auto where = store->Locate(Key("70m"), 0);
  ASSERT_TRUE(where.ok()) << where.status();
  const absl::Status status = cache.TokenizerFor(*where).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat(ModelCache::kMaxTokenizerBytes + 1,
                                     " bytes, more than the ",
                                     ModelCache::kMaxTokenizerBytes)));
}

TEST(ModelCacheTest, ConcurrentRequestsForOneTokenizerShareOneLoad) {
  TempDir root;
  auto good = TrainByteLevelBpe({"a small corpus"}, {.vocab_size = 270});
  ASSERT_TRUE(good.ok());
  WritePlain(root.path(), "pythia-70m", 0, Checkpoint(0));
  testing::WriteFile(root.Join("pythia-70m/step0/tokenizer.json"), *good);
  auto store = OpenStore({root.path()});
  ModelCache cache(*store, {});
  auto where = store->Locate(Key("70m"), 0);
  ASSERT_TRUE(where.ok()) << where.status();
  std::vector<std::shared_ptr<const Tokenizer>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto t = cache.TokenizerFor(*where);
      if (t.ok()) got[i] = *t;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& t : got) {
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t, got[0]);
  }
  EXPECT_EQ(cache.stats().tokenizer_loads, 1u);
}

TEST(ModelCacheTest, StepsWithTheSameTokenizerBytesShareOneTokenizer) {
  TempDir root;
  auto small = TrainByteLevelBpe({"a small corpus", "of two documents"},
                                 {.vocab_size = 270});
  auto other = TrainByteLevelBpe(
      {"another corpus entirely"},
      {.vocab_size = 270,
       .special_tokens = {"<|endoftext|>", "<|padding|>", "<|other|>"}});
  ASSERT_TRUE(small.ok() && other.ok());
  for (int64_t step : {0, 1, 2}) {
    WritePlain(root.path(), "pythia-70m", step, Checkpoint(step));
    testing::WriteFile(
        root.Join("pythia-70m/step" + std::to_string(step) + "/tokenizer.json"),
        step == 2 ? *other : *small);
  }
  auto store = OpenStore({root.path()});
  ModelCache cache(*store, {});
  std::vector<std::shared_ptr<const Tokenizer>> tokenizers;
  for (int64_t step : {0, 1, 2}) {
    auto where = store->Locate(Key("70m"), step);
    ASSERT_TRUE(where.ok()) << where.status();
    auto tokenizer = cache.TokenizerFor(*where);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizers.push_back(*tokenizer);
  }
  EXPECT_EQ(tokenizers[0], tokenizers[1]);
  EXPECT_NE(tokenizers[0], tokenizers[2]);
  EXPECT_EQ(tokenizers[2]->Encode("<|other|>"), std::vector<int32_t>{2});
  EXPECT_NE(tokenizers[0]->Encode("<|other|>"), std::vector<int32_t>{2});
}

// A model load used to copy weights out of a shared mapping, and a checkpoint
// rewritten under it (cp over it, a download finishing) killed gardend with
// SIGBUS. Loads read with pread: the same damage is a status.
TEST(ModelLoadTest, AFileTruncatedAfterOpenIsDataLossNotACrash) {
  TempDir dir;
  GptNeoxConfig config;
  config.hidden_size = 32;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.intermediate_size = 64;
  config.vocab_size = 64;
  config.max_position_embeddings = 16;
  auto trainer = GptNeoxTrainer::Create(config, OptimizerOptions(), 3);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto weights = (*trainer)->ExportWeights(DType::kF32);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const std::string path = dir.Join("model.safetensors");
  ASSERT_TRUE(weights->WriteAtomic(path).ok());
  auto source = TensorFileWeightSource::Open({path});
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_EQ(truncate(path.c_str(), fs::file_size(path) / 2), 0);
  auto model = GptNeoxModel::Load(config, **source);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr(path));
  EXPECT_THAT(model.status().message(), HasSubstr("truncated while being read"));
}

TEST(CheckpointStoreTest, RejectsMissingRoots) {
  auto store = CheckpointStore::Open({.roots = {"/nonexistent/garden"}});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("/nonexistent/garden"));
}

// ------------------------------------------------------------- sweeps

struct Collected {
  std::vector<StepHistogram> frames;
  std::vector<uint32_t> progress;
};

absl::Status Sweep(HistogramSweepOptions options, Collected& out,
                   size_t stop_after = SIZE_MAX, bool cancel = false) {
  ThreadPool pool(2);
  HistogramSweepCallbacks callbacks;
  callbacks.frame = [&](const StepHistogram& h) {
    out.frames.push_back(h);
    return out.frames.size() < stop_after;
  };
  callbacks.progress = [&](uint32_t done, uint32_t) {
    out.progress.push_back(done);
    return true;
  };
  callbacks.cancelled = [cancel] { return cancel; };
  return RunHistogramSweep(pool, options, callbacks);
}

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int64_t step : steps_) {
      WritePlain(root_.path(), "pythia-70m", step,
                 Checkpoint(step, step == 4 ? "F32" : "F16"));
    }
    store_ = OpenStore({root_.path()});
  }
  std::vector<double> Values(int64_t step) {
    const auto xs = StepValues(step, 64 * 16);
    if (step == 4) return std::vector<double>(xs.begin(), xs.end());
    return StoredF16(xs);
  }
  std::shared_ptr<const StepTensors> Tensors(const std::string& tensor,
                                             std::vector<int64_t> steps) {
    return testing::TensorAtSteps(*store_, Key("70m"), steps, tensor);
  }
  HistogramSweepOptions Options(const std::string& tensor = "embed_out.weight") {
    HistogramSweepOptions options;
    options.steps = Tensors(tensor, steps_);
    options.bins = 20;
    return options;
  }
  TempDir root_;
  std::vector<int64_t> steps_ = {0, 1, 2, 4, 8, 1000, 3000};
  std::unique_ptr<CheckpointStore> store_;
};

TEST_F(SweepTest, ExplicitRangeMatchesBruteForceInStepOrder) {
  auto options = Options();
  options.range = {-0.03, 0.05};
  Collected got;
  ASSERT_TRUE(Sweep(options, got).ok());
  ASSERT_EQ(got.frames.size(), steps_.size());
  EXPECT_TRUE(got.progress.empty());
  for (size_t i = 0; i < steps_.size(); ++i) {
    const StepHistogram& f = got.frames[i];
    EXPECT_EQ(f.step, steps_[i]);
    EXPECT_EQ(f.dtype, steps_[i] == 4 ? DType::kF32 : DType::kF16);
    const auto xs = Values(f.step);
    const auto want = testing::Brute(xs, -0.03, 0.05, 20);
    EXPECT_EQ(f.histogram.counts, want.counts) << "step " << f.step;
    EXPECT_EQ(f.histogram.underflow, want.underflow);
    EXPECT_EQ(f.histogram.overflow, want.overflow);
    const auto m = testing::BruteStats(xs);
    EXPECT_NEAR(f.summary.moments.mean, m.mean, 1e-15);
    EXPECT_NEAR(f.summary.moments.Skewness(), m.skew, 1e-12);
    EXPECT_NEAR(f.summary.moments.ExcessKurtosis(), m.kurt, 1e-12);
  }
}

TEST_F(SweepTest, AutomaticRangeIsCommonToAllSteps) {
  Collected got;
  ASSERT_TRUE(Sweep(Options(), got).ok());
  ASSERT_EQ(got.frames.size(), steps_.size());
  EXPECT_THAT(got.progress, ElementsAre(1, 2, 3, 4, 5, 6, 7));
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t step : steps_) {
    for (double x : Values(step)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  }
  for (const auto& f : got.frames) {
    EXPECT_EQ(f.histogram.lo, lo);
    EXPECT_EQ(f.histogram.hi, hi);
    const auto want = testing::Brute(Values(f.step), lo, hi, 20);
    EXPECT_EQ(f.histogram.counts, want.counts) << "step " << f.step;
    EXPECT_EQ(f.histogram.underflow + f.histogram.overflow, 0u);
  }
}

TEST_F(SweepTest, StopsWhenTheClientStopsReading) {
  auto options = Options();
  options.range = {-1, 1};
  Collected got;
  const absl::Status status = Sweep(options, got, /*stop_after=*/2);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(got.frames.size(), 2u);
  Collected cancelled;
  EXPECT_EQ(
      Sweep(options, cancelled, SIZE_MAX, /*cancel=*/true).code(),
      absl::StatusCode::kCancelled);
}

TEST_F(SweepTest, CorruptStepEndsTheStreamWithDataLoss) {
  const std::string bad = root_.Join("pythia-70m/step8/model.safetensors");
  const auto size = fs::file_size(bad);
  fs::resize_file(bad, size / 2);  // truncated download
  auto options = Options();
  options.range = {-1, 1};
  Collected got;
  const absl::Status status = Sweep(options, got);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr(bad));
  EXPECT_EQ(got.frames.size(), 4u);  // steps 0, 1, 2, 4 came first
  // The other steps are still served.
  options.steps = Tensors("embed_out.weight", {1000, 3000});
  Collected rest;
  EXPECT_TRUE(Sweep(options, rest).ok());
  EXPECT_EQ(rest.frames.size(), 2u);
}

TEST_F(SweepTest, NonFloatTensorsAreRefused) {
  auto options = Options("gpt_neox.layers.0.attention.bias");
  Collected got;
  const absl::Status status = Sweep(options, got);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("BOOL"));
}

TEST_F(SweepTest, ConstantTensorGetsNumpysWidenedRange) {
  auto options = Options("gpt_neox.final_layer_norm.weight");
  Collected got;
  ASSERT_TRUE(Sweep(options, got).ok());
  EXPECT_EQ(got.frames[0].histogram.lo, 0.5);
  EXPECT_EQ(got.frames[0].histogram.hi, 1.5);
  EXPECT_EQ(got.frames[0].histogram.counts[10], 16u);  // 1.0 opens bin 10 of 20
}

}  // namespace
}  // namespace garden
