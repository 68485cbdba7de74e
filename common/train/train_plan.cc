#include "common/train/train_plan.h"

#include <unistd.h>

#include <cmath>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/base/status.h"
#include "common/naming/names.h"
#include "common/text/bpe_trainer.h"
#include "common/text/tokenizer.h"

namespace garden::train_internal {
namespace {

constexpr int kSettingsFormat = 1;

size_t NumSpecialTokens() { return BpeTrainerOptions().special_tokens.size(); }

const char* VariantName(CorpusVariant v) {
  return v == CorpusVariant::kDeduped ? "deduped" : "standard";
}

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

// config_json as a GptNeoxConfig; INVALID_ARGUMENT naming the flags that
// shape it if the loader would refuse it.
absl::StatusOr<GptNeoxConfig> ParseConfig(const TrainPreset& m,
                                          const std::string& config_json) {
  absl::StatusOr<GptNeoxConfig> config = GptNeoxConfig::FromJson(config_json);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--hidden ", m.hidden_size, " / --heads ", m.num_heads,
        " make no valid GPT-NeoX model: ", config.status().message()));
  }
  return config;
}

// The model's shape, schedule and vocabulary.
absl::Status ValidateModel(const TrainRunOptions& o) {
  const TrainPreset& m = o.model;
  for (const auto& [flag, v] :
       {std::pair{"--hidden", m.hidden_size},
        std::pair{"--layers", m.num_layers}, std::pair{"--heads", m.num_heads},
        std::pair{"--seq-len", m.seq_len}, std::pair{"--batch", m.batch_size},
        std::pair{"--steps", m.steps},
        std::pair{"--checkpoint-every", m.checkpoint_every}}) {
    if (v < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " must be at least 1, got ", v));
    }
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
  // Written as !(in range) so that NaN is refused too.
  if (!(m.weight_decay >= 0 && m.weight_decay < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--weight-decay ", m.weight_decay, " must be in [0, 1)"));
  }
  if (!(m.warmup_fraction >= 0 && m.warmup_fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--warmup ", m.warmup_fraction, " must be in [0, 1)"));
  }
  if (!(m.final_lr_fraction >= 0 && m.final_lr_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--final-lr ", m.final_lr_fraction, " must be in [0, 1]"));
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
  return ParseConfig(m, ConfigJson(m, kVocabMultiple, o.store_f32)).status();
}

// The rest of the options, and the model's name.
absl::Status ValidateRun(const TrainRunOptions& o, const std::string& size) {
  if (o.stop_after < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stop-after must be >= 0, got ", o.stop_after));
  }
  if (o.eval_sequences < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--eval-sequences must be >= 0, got ", o.eval_sequences));
  }
  if (o.out_dir.empty()) return absl::InvalidArgumentError("--out is required");
  const ModelKey key{o.suite, size, VariantName(o.variant), ""};
  const std::optional<ModelKey> parsed = ModelKey::FromRepoName(key.Name());
  if (!parsed || *parsed != key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--suite \"", o.suite, "\" and --size \"", size,
        "\" do not make a model name the store can read: the suite must be "
        "[a-z0-9]+, the size [a-z0-9.]+"));
  }
  return absl::OkStatus();
}

Paths PathsOf(const TrainRunOptions& o, const std::string& model_name) {
  Paths p;
  p.out = o.out_dir;
  p.model_dir = absl::StrCat(o.out_dir, "/", model_name);
  p.state_dir = absl::StrCat(o.out_dir, "/", kStateDir, "/", model_name);
  p.state_file = p.state_dir + "/state.safetensors";
  p.lock = absl::StrCat(o.out_dir, "/", kStateDir, "/", model_name, ".lock");
  p.train_json = p.model_dir + "/train.json";
  p.suite_file =
      absl::StrCat(o.out_dir, "/", kStateDir, "/", o.suite, ".suite.json");
  p.lambada = absl::StrCat(o.out_dir, "/", o.suite, "-lambada.jsonl");
  p.trash = absl::StrCat(o.out_dir, "/", kStateDir, "/trash.", model_name, ".",
                         getpid());
  return p;
}

absl::StatusOr<Corpus> ReadCorpus(const CorpusOptions& options) {
  absl::StatusOr<Corpus> corpus = LoadFortunes(options);
  if (!corpus.ok()) return Annotate(corpus.status(), "corpus");
  if (corpus->train.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "corpus: ", options.dir, " has no training documents (all ",
        corpus->heldout.size(), " are held out)"));
  }
  return corpus;
}

std::string ChecksumOf(std::string_view bytes) {
  Checksum64 sum;
  sum.Update(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()),
                                 bytes.size()));
  return sum.Hex();
}

std::string DocumentsChecksum(const std::vector<std::string>& docs) {
  Checksum64 sum;
  for (const std::string& d : docs) {
    sum.Update(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(d.data()),
                                   d.size()));
  }
  return sum.Hex();
}

// TrainPreset::tokenizer_corpus's documents; errors prefixed
// "--tokenizer-corpus <dir>: ".
absl::StatusOr<std::vector<std::string>> ReadTokenizerCorpus(
    const std::string& dir) {
  if (dir.empty()) return std::vector<std::string>{};
  absl::StatusOr<Corpus> extra =
      LoadFortunes({.dir = dir, .heldout_fraction = 0});
  if (!extra.ok()) {
    return Annotate(extra.status(), absl::StrCat("--tokenizer-corpus ", dir));
  }
  return std::move(extra->train);
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

// What makes the bytes: compared before resuming or adding to a folder.
Json SettingsOf(const TrainRunOptions& o, const Plan& plan) {
  const TrainPreset& m = plan.model;
  const OptimizerOptions optimizer = OptimizerOf(m);
  const LrSchedule lr = ScheduleOf(m);
  const Json corpus_settings = {
      {"documents_checksum", CorpusChecksum(plan.corpus)},
      {"train_documents", plan.corpus.train.size()},
      {"heldout_documents", plan.corpus.heldout.size()},
      {"heldout_fraction", o.corpus.heldout_fraction},
  };
  // Only with one, so that suites trained without keep their fingerprint.
  Json tokenizer_corpus;
  if (!m.tokenizer_corpus.empty()) {
    tokenizer_corpus = {
        {"dir", m.tokenizer_corpus},
        {"documents", plan.tokenizer_extra.size()},
        {"documents_checksum", DocumentsChecksum(plan.tokenizer_extra)},
    };
  }
  Json settings = {
      {"format", kSettingsFormat},
      {"suite", o.suite},
      {"size", plan.size},
      {"variant", VariantName(o.variant)},
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
  if (!tokenizer_corpus.is_null()) {
    settings["tokenizer_corpus"] = std::move(tokenizer_corpus);
  }
  if (m.join_lines) settings["join_lines"] = true;
  return settings;
}

// `doc` with each run of ASCII whitespace made one space, the ends trimmed.
std::string JoinLines(std::string_view doc) {
  std::string out;
  out.reserve(doc.size());
  bool space = false;
  for (char c : doc) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
        c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// `docs` as the model sees them (TrainPreset::join_lines).
std::vector<std::string> AsTrained(const TrainPreset& m,
                                   std::vector<std::string> docs) {
  if (m.join_lines) {
    for (std::string& d : docs) d = JoinLines(d);
  }
  return docs;
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

// The suite's tokenizer, trained on each training document once whatever
// the variant, into plan.tokenizer_json, and loaded.
absl::StatusOr<std::unique_ptr<Tokenizer>> TrainTokenizer(Plan& plan) {
  BpeTrainerOptions bpe;
  bpe.vocab_size = plan.model.vocab_size;
  std::vector<std::string> documents = AsTrained(plan.model, plan.corpus.train);
  documents.insert(documents.end(), plan.tokenizer_extra.begin(),
                   plan.tokenizer_extra.end());
  ASSIGN_OR_RETURN(plan.tokenizer_json, TrainByteLevelBpe(documents, bpe));
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
  return tokenizer;
}

}  // namespace

LrSchedule ScheduleOf(const TrainPreset& m) {
  LrSchedule lr;
  lr.peak = m.learning_rate;
  lr.total_steps = m.steps;
  lr.warmup_fraction = m.warmup_fraction;
  lr.final_fraction = m.final_lr_fraction;
  return lr;
}

OptimizerOptions OptimizerOf(const TrainPreset& m) {
  OptimizerOptions optimizer;
  optimizer.weight_decay = m.weight_decay;
  return optimizer;
}

absl::StatusOr<Plan> MakePlan(const TrainRunOptions& o) {
  Plan plan;
  plan.model = o.model;
  plan.size = o.size.empty() ? o.model.name : o.size;
  RETURN_IF_ERROR(ValidateModel(o));
  RETURN_IF_ERROR(ValidateRun(o, plan.size));
  const TrainPreset& m = plan.model;
  plan.model_name = ModelKey{o.suite, plan.size, VariantName(o.variant), ""}.Name();
  auto schedule =
      CheckpointSchedule(m.steps, m.checkpoint_every, o.extra_checkpoints);
  if (!schedule.ok()) {
    // CheckpointSchedule speaks of "checkpoint step"; say which flag.
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint-steps: ", schedule.status().message()));
  }
  plan.schedule = *std::move(schedule);
  plan.paths = PathsOf(o, plan.model_name);
  ASSIGN_OR_RETURN(plan.corpus, ReadCorpus(o.corpus));
  ASSIGN_OR_RETURN(plan.tokenizer_extra,
                   ReadTokenizerCorpus(m.tokenizer_corpus));
  plan.settings = SettingsOf(o, plan);
  plan.fingerprint = ChecksumOf(plan.settings.dump());
  return plan;
}

absl::Status CompletePlan(const TrainRunOptions& o, Plan& plan) {
  const TrainPreset& m = plan.model;
  ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer,
                   TrainTokenizer(plan));
  plan.tokenizer_vocab = tokenizer->vocab_size();
  const int64_t padded =
      (plan.tokenizer_vocab / kVocabMultiple + 1) * kVocabMultiple;
  plan.config_json = ConfigJson(m, padded, o.store_f32);
  ASSIGN_OR_RETURN(plan.config, ParseConfig(m, plan.config_json));

  plan.train_stream = TokenStream(
      *tokenizer,
      AsTrained(m, VariantDocuments(plan.corpus, o.variant, o.seed)));
  if (static_cast<int64_t>(plan.train_stream.size()) < m.seq_len + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "corpus: ", o.corpus.dir, " gives ", plan.train_stream.size(),
        " training tokens, fewer than one sequence of --seq-len ", m.seq_len,
        " + 1"));
  }
  plan.heldout = HeldoutSamples(
      TokenStream(*tokenizer, AsTrained(m, plan.corpus.heldout)),
                                m.seq_len, o.eval_sequences);
  plan.unigram_loss = UnigramLoss(plan.train_stream, plan.tokenizer_vocab,
                                  plan.heldout.tokens, m.seq_len + 1);
  plan.suite_record = {
      {"suite", o.suite},
      {"corpus", plan.settings["corpus"]},
      {"vocab_size", m.vocab_size},
      {"tokenizer_checksum", ChecksumOf(plan.tokenizer_json)},
  };
  return absl::OkStatus();
}

}  // namespace garden::train_internal
