#include "common/train/train_run.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/formats/safetensors.h"
#include "common/model/gpt_neox.h"
#include "common/naming/names.h"
#include "common/text/bpe_trainer.h"
#include "common/text/tokenizer.h"
#include "common/train/trainer.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int64_t kMaxPositions = 2048;  // Pythia's context, for serving
constexpr int64_t kVocabMultiple = 128;
constexpr int kSettingsFormat = 1;
constexpr char kStateDir[] = ".garden-train";
constexpr char kFingerprintKey[] = "garden_train_fingerprint";
constexpr char kHistoryKey[] = "garden_train_history";
// Pythia's special tokens, BpeTrainerOptions' default: <|endoftext|> is id 0,
// the separator between documents, <|padding|> id 1.
constexpr int32_t kEndOfText = 0;
size_t NumSpecialTokens() { return BpeTrainerOptions().special_tokens.size(); }

// -------------------------------------------------------------- presets ---

// Calibrated on a 2-core x86 VM shared with other work (libtorch 1.13 CPU,
// OpenBLAS, --threads 2) so that the default suite, tiny and small in both
// variants, trains in well under five minutes there: measured about 30 s
// per tiny model and 55 s per small one (held-out loss about 4.9 and 4.75
// nats against 6.6 for the unigram baseline). micro trains in about a
// second after the tokenizer (about 2 s on the whole corpus).
const std::vector<TrainPreset>& Presets() {
  static const auto* presets = new std::vector<TrainPreset>{
      {.name = "micro",
       .hidden_size = 32,
       .num_layers = 2,
       .num_heads = 2,
       .seq_len = 32,
       .batch_size = 4,
       .steps = 32,
       .checkpoint_every = 8,
       .learning_rate = 3e-3,
       .vocab_size = 512},
      {.name = "tiny",
       .hidden_size = 64,
       .num_layers = 2,
       .num_heads = 4,
       .seq_len = 64,
       .batch_size = 16,
       .steps = 600,
       .checkpoint_every = 100,
       .learning_rate = 3e-3,
       .vocab_size = 4096},
      {.name = "small",
       .hidden_size = 128,
       .num_layers = 3,
       .num_heads = 4,
       .seq_len = 64,
       .batch_size = 16,
       .steps = 600,
       .checkpoint_every = 100,
       .learning_rate = 3e-3,
       .vocab_size = 4096},
  };
  return *presets;
}

// ------------------------------------------------------------ file moves ---

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(dir, ": cannot create: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot remove: ", ec.message()));
  }
  return absl::OkStatus();
}

// Puts the complete folder `staged` at `target` in one step: a rename, or,
// when `target` exists (a step rewritten after a resume), an atomic
// exchange, after which the old folder is deleted. Readers never see a
// partial folder.
absl::Status Publish(const std::string& staged, const std::string& target) {
  if (renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(),
                RENAME_NOREPLACE) != 0) {
    if (errno != EEXIST) return ErrnoStatus(target, errno, "rename");
    if (renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(),
                  RENAME_EXCHANGE) != 0) {
      return ErrnoStatus(target, errno, "rename (exchange)");
    }
    if (auto s = RemoveTree(staged); !s.ok()) return s;
  }
  return FsyncDirectory(fs::path(target).parent_path().string());
}

// Moves `path` (file or folder) out of sight, then deletes it.
absl::Status Discard(const std::string& path, const std::string& trash) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return absl::OkStatus();
  if (auto s = MakeDirs(fs::path(trash).parent_path().string()); !s.ok()) {
    return s;
  }
  if (auto s = RemoveTree(trash); !s.ok()) return s;
  fs::rename(path, trash, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot move aside: ", ec.message()));
  }
  return RemoveTree(trash);
}

// ----------------------------------------------------------------- JSON ---

LrSchedule ScheduleOf(const TrainPreset& m) {
  LrSchedule lr;
  lr.peak = m.learning_rate;
  lr.total_steps = m.steps;
  return lr;
}

Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return j;
}

absl::Status WriteJsonFile(const std::string& path, const Json& j) {
  return WriteFileAtomic(path, j.dump(2) + "\n");
}

// "steps: 600 here, 800 in the folder; seed: ..." for the keys that differ.
std::string SettingsDiff(const Json& want, const Json& have) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : want.items()) {
    auto it = have.find(key);
    if (it == have.end()) {
      parts.push_back(
          absl::StrCat(key, ": ", value.dump(), " here, absent there"));
    } else if (*it != value) {
      parts.push_back(absl::StrCat(key, ": ", value.dump(), " here, ",
                                   it->dump(), " there"));
    }
  }
  for (const auto& [key, value] : have.items()) {
    if (!want.contains(key)) {
      parts.push_back(
          absl::StrCat(key, ": absent here, ", value.dump(), " there"));
    }
  }
  return parts.empty() ? std::string("(identical settings, other fingerprint)")
                       : absl::StrJoin(parts, "; ");
}

std::string Fingerprint(const Json& settings) {
  Checksum64 sum;
  const std::string text = settings.dump();
  sum.Update(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(text.data()),
                                 text.size()));
  return sum.Hex();
}

std::string CorpusChecksum(const Corpus& corpus) {
  Checksum64 sum;
  for (const auto* docs : {&corpus.train, &corpus.heldout}) {
    for (const std::string& d : *docs) {
      sum.Update(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(d.data()),
                                     d.size()));
    }
    sum.Update({});  // a boundary between the two lists
  }
  return sum.Hex();
}

// ------------------------------------------------------------ validation ---

std::string ConfigJson(const TrainPreset& m, int64_t vocab, bool f32) {
  const Json config = {
      {"architectures", {"GPTNeoXForCausalLM"}},
      {"attention_dropout", 0.0},
      {"bos_token_id", kEndOfText},
      {"eos_token_id", kEndOfText},
      {"hidden_act", "gelu"},
      {"hidden_dropout", 0.0},
      {"hidden_size", m.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", 4 * m.hidden_size},
      {"layer_norm_eps", 1e-5},
      {"max_position_embeddings", kMaxPositions},
      {"model_type", "gpt_neox"},
      {"num_attention_heads", m.num_heads},
      {"num_hidden_layers", m.num_layers},
      {"rotary_emb_base", 10000},
      {"rotary_pct", 0.25},
      {"tie_word_embeddings", false},
      {"torch_dtype", f32 ? "float32" : "float16"},
      {"use_cache", true},
      {"use_parallel_residual", true},
      {"vocab_size", vocab},
  };
  return config.dump(2) + "\n";
}

absl::Status ValidateOptions(const TrainRunOptions& o,
                             const std::string& size) {
  const TrainPreset& m = o.model;
  auto positive = [](const char* flag, int64_t v) -> absl::Status {
    if (v >= 1) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be at least 1, got ", v));
  };
  for (const auto& [flag, v] :
       {std::pair{"--hidden", m.hidden_size},
        std::pair{"--layers", m.num_layers}, std::pair{"--heads", m.num_heads},
        std::pair{"--seq-len", m.seq_len}, std::pair{"--batch", m.batch_size},
        std::pair{"--steps", m.steps},
        std::pair{"--checkpoint-every", m.checkpoint_every}}) {
    if (auto s = positive(flag, v); !s.ok()) return s;
  }
  if (m.hidden_size % m.num_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--hidden ", m.hidden_size,
                     " is not divisible by --heads ", m.num_heads));
  }
  if (m.seq_len > kMaxPositions) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seq-len ", m.seq_len, " exceeds the limit ",
                     kMaxPositions, " (max_position_embeddings)"));
  }
  if (!(m.learning_rate > 0) || !std::isfinite(m.learning_rate) ||
      m.learning_rate > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lr ", m.learning_rate, " must be in (0, 1]"));
  }
  const int min_vocab = 256 + static_cast<int>(NumSpecialTokens());
  if (m.vocab_size < min_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vocab-size ", m.vocab_size, " is below the minimum ", min_vocab,
        " (256 byte tokens + ", NumSpecialTokens(), " special tokens)"));
  }
  if (m.vocab_size > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vocab-size ", m.vocab_size, " exceeds the limit ", 1 << 20));
  }
  // Shape limits the loader enforces (even rotary dimensions per head),
  // checked before any work; the vocabulary is not known yet.
  if (absl::StatusOr<GptNeoxConfig> c =
          GptNeoxConfig::FromJson(ConfigJson(m, kVocabMultiple, o.store_f32));
      !c.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--hidden ", m.hidden_size, " / --heads ", m.num_heads,
                     " make no valid GPT-NeoX model: ", c.status().message()));
  }
  if (o.stop_after < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stop-after must be >= 0, got ", o.stop_after));
  }
  if (o.eval_sequences < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--eval-sequences must be >= 0, got ", o.eval_sequences));
  }
  if (o.out_dir.empty()) return absl::InvalidArgumentError("--out is required");
  const ModelKey key{
      o.suite, size,
      o.variant == CorpusVariant::kDeduped ? "deduped" : "standard"};
  const std::optional<ModelKey> parsed = ModelKey::FromRepoName(key.Name());
  if (!parsed || *parsed != key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--suite \"", o.suite, "\" and --size \"", size,
        "\" do not make a model name the store can read: the suite must be "
        "[a-z0-9]+, the size [a-z0-9.]+"));
  }
  return absl::OkStatus();
}

// Tokens of `docs`, each followed by <|endoftext|>.
std::vector<int32_t> TokenStream(const Tokenizer& tokenizer,
                                 const std::vector<std::string>& docs) {
  std::vector<int32_t> stream;
  for (const std::string& doc : docs) {
    std::vector<int32_t> ids = tokenizer.Encode(doc);
    stream.insert(stream.end(), ids.begin(), ids.end());
    stream.push_back(kEndOfText);
  }
  return stream;
}

// Mean -log p of the held-out targets under the training stream's unigram
// distribution (add-one smoothing over the tokenizer's ids): the loss a
// model must beat to have learnt anything about context.
double UnigramLoss(const std::vector<int32_t>& train, int32_t vocab,
                   const std::vector<int32_t>& eval, int64_t width) {
  std::vector<double> counts(vocab, 1.0);
  for (int32_t id : train) counts[id] += 1;
  const double total = static_cast<double>(train.size()) + vocab;
  double sum = 0;
  int64_t n = 0;
  for (size_t i = 0; i < eval.size(); ++i) {
    if (i % width == 0) continue;  // inputs only, never a target
    sum -= std::log(counts[eval[i]] / total);
    ++n;
  }
  return n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

struct Paths {
  std::string out, model_dir, state_dir, state_file, lock, train_json,
      suite_file, lambada, trash;
};

struct CheckpointRecord {
  int64_t step = 0;
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double heldout_loss = std::numeric_limits<double>::quiet_NaN();
  double learning_rate = 0;
  int64_t tokens_seen = 0;

  Json ToJson() const {
    return {{"step", step},
            {"train_loss", Number(train_loss)},
            {"heldout_loss", Number(heldout_loss)},
            {"learning_rate", learning_rate},
            {"tokens_seen", tokens_seen}};
  }
  static std::optional<CheckpointRecord> FromJson(const Json& j) {
    if (!j.is_object() || !j.contains("step") ||
        !j["step"].is_number_integer()) {
      return std::nullopt;
    }
    CheckpointRecord r;
    r.step = j["step"].get<int64_t>();
    auto num = [&](const char* key, double* out) {
      auto it = j.find(key);
      if (it != j.end() && it->is_number()) *out = it->get<double>();
    };
    num("train_loss", &r.train_loss);
    num("heldout_loss", &r.heldout_loss);
    num("learning_rate", &r.learning_rate);
    if (auto it = j.find("tokens_seen");
        it != j.end() && it->is_number_integer()) {
      r.tokens_seen = it->get<int64_t>();
    }
    return r;
  }
};

// Everything one run computes before touching the disk.
struct Plan {
  TrainPreset model;
  std::string size;
  std::string model_name;
  Paths paths;
  Corpus corpus;
  std::string tokenizer_json;
  int32_t tokenizer_vocab = 0;
  GptNeoxConfig config;
  std::string config_json;
  std::vector<int32_t> train_stream;
  std::vector<int32_t> eval_tokens;  // whole samples of seq_len + 1
  int64_t eval_samples = 0;
  double unigram_loss = 0;
  std::vector<int64_t> schedule;
  Json settings;
  std::string fingerprint;
  Json suite_record;
};

absl::StatusOr<Plan> MakePlan(const TrainRunOptions& o) {
  Plan plan;
  plan.model = o.model;
  plan.size = o.size.empty() ? o.model.name : o.size;
  if (auto s = ValidateOptions(o, plan.size); !s.ok()) return s;
  const TrainPreset& m = plan.model;
  const bool deduped = o.variant == CorpusVariant::kDeduped;
  plan.model_name =
      ModelKey{o.suite, plan.size, deduped ? "deduped" : "standard"}.Name();
  auto schedule =
      CheckpointSchedule(m.steps, m.checkpoint_every, o.extra_checkpoints);
  if (!schedule.ok()) {
    // CheckpointSchedule speaks of "checkpoint step"; say which flag.
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint-steps: ", schedule.status().message()));
  }
  plan.schedule = *std::move(schedule);

  Paths& p = plan.paths;
  p.out = o.out_dir;
  p.model_dir = absl::StrCat(o.out_dir, "/", plan.model_name);
  p.state_dir = absl::StrCat(o.out_dir, "/", kStateDir, "/", plan.model_name);
  p.state_file = p.state_dir + "/state.safetensors";
  p.lock =
      absl::StrCat(o.out_dir, "/", kStateDir, "/", plan.model_name, ".lock");
  p.train_json = p.model_dir + "/train.json";
  p.suite_file =
      absl::StrCat(o.out_dir, "/", kStateDir, "/", o.suite, ".suite.json");
  p.lambada = absl::StrCat(o.out_dir, "/", o.suite, "-lambada.jsonl");
  p.trash = absl::StrCat(o.out_dir, "/", kStateDir, "/trash.", plan.model_name,
                         ".", getpid());

  // Corpus, tokenizer, token streams.
  absl::StatusOr<Corpus> corpus = LoadFortunes(o.corpus);
  if (!corpus.ok()) {
    return absl::Status(corpus.status().code(),
                        absl::StrCat("corpus: ", corpus.status().message()));
  }
  plan.corpus = *std::move(corpus);
  if (plan.corpus.train.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "corpus: ", o.corpus.dir, " has no training documents (all ",
        plan.corpus.heldout.size(), " are held out)"));
  }
  // What makes the bytes: compared before resuming or adding to a folder.
  const OptimizerOptions optimizer;
  const LrSchedule lr = ScheduleOf(m);
  const Json corpus_settings = {
      {"documents_checksum", CorpusChecksum(plan.corpus)},
      {"train_documents", plan.corpus.train.size()},
      {"heldout_documents", plan.corpus.heldout.size()},
      {"heldout_fraction", o.corpus.heldout_fraction},
  };
  plan.settings = {
      {"format", kSettingsFormat},
      {"suite", o.suite},
      {"size", plan.size},
      {"variant", deduped ? "deduped" : "standard"},
      {"seed", o.seed},
      {"preset", m.name},
      {"hidden_size", m.hidden_size},
      {"num_hidden_layers", m.num_layers},
      {"num_attention_heads", m.num_heads},
      {"seq_len", m.seq_len},
      {"batch_size", m.batch_size},
      {"steps", m.steps},
      {"learning_rate", m.learning_rate},
      {"checkpoint_steps", plan.schedule},
      {"vocab_size", m.vocab_size},
      {"dtype", o.store_f32 ? "F32" : "F16"},
      {"eval_sequences", o.eval_sequences},
      {"corpus", corpus_settings},
      {"optimizer",
       {{"name", "AdamW"},
        {"beta1", optimizer.beta1},
        {"beta2", optimizer.beta2},
        {"eps", optimizer.eps},
        {"weight_decay", optimizer.weight_decay},
        {"grad_clip", optimizer.grad_clip},
        {"warmup_steps", lr.warmup_steps()},
        {"final_lr_fraction", lr.final_fraction}}},
  };
  plan.fingerprint = Fingerprint(plan.settings);
  return plan;
}

// Whether `plan`'s model was already trained to the end with the same
// settings (train.json complete, same fingerprint, every scheduled step
// folder and the resume state present): then nothing is recomputed, not
// even the tokenizer.
bool AlreadyTrained(const Plan& plan, const TrainRunOptions& o) {
  if (o.overwrite) return false;
  std::error_code ec;
  if (!fs::exists(plan.paths.train_json, ec) ||
      !fs::exists(plan.paths.state_file, ec) ||
      !fs::exists(plan.paths.lambada, ec) ||
      !fs::exists(plan.paths.suite_file, ec)) {
    return false;
  }
  absl::StatusOr<Json> have = ReadJsonFile(plan.paths.train_json);
  if (!have.ok() || !have->value("complete", false) ||
      have->value("fingerprint", "") != plan.fingerprint ||
      have->value("settings", Json::object()) != plan.settings) {
    return false;
  }
  for (int64_t step : plan.schedule) {
    if (!fs::exists(absl::StrCat(plan.paths.model_dir, "/step", step,
                                 "/model.safetensors"),
                    ec)) {
      return false;
    }
  }
  return true;
}

// The rest of the plan: tokenizer, model configuration, token streams.
absl::Status CompletePlan(const TrainRunOptions& o, Plan& plan) {
  const TrainPreset& m = plan.model;
  BpeTrainerOptions bpe;
  bpe.vocab_size = m.vocab_size;
  // Each document once, whatever the variant: one tokenizer per suite.
  absl::StatusOr<std::string> tokenizer_json =
      TrainByteLevelBpe(plan.corpus.train, bpe);
  if (!tokenizer_json.ok()) return tokenizer_json.status();
  plan.tokenizer_json = *std::move(tokenizer_json);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromJson(plan.tokenizer_json, "trained tokenizer.json");
  if (!tokenizer.ok()) {
    return absl::InternalError(absl::StrCat(
        "the trained tokenizer does not load: ", tokenizer.status().message()));
  }
  if ((*tokenizer)->Encode(BpeTrainerOptions().special_tokens[0]) !=
      std::vector<int32_t>{kEndOfText}) {
    return absl::InternalError(
        "the trained tokenizer's <|endoftext|> is not id 0");
  }
  plan.tokenizer_vocab = (*tokenizer)->vocab_size();
  const int64_t padded =
      (plan.tokenizer_vocab / kVocabMultiple + 1) * kVocabMultiple;
  plan.config_json = ConfigJson(m, padded, o.store_f32);
  absl::StatusOr<GptNeoxConfig> config =
      GptNeoxConfig::FromJson(plan.config_json);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--hidden ", m.hidden_size, " / --heads ", m.num_heads,
        " make no valid GPT-NeoX model: ", config.status().message()));
  }
  plan.config = *config;

  plan.train_stream = TokenStream(
      **tokenizer, VariantDocuments(plan.corpus, o.variant, o.seed));
  if (static_cast<int64_t>(plan.train_stream.size()) < m.seq_len + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "corpus: ", o.corpus.dir, " gives ", plan.train_stream.size(),
        " training tokens, fewer than one sequence of --seq-len ", m.seq_len,
        " + 1"));
  }
  const std::vector<int32_t> heldout =
      TokenStream(**tokenizer, plan.corpus.heldout);
  const int64_t width = m.seq_len + 1;
  if (static_cast<int64_t>(heldout.size()) >= width) {
    plan.eval_samples = std::min<int64_t>(
        o.eval_sequences,
        (static_cast<int64_t>(heldout.size()) - 1) / m.seq_len);
    for (int64_t i = 0; i < plan.eval_samples; ++i) {
      plan.eval_tokens.insert(plan.eval_tokens.end(),
                              heldout.begin() + i * m.seq_len,
                              heldout.begin() + i * m.seq_len + width);
    }
  }
  plan.unigram_loss = UnigramLoss(plan.train_stream, plan.tokenizer_vocab,
                                  plan.eval_tokens, width);

  Checksum64 tok_sum;
  tok_sum.Update(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(plan.tokenizer_json.data()),
      plan.tokenizer_json.size()));
  plan.suite_record = {
      {"suite", o.suite},
      {"corpus", plan.settings["corpus"]},
      {"vocab_size", m.vocab_size},
      {"tokenizer_checksum", tok_sum.Hex()},
  };
  return absl::OkStatus();
}

// ---------------------------------------------------------------- runner ---

class Run {
 public:
  Run(const TrainRunOptions& options, Plan plan)
      : o_(options), plan_(std::move(plan)), p_(plan_.paths) {}
  ~Run() {
    if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  absl::StatusOr<TrainRunResult> Go();

 private:
  // Refuses folders holding other settings; decides between a fresh start,
  // a resume and nothing to do. Writes nothing.
  absl::Status Inspect();
  absl::Status Prepare();
  absl::Status Checkpoint(int64_t step, double train_loss);
  absl::Status WriteTrainJson(bool complete);
  absl::StatusOr<double> HeldoutLoss() const;
  void LogProgress(int64_t step, double loss, double lr);

  const TrainRunOptions& o_;
  Plan plan_;
  const Paths& p_;
  std::unique_ptr<GptNeoxTrainer> trainer_;
  std::unique_ptr<SafetensorsFile> resume_from_;
  std::vector<CheckpointRecord> history_;
  TrainRunResult result_;
  bool already_complete_ = false;
  std::chrono::steady_clock::time_point started_;
  int64_t first_update_ = 0;
  int lock_fd_ = -1;
};

absl::Status Run::Inspect() {
  std::error_code ec;
  // The suite: one tokenizer and corpus for all its models.
  if (fs::exists(p_.suite_file, ec)) {
    absl::StatusOr<Json> have = ReadJsonFile(p_.suite_file);
    if (!have.ok() || *have != plan_.suite_record) {
      const std::string diff = have.ok()
                                   ? SettingsDiff(plan_.suite_record, *have)
                                   : std::string(have.status().message());
      if (!o_.overwrite) {
        return absl::FailedPreconditionError(absl::StrCat(
            p_.out, " holds suite \"", o_.suite,
            "\" trained on another corpus or vocabulary (", diff,
            "); choose another --suite or --out, or pass --overwrite"));
      }
      spdlog::warn(
          "suite {} in {} had another corpus or vocabulary ({}); --overwrite: "
          "its other models keep their old tokenizer",
          o_.suite, p_.out, diff);
    }
  }
  const bool model_exists = fs::exists(p_.model_dir, ec);
  const bool state_exists = fs::exists(p_.state_file, ec);
  if (o_.overwrite) return absl::OkStatus();  // Prepare clears both
  if (model_exists) {
    if (!fs::exists(p_.train_json, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          p_.model_dir,
          " exists but has no train.json: not written by garden-train; "
          "choose another --out or pass --overwrite to replace it"));
    }
    absl::StatusOr<Json> have = ReadJsonFile(p_.train_json);
    if (!have.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          have.status().message(), "; pass --overwrite to retrain"));
    }
    const Json settings = have->value("settings", Json::object());
    if (have->value("fingerprint", "") != plan_.fingerprint ||
        settings != plan_.settings) {
      return absl::FailedPreconditionError(absl::StrCat(
          p_.model_dir, " holds ", plan_.model_name,
          " trained with other settings (",
          SettingsDiff(plan_.settings, settings),
          "); pass --overwrite to replace it, or choose another --out"));
    }
  }
  if (!state_exists) {
    if (model_exists) {
      spdlog::warn(
          "{}: no resume state in {}; training again from step 0 "
          "(the same settings rewrite the same checkpoints)",
          plan_.model_name, p_.state_dir);
    }
    return absl::OkStatus();
  }
  // A state to resume from: it must be whole and ours.
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("the resume state ", p_.state_file, " is corrupt (", why,
                     "); refusing to train on from it. Delete ", p_.state_dir,
                     " to retrain from step 0, or pass --overwrite"));
  };
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(p_.state_file);
  if (!file.ok()) return corrupt(file.status().message());
  const auto& meta = (*file)->metadata();
  auto fp = meta.find(kFingerprintKey);
  if (fp == meta.end()) return corrupt("no settings fingerprint");
  if (fp->second != plan_.fingerprint) {
    if (!model_exists) {
      return absl::FailedPreconditionError(absl::StrCat(
          p_.state_file, " belongs to a run with other settings (fingerprint ",
          fp->second, ", this run ", plan_.fingerprint,
          "); pass --overwrite to start afresh"));
    }
    return corrupt("its fingerprint differs from train.json's");
  }
  auto hist = meta.find(kHistoryKey);
  Json history =
      hist == meta.end() ? Json() : Json::parse(hist->second, nullptr, false);
  if (!history.is_array()) return corrupt("no checkpoint history");
  for (const Json& j : history) {
    std::optional<CheckpointRecord> r = CheckpointRecord::FromJson(j);
    if (!r) return corrupt("a malformed checkpoint history");
    history_.push_back(*r);
  }
  resume_from_ = *std::move(file);
  return absl::OkStatus();
}

absl::Status Run::Prepare() {
  absl::StatusOr<std::unique_ptr<GptNeoxTrainer>> trainer =
      GptNeoxTrainer::Create(plan_.config, OptimizerOptions(), o_.seed);
  if (!trainer.ok()) return trainer.status();
  trainer_ = *std::move(trainer);
  if (resume_from_ != nullptr) {
    if (absl::Status s = trainer_->RestoreState(*resume_from_); !s.ok()) {
      return absl::DataLossError(absl::StrCat(
          s.message(), ". Refusing to train on from it: delete ", p_.state_dir,
          " to retrain from step 0, or pass --overwrite"));
    }
    resume_from_.reset();
    const int64_t step = trainer_->step();
    if (step > plan_.model.steps ||
        (history_.empty() || history_.back().step != step)) {
      return absl::DataLossError(absl::StrCat(
          "the resume state ", p_.state_file, " is at step ", step,
          ", which does not match its history or --steps ", plan_.model.steps,
          "; delete ", p_.state_dir, " or pass --overwrite"));
    }
    already_complete_ = step == plan_.model.steps;
  }

  // From here on the disk changes. One process per model at a time: the
  // lock lives beside the state folder, which --overwrite deletes.
  if (auto s = MakeDirs(fs::path(p_.lock).parent_path().string()); !s.ok()) {
    return s;
  }
  lock_fd_ = open(p_.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ErrnoStatus(p_.lock, errno, "open");
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("another garden-train is training ", plan_.model_name,
                       " into ", p_.out, " (", p_.lock, " is locked)"));
    }
    return ErrnoStatus(p_.lock, errno, "flock");
  }
  if (o_.overwrite) {
    if (auto s = Discard(p_.model_dir, p_.trash); !s.ok()) return s;
    if (auto s = Discard(p_.state_dir, p_.trash); !s.ok()) return s;
  }
  if (auto s = MakeDirs(p_.state_dir); !s.ok()) return s;
  // Leftovers of a killed run of this model: staged step folders and
  // WriteFileAtomic's temporary files ("<name>.tmp.XXXXXX"). The suite's
  // shared files may be in the middle of a write by a run of another model,
  // so only old temporaries of those go.
  const auto stale = std::chrono::file_clock::now() - std::chrono::minutes(10);
  const std::vector<std::pair<std::string, std::string>> leftovers = {
      {p_.state_dir, "tmp."},
      {p_.state_dir, "state.safetensors.tmp."},
      {p_.model_dir, "train.json.tmp."},
      {p_.out, fs::path(p_.lambada).filename().string() + ".tmp."},
      {fs::path(p_.suite_file).parent_path().string(),
       fs::path(p_.suite_file).filename().string() + ".tmp."},
  };
  for (const auto& [dir, prefix] : leftovers) {
    const bool shared = dir != p_.state_dir && dir != p_.model_dir;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
      if (shared && fs::last_write_time(entry.path(), ec) > stale) continue;
      if (auto s = RemoveTree(entry.path().string()); !s.ok()) return s;
    }
  }
  if (auto s = WriteJsonFile(p_.suite_file, plan_.suite_record); !s.ok()) {
    return s;
  }
  if (!already_complete_) {
    if (auto s =
            WriteClozeJsonl(ClozeExamples(plan_.corpus.heldout), p_.lambada);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = MakeDirs(p_.model_dir); !s.ok()) return s;
  // train.json first: a folder with checkpoints always says whose they are.
  return WriteTrainJson(already_complete_);
}

absl::StatusOr<double> Run::HeldoutLoss() const {
  if (plan_.eval_samples == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t width = plan_.model.seq_len + 1;
  constexpr int64_t kChunk = 8;
  double sum = 0;
  for (int64_t first = 0; first < plan_.eval_samples; first += kChunk) {
    const int64_t n = std::min(kChunk, plan_.eval_samples - first);
    absl::StatusOr<double> loss =
        trainer_->Loss(absl::MakeConstSpan(plan_.eval_tokens)
                           .subspan(first * width, n * width),
                       n);
    if (!loss.ok()) return loss;
    sum += *loss * static_cast<double>(n);
  }
  return sum / static_cast<double>(plan_.eval_samples);
}

absl::Status Run::WriteTrainJson(bool complete) {
  Json checkpoints = Json::array();
  for (const CheckpointRecord& r : history_) checkpoints.push_back(r.ToJson());
  const Json doc = {
      {"model", plan_.model_name},
      {"suite", o_.suite},
      {"size", plan_.size},
      {"variant", plan_.settings["variant"]},
      {"fingerprint", plan_.fingerprint},
      {"settings", plan_.settings},
      {"threads", o_.threads},
      {"corpus_dir", o_.corpus.dir},
      {"tokenizer_vocab_size", plan_.tokenizer_vocab},
      {"vocab_size", plan_.config.vocab_size},
      {"num_parameters", trainer_->num_parameters()},
      {"train_tokens", plan_.train_stream.size()},
      {"heldout_eval_tokens", plan_.eval_samples * plan_.model.seq_len},
      {"unigram_heldout_loss", Number(plan_.unigram_loss)},
      {"complete", complete},
      {"checkpoints", checkpoints},
  };
  return WriteJsonFile(p_.train_json, doc);
}

absl::Status Run::Checkpoint(int64_t step, double train_loss) {
  absl::StatusOr<double> heldout = HeldoutLoss();
  if (!heldout.ok()) return heldout.status();
  CheckpointRecord record;
  record.step = step;
  record.train_loss = train_loss;
  record.heldout_loss = *heldout;
  record.learning_rate = step == 0 ? 0.0 : ScheduleOf(plan_.model).At(step);
  record.tokens_seen = step * plan_.model.batch_size * plan_.model.seq_len;
  while (!history_.empty() && history_.back().step >= step) history_.pop_back();
  history_.push_back(record);

  // 1. The step folder, assembled aside and renamed into place.
  const std::string name = absl::StrCat("step", step);
  const std::string staged = absl::StrCat(p_.state_dir, "/tmp.", name);
  if (auto s = RemoveTree(staged); !s.ok()) return s;
  if (auto s = MakeDirs(staged); !s.ok()) return s;
  absl::StatusOr<SafetensorsWriter> weights =
      trainer_->ExportWeights(o_.store_f32 ? DType::kF32 : DType::kF16);
  if (!weights.ok()) return weights.status();
  if (auto s = WriteFileAtomic(staged + "/config.json", plan_.config_json);
      !s.ok()) {
    return s;
  }
  if (auto s = weights->WriteAtomic(staged + "/model.safetensors"); !s.ok()) {
    return s;
  }
  if (auto s =
          WriteFileAtomic(staged + "/tokenizer.json", plan_.tokenizer_json);
      !s.ok()) {
    return s;
  }
  if (auto s = Publish(staged, absl::StrCat(p_.model_dir, "/", name));
      !s.ok()) {
    return s;
  }
  // 2. The state to resume from.
  absl::StatusOr<SafetensorsWriter> state = trainer_->SaveState();
  if (!state.ok()) return state.status();
  Json history = Json::array();
  for (const CheckpointRecord& r : history_) history.push_back(r.ToJson());
  state->SetMetadata(kFingerprintKey, plan_.fingerprint);
  state->SetMetadata(kHistoryKey, history.dump());
  if (auto s = state->WriteAtomic(p_.state_file); !s.ok()) return s;
  // 3. The record.
  if (auto s = WriteTrainJson(step == plan_.model.steps); !s.ok()) return s;
  result_.checkpoints_written.push_back(step);
  spdlog::info(
      "{} step {}: checkpoint written (train loss {:.4f}, held-out {:.4f})",
      plan_.model_name, step, train_loss, *heldout);
  return absl::OkStatus();
}

void Run::LogProgress(int64_t step, double loss, double lr) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
          .count();
  const int64_t done = step - first_update_ + 1;
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (plan_.model.steps - step) / rate : 0;
  const int width = 20;
  const int filled = static_cast<int>(width * step / plan_.model.steps);
  spdlog::info(
      "{} [{}{}] {}/{} loss {:.4f} lr {:.2e} {:.1f} steps/s eta {:.0f}s",
      plan_.model_name, std::string(filled, '#'),
      std::string(width - filled, '.'), step, plan_.model.steps, loss, lr, rate,
      eta);
}

absl::StatusOr<TrainRunResult> Run::Go() {
  if (auto s = Inspect(); !s.ok()) return s;
  if (auto s = Prepare(); !s.ok()) return s;
  const TrainPreset& m = plan_.model;
  result_.model_name = plan_.model_name;
  result_.model_dir = p_.model_dir;
  result_.num_parameters = trainer_->num_parameters();
  result_.train_tokens = static_cast<int64_t>(plan_.train_stream.size());
  result_.unigram_heldout_loss = plan_.unigram_loss;
  result_.start_step = trainer_->step();
  auto finish = [&](bool complete) {
    result_.final_step = trainer_->step();
    result_.complete = complete;
    if (!history_.empty()) {
      result_.last_train_loss = history_.back().train_loss;
      result_.last_heldout_loss = history_.back().heldout_loss;
    }
    return result_;
  };
  // A resumed state is always at a checkpoint; rewrite its folder if a
  // kill (between publishing it and saving the state) or a user lost it.
  const int64_t start = trainer_->step();
  std::error_code ec;
  if (start == 0 ||
      !fs::exists(absl::StrCat(p_.model_dir, "/step", start), ec)) {
    if (auto s =
            Checkpoint(start, history_.empty() || start == 0
                                  ? std::numeric_limits<double>::quiet_NaN()
                                  : history_.back().train_loss);
        !s.ok()) {
      return s;
    }
  }
  if (already_complete_) {
    spdlog::info("{}: already trained to step {} in {}", plan_.model_name,
                 m.steps, p_.model_dir);
    return finish(true);
  }
  const std::vector<int64_t>& schedule = plan_.schedule;
  auto scheduled = [&](int64_t step) {
    return std::binary_search(schedule.begin(), schedule.end(), step);
  };
  spdlog::info(
      "{}: {} parameters (d={}, L={}, heads={}), vocab {} (padded {}), {} "
      "training tokens, {} updates of {}x{} tokens, peak lr {}{}",
      plan_.model_name, trainer_->num_parameters(), m.hidden_size, m.num_layers,
      m.num_heads, plan_.tokenizer_vocab, plan_.config.vocab_size,
      plan_.train_stream.size(), m.steps, m.batch_size, m.seq_len,
      m.learning_rate,
      result_.start_step > 0
          ? absl::StrCat("; resuming from step ", result_.start_step)
          : std::string());

  absl::StatusOr<TokenBatcher> batcher = TokenBatcher::Create(
      plan_.train_stream, m.seq_len, m.batch_size, o_.seed);
  if (!batcher.ok()) return batcher.status();
  const LrSchedule lr = ScheduleOf(m);
  const int64_t lines = std::max(1, o_.log_lines);
  const int64_t log_every = (m.steps + lines - 1) / lines;
  started_ = std::chrono::steady_clock::now();
  first_update_ = start + 1;
  double interval_sum = 0;
  int64_t interval_n = 0;
  for (int64_t step = start + 1; step <= m.steps; ++step) {
    const std::vector<int32_t> tokens = batcher->Batch(step);
    absl::StatusOr<double> loss =
        trainer_->Step(tokens, m.batch_size, lr.At(step));
    if (!loss.ok()) return loss.status();
    interval_sum += *loss;
    ++interval_n;
    if (step % log_every == 0 || step == m.steps) {
      LogProgress(step, *loss, lr.At(step));
    }
    if (scheduled(step)) {
      if (auto s = Checkpoint(step, interval_sum / interval_n); !s.ok()) {
        return s;
      }
      interval_sum = 0;
      interval_n = 0;
    }
    if (o_.stop_after > 0 && step == o_.stop_after && step < m.steps) {
      spdlog::warn("{}: stopping after update {} as asked (--stop-after)",
                   plan_.model_name, step);
      return finish(false);
    }
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
          .count();
  spdlog::info(
      "{}: trained to step {} in {:.1f}s; held-out loss {:.4f} "
      "(unigram {:.4f})",
      plan_.model_name, m.steps, took, history_.back().heldout_loss,
      plan_.unigram_loss);
  return finish(true);
}

}  // namespace

absl::StatusOr<TrainPreset> FindTrainPreset(std::string_view name) {
  for (const TrainPreset& p : Presets()) {
    if (p.name == name) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preset \"", ToAbsl(name),
                   "\"; known: ", absl::StrJoin(TrainPresetNames(), ", ")));
}

std::vector<std::string> TrainPresetNames() {
  std::vector<std::string> names;
  for (const TrainPreset& p : Presets()) names.push_back(p.name);
  return names;
}

absl::StatusOr<TrainRunResult> RunTraining(const TrainRunOptions& options) {
  absl::StatusOr<Plan> plan = MakePlan(options);
  if (!plan.ok()) return plan.status();
  if (AlreadyTrained(*plan, options)) {
    spdlog::info("{}: already trained to step {} in {}", plan->model_name,
                 plan->model.steps, plan->paths.model_dir);
    TrainRunResult result;
    result.model_name = plan->model_name;
    result.model_dir = plan->paths.model_dir;
    result.start_step = result.final_step = plan->model.steps;
    result.complete = true;
    return result;
  }
  if (auto s = CompletePlan(options, *plan); !s.ok()) return s;
  Run run(options, *std::move(plan));
  return run.Go();
}

}  // namespace garden
