// garden-train: trains one model of a Pythia-like checkpoint suite on the
// fortunes corpus, with Pythia's recipe scaled down (common/train/trainer.h), and
// writes its checkpoints in the layout gardend serves (common/train/train_run.h).
//
//   garden-train --preset micro|tiny|small --variant standard|deduped
//                --seed S --out DIR [--corpus DIR] [--suite NAME]
//                [--size NAME] [--vocab-size V] [--threads N] [--f32]
//                [--overwrite] [--hidden D --layers L --heads H
//                 --seq-len T --batch B --lr LR --steps N
//                 --checkpoint-every K --checkpoint-steps 3,5
//                 --weight-decay W --warmup F --final-lr F
//                 --tokenizer-corpus DIR|none --join-lines yes|no]
//                [--stop-after N] [--eval-sequences N] [--log-level L]
//
// A second run with the same flags resumes a killed one from its last
// checkpoint, or does nothing if it finished. Exit status: 0 done (or
// stopped by --stop-after), 1 error (printed as "garden-train: CODE:
// message"), 2 usage error.
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/absl_compat.h"
#include "common/base/process.h"
#include "common/base/status.h"
#include "common/model/gpt_neox.h"
#include "common/naming/names.h"
#include "common/train/train_run.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

// Every update allocates and frees the same few large tensors (the logits
// and their gradient are batch * seq * vocab floats). By default glibc
// returns such blocks to the kernel on free (mmap, heap trimming) and
// faults them back in on the next allocation: measured, half the run time
// went to the kernel. Keep them in the heap instead.
void KeepLargeBlocks() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc allows
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

absl::StatusOr<std::vector<int64_t>> ParseSteps(const std::string& text) {
  std::vector<int64_t> steps;
  for (absl::string_view piece :
       absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int64_t step;
    if (!absl::SimpleAtoi(piece, &step)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--checkpoint-steps: \"", piece, "\" is not a step"));
    }
    steps.push_back(step);
  }
  return steps;
}

// Bad flag values exit 2, like usage errors; everything else 1.
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "garden-train: %s: %s\n",
               std::string(absl::StatusCodeToString(status.code())).c_str(),
               std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// The command line, defaulting to the "tiny" preset.
struct Flags {
  std::string preset_name = "tiny", variant = "standard", out,
              suite = "fortune", size, corpus_dir = garden::CorpusOptions().dir,
              checkpoint_steps, log_level = "info";
  uint64_t seed = 1234;
  int threads = 0;
  bool f32 = false, overwrite = false;
  int64_t stop_after = 0, eval_sequences = 16;
  // Overrides of the preset; unset means the preset's value.
  int64_t hidden = 0, layers = 0, heads = 0, seq_len = 0, batch = 0, steps = 0,
          every = 0;
  double lr = 0, weight_decay = 0, warmup = 0, final_lr = 0;
  std::string tokenizer_corpus, join_lines;
  int vocab = 0;
  double heldout_fraction = garden::CorpusOptions().heldout_fraction;
};

void AddFlags(CLI::App& app, Flags& f) {
  // A repeated flag takes its last value, as with gardend's Abseil flags.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--preset", f.preset_name,
                 "micro (tests), tiny or small (the default suite)")
      ->capture_default_str();
  app.add_option("--variant", f.variant,
                 "standard (documents repeated) or deduped (each once), or "
                 "both as standard,deduped; aliases NDD, DD")
      ->capture_default_str();
  app.add_option("--seed", f.seed, "initialisation and data order")
      ->capture_default_str();
  app.add_option("--out", f.out, "checkpoint root to write into")->required();
  app.add_option("--corpus", f.corpus_dir, "folder of fortune files")
      ->capture_default_str();
  app.add_option("--heldout-fraction", f.heldout_fraction,
                 "share of documents held out for evaluation")
      ->capture_default_str();
  app.add_option("--suite", f.suite, "suite name, [a-z0-9]+")
      ->capture_default_str();
  app.add_option("--size", f.size,
                 "size name, [a-z0-9.]+ (default: the preset)");
  app.add_option("--vocab-size", f.vocab,
                 "BPE vocabulary incl. 2 special tokens (default: the "
                 "preset's, 4096; micro 512)");
  app.add_option("--threads", f.threads,
                 "libtorch threads (0: one per core); results are "
                 "byte-identical for the same count")
      ->capture_default_str();
  app.add_flag("--f32", f.f32, "store F32 weights instead of F16");
  app.add_flag("--overwrite", f.overwrite,
               "replace a model trained with other settings; start afresh");
  app.add_option("--hidden", f.hidden, "hidden size d");
  app.add_option("--layers", f.layers, "layers L");
  app.add_option("--heads", f.heads, "attention heads");
  app.add_option("--seq-len", f.seq_len, "tokens per sequence");
  app.add_option("--batch", f.batch, "sequences per update");
  app.add_option("--lr", f.lr, "peak learning rate");
  app.add_option("--weight-decay", f.weight_decay,
                 "AdamW decoupled weight decay on matrices and embeddings, "
                 "in [0, 1) (Pythia: 0.01)");
  app.add_option("--warmup", f.warmup,
                 "share of the updates spent warming the learning rate up, "
                 "in [0, 1) (Pythia: 0.01)");
  app.add_option("--final-lr", f.final_lr,
                 "learning rate at the last update, as a share of the peak, "
                 "in [0, 1] (cosine decay; Pythia: 0.1)");
  app.add_option("--tokenizer-corpus", f.tokenizer_corpus,
                 "folder of text files the tokenizer also learns from, each "
                 "file (or %-separated entry) a document, or none; the model "
                 "never trains on them");
  app.add_option("--join-lines", f.join_lines,
                 "yes: whitespace runs in the documents become one space "
                 "before tokenizing, as in the cloze examples; no: kept");
  app.add_option("--steps", f.steps, "updates");
  app.add_option("--checkpoint-every", f.every,
                 "checkpoint interval K after the powers of two");
  app.add_option("--checkpoint-steps", f.checkpoint_steps,
                 "extra checkpoint steps, comma-separated, within [0, steps]");
  app.add_option("--stop-after", f.stop_after,
                 "stop after this many updates, as if killed (testing resume)");
  app.add_option("--eval-sequences", f.eval_sequences,
                 "held-out sequences scored at each checkpoint")
      ->capture_default_str();
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
}

// The presets' values, for --help.
std::string PresetsFooter() {
  std::string footer = "Presets (flags override them):";
  for (const std::string& name : garden::TrainPresetNames()) {
    const garden::TrainPreset p = *garden::FindTrainPreset(name);
    footer +=
        absl::StrCat("\n  ", name, ": --hidden ", p.hidden_size, " --layers ",
                     p.num_layers, " --heads ", p.num_heads, " --seq-len ",
                     p.seq_len, " --batch ", p.batch_size, " --steps ", p.steps,
                     " --checkpoint-every ", p.checkpoint_every, " --lr ",
                     p.learning_rate, " --vocab-size ", p.vocab_size,
                     " --weight-decay ", p.weight_decay, " --warmup ",
                     p.warmup_fraction, " --final-lr ", p.final_lr_fraction,
                     " --tokenizer-corpus ",
                     p.tokenizer_corpus.empty() ? "none" : p.tokenizer_corpus,
                     " --join-lines ", p.join_lines ? "yes" : "no");
  }
  return footer;
}

// Logs to stderr at `log_level`; false, having said why, for an unknown one.
bool SetUpLogging(const std::string& log_level) {
  const spdlog::level::level_enum level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr,
                 "garden-train: --log-level \"%s\" is not one of "
                 "trace, debug, info, warn, error, off\n",
                 log_level.c_str());
    return false;
  }
  auto logger = spdlog::stderr_color_mt("garden-train");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  spdlog::set_pattern("%H:%M:%S %^%l%$ %v");
  return true;
}

// What to train: the options, once per variant.
struct Job {
  garden::TrainRunOptions options;
  std::vector<garden::CorpusVariant> variants;
};

// The flags as a job; the status's message is the usage error to print.
absl::StatusOr<Job> MakeJob(const CLI::App& app, const Flags& f) {
  Job job;
  garden::TrainRunOptions& options = job.options;
  ASSIGN_OR_RETURN(options.model, garden::FindTrainPreset(f.preset_name));
  // "standard,deduped" trains both, one after the other, in one process
  // (libtorch's start-up costs more than confirming a trained model).
  for (absl::string_view one : absl::StrSplit(f.variant, ',')) {
    ASSIGN_OR_RETURN(const std::string canonical,
                     garden::CanonicalVariant(std::string(one)));
    job.variants.push_back(canonical == "deduped"
                               ? garden::CorpusVariant::kDeduped
                               : garden::CorpusVariant::kStandard);
  }
  ASSIGN_OR_RETURN(options.extra_checkpoints, ParseSteps(f.checkpoint_steps));
  options.out_dir = f.out;
  options.corpus.dir = f.corpus_dir;
  options.corpus.heldout_fraction = f.heldout_fraction;
  options.suite = f.suite;
  options.size = f.size;
  options.seed = f.seed;
  // An explicit flag wins over the preset (0 or less is passed on, to be
  // refused with the flag's name).
  auto override_with = [&](const char* flag, auto value, auto* field) {
    if (app.count(flag) > 0) *field = value;
  };
  override_with("--hidden", f.hidden, &options.model.hidden_size);
  override_with("--layers", f.layers, &options.model.num_layers);
  override_with("--heads", f.heads, &options.model.num_heads);
  override_with("--seq-len", f.seq_len, &options.model.seq_len);
  override_with("--batch", f.batch, &options.model.batch_size);
  override_with("--steps", f.steps, &options.model.steps);
  override_with("--checkpoint-every", f.every, &options.model.checkpoint_every);
  override_with("--lr", f.lr, &options.model.learning_rate);
  override_with("--vocab-size", f.vocab, &options.model.vocab_size);
  override_with("--weight-decay", f.weight_decay, &options.model.weight_decay);
  override_with("--warmup", f.warmup, &options.model.warmup_fraction);
  override_with("--final-lr", f.final_lr, &options.model.final_lr_fraction);
  if (app.count("--join-lines") > 0) {
    if (f.join_lines != "yes" && f.join_lines != "no") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--join-lines \"", f.join_lines, "\" is not yes or no"));
    }
    options.model.join_lines = f.join_lines == "yes";
  }
  if (app.count("--tokenizer-corpus") > 0) {
    if (f.tokenizer_corpus.empty()) {
      return absl::InvalidArgumentError(
          "--tokenizer-corpus: give a folder, or none");
    }
    options.model.tokenizer_corpus =
        f.tokenizer_corpus == "none" ? "" : f.tokenizer_corpus;
  }
  options.store_f32 = f.f32;
  options.overwrite = f.overwrite;
  options.stop_after = f.stop_after;
  options.eval_sequences = f.eval_sequences;
  if (f.threads < 0)
    return absl::InvalidArgumentError("--threads must be >= 0");
  options.threads =
      f.threads > 0
          ? f.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return job;
}

}  // namespace

int main(int argc, char** argv) {
  garden::EnsurePassiveOpenMP(argv);
  KeepLargeBlocks();
  CLI::App app{
      "Trains a GPT-NeoX model of a Pythia-like suite on the fortunes corpus "
      "and writes its checkpoints for gardend."};
  Flags flags;
  AddFlags(app, flags);
  app.footer(PresetsFooter());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!SetUpLogging(flags.log_level)) return 2;
  absl::StatusOr<Job> job = MakeJob(app, flags);
  if (!job.ok()) {
    std::fprintf(stderr, "garden-train: %s\n",
                 std::string(job.status().message()).c_str());
    return 2;
  }
  garden::SetComputeThreads(job->options.threads);

  for (garden::CorpusVariant v : job->variants) {
    job->options.variant = v;
    absl::StatusOr<garden::TrainRunResult> result =
        garden::RunTraining(job->options);
    if (!result.ok()) return Fail(result.status());
    if (!result->complete) {
      spdlog::info("{}: stopped at step {}; run again to resume",
                   result->model_name, result->final_step);
    }
  }
  return 0;
}
