// garden-train's job: from the fortunes corpus to a Pythia-like checkpoint
// suite on disk, resumable after a kill.
//
// One run trains one model, (suite, size, variant), and writes, under OUT:
//
//   <suite>-<size>[-deduped]/            the model, in the store's plain layout
//     step<N>/config.json                GPT-NeoX config as Pythia's
//     step<N>/model.safetensors          F16 (F32 with store_f32), Pythia names
//     step<N>/tokenizer.json             the suite's byte-level BPE
//     train.json                         settings, fingerprint, per-checkpoint
//                                        losses, unigram baseline
//   <suite>-lambada.jsonl                cloze examples of the held-out docs
//   .garden-train/<model>/state.safetensors   resume state: F32 master weights,
//                                        AdamW moments, step, history
//   .garden-train/<model>.lock           held (flock) while a run trains it
//   .garden-train/<suite>.suite.json     what every model of the suite shares
//
// Checkpoints follow CheckpointSchedule (common/train/trainer.h). Every file is
// written atomically, and a step folder is assembled in .garden-train/ and
// renamed into place, so it appears whole or not at all. The order at each
// checkpoint is step folder, state, train.json: a run killed anywhere
// restarts from its last state and rewrites the same bytes (a step folder
// that already exists is swapped for the new one atomically). Leftover
// temporaries of a killed run are removed when the next run starts.
//
// The batch order, like everything else, is a function of the seed and the
// update number, so the state needs no data position beyond the step.
// Byte-identical output needs the same corpus, settings, seed and libtorch
// thread count (the thread count splits some reductions differently).
//
// The tokenizer is trained per suite on the deduplicated training documents
// (each once), plus the preset's tokenizer corpus if it has one (as Pythia's
// was trained on the whole Pile, of which each checkpoint saw only a part),
// so that both variants, and every size, share it and their losses are
// comparable; it is deterministic, so each run retrains it rather
// than caching it (about a second). The embedding has one row per token id,
// padded up to the next multiple of 128 strictly above the tokenizer's size
// (Pythia pads 50277 ids to 50304), so that rows no token maps to exist.
// config.json states Pythia's max_position_embeddings, 2048, whatever the
// training length, so that gardend accepts longer texts; rotary embeddings
// have no learnt positions, but past seq_len the models are untrained.
#ifndef GARDEN_COMMON_TRAIN_TRAIN_RUN_H_
#define GARDEN_COMMON_TRAIN_TRAIN_RUN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/train/corpus.h"

namespace garden {

// A model size and training schedule.
struct TrainPreset {
  std::string name;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t seq_len = 0;
  int64_t batch_size = 0;
  int64_t steps = 0;
  int64_t checkpoint_every = 0;
  double learning_rate = 0;
  int vocab_size = 4096;
  // AdamW's decoupled weight decay (matrices and embeddings), in [0, 1).
  double weight_decay = 0.01;
  // The learning-rate schedule (LrSchedule): warm-up share of the updates,
  // in [0, 1), and the final rate as a share of the peak, in [0, 1].
  double warmup_fraction = 0.01;
  double final_lr_fraction = 0.1;
  // A folder of plain-text files the tokenizer is trained on besides the
  // training documents (empty: none), read as LoadFortunes reads a fortune
  // folder, every entry a document and none held out. As Pythia's tokenizer
  // was trained on the whole Pile, tokens the model's text never or rarely
  // holds get rows of their own in the embeddings.
  std::string tokenizer_corpus;
  // Runs of whitespace in the training and held-out documents become one
  // space before tokenizing (for the model and its tokenizer alike), as in
  // the cloze examples (ClozeExamples) and in the prose of LAMBADA: the
  // fortunes' line breaks every 60 or 70 characters are then not what the
  // model learns to predict. The split and the cloze file do not change.
  bool join_lines = false;
};

// "micro" (tests: seconds), "tiny" and "small" (the default suite).
// INVALID_ARGUMENT naming the known presets otherwise.
absl::StatusOr<TrainPreset> FindTrainPreset(std::string_view name);
std::vector<std::string> TrainPresetNames();

struct TrainRunOptions {
  std::string out_dir;
  CorpusOptions corpus;
  std::string suite = "fortune";
  std::string size;  // empty: the preset's name
  CorpusVariant variant = CorpusVariant::kStandard;
  uint64_t seed = 1234;
  TrainPreset model;  // shape, schedule and vocabulary
  // Checkpoints wanted besides the schedule's, each in [0, steps].
  std::vector<int64_t> extra_checkpoints;
  // Store F32 weights instead of F16.
  bool store_f32 = false;
  // Replace whatever the model's folder holds (other settings, other
  // files) and train from scratch.
  bool overwrite = false;
  // libtorch intra-op threads, set by the caller; recorded in train.json.
  int threads = 1;
  // Testing: return after this many updates, as if killed (0: never).
  int64_t stop_after = 0;
  // Held-out sequences scored at each checkpoint (0: none).
  int64_t eval_sequences = 16;
  // Progress log lines per run (plus one per checkpoint).
  int log_lines = 20;
};

struct TrainRunResult {
  std::string model_name;  // "fortune-micro-deduped"
  std::string model_dir;
  int64_t start_step = 0;  // where this run began (0, or the resumed step)
  int64_t final_step = 0;  // the last update done
  bool complete = false;   // trained to the end (now or before)
  std::vector<int64_t> checkpoints_written;
  double last_train_loss = 0;    // mean over the last checkpoint interval
  double last_heldout_loss = 0;  // NaN without held-out data
  double unigram_heldout_loss = 0;
  int64_t num_parameters = 0;
  int64_t train_tokens = 0;  // tokens in the variant's stream
};

// Trains (or resumes, or confirms complete) one model. Errors, with nothing
// written: INVALID_ARGUMENT for bad options (naming the value and its
// limit), NOT_FOUND / FAILED_PRECONDITION for a missing or empty corpus,
// FAILED_PRECONDITION for an output folder holding the model or suite
// trained with other settings (unless overwrite), DATA_LOSS for a corrupt
// resume state.
absl::StatusOr<TrainRunResult> RunTraining(const TrainRunOptions& options);

}  // namespace garden

#endif  // GARDEN_COMMON_TRAIN_TRAIN_RUN_H_
