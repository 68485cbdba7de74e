// Training GPT-NeoX models with Pythia's recipe, scaled down.
//
// The arithmetic of the recipe (learning-rate schedule, checkpoint schedule,
// batch order) lives in small value types here; GptNeoxTrainer holds the
// parameters and the AdamW state and runs each update through the very
// forward pass that serves checkpoints (GptNeoxForward, common/model/gpt_neox.h),
// with autograd tracking the parameters. common/train/train_run.h puts the pieces
// together into the garden-train tool's job: corpus to checkpoints on disk.
//
// The recipe, as GPT-NeoX trained Pythia:
//   - initialisation: "small_init", N(0, sqrt(2 / (5 d))), for embed_in,
//     embed_out, query_key_value and dense_h_to_4h; "wang_init",
//     N(0, 2 / (L sqrt(d))), for the two projections into the residual
//     stream (attention.dense, mlp.dense_4h_to_h); biases 0; LayerNorm
//     gains 1 and shifts 0. d = hidden size, L = layers.
//   - AdamW, beta1 0.9, beta2 0.95, eps 1e-8, decoupled weight decay 0.01
//     applied, as GPT-NeoX groups parameters, to the weight matrices and both
//     embeddings but not to biases or LayerNorm parameters; gradients clipped
//     to a global L2 norm of 1.0 first.
//   - learning rate: linear warm-up over the first 1% of the updates, then
//     cosine decay to 10% of the peak at the last update.
//   - data: documents tokenized and each followed by <|endoftext|> (id 0),
//     concatenated into one stream, cut into samples of seq_len + 1 tokens
//     (inputs and next-token targets), consumed in a shuffled order; loss is
//     the mean next-token cross-entropy.
// Everything is deterministic: the same inputs, seed and libtorch thread
// count give the same bits.
#ifndef GARDEN_COMMON_TRAIN_TRAINER_H_
#define GARDEN_COMMON_TRAIN_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/formats/dtype.h"
#include "common/formats/safetensors.h"
#include "common/formats/safetensors_writer.h"
#include "common/model/gpt_neox.h"

namespace garden {

// Learning rate per update: linear warm-up to `peak`, then a half cosine
// down to final_fraction * peak, as GPT-NeoX's AnnealingLR with
// min_lr = 0.1 * lr (Pythia's setting).
struct LrSchedule {
  double peak = 1e-3;
  int64_t total_steps = 1;
  double warmup_fraction = 0.01;
  double final_fraction = 0.1;

  // ceil(warmup_fraction * total_steps), at least 1.
  int64_t warmup_steps() const;
  // The rate of update `step`, 1 .. total_steps (update `step` produces
  // checkpoint `step`): peak * step / W for step <= W, then
  // min + (peak - min) (1 + cos(pi (step - W) / (total - W))) / 2, which is
  // min at the last update. Steps outside the range are clamped.
  double At(int64_t step) const;
};

// The checkpoints Pythia keeps, scaled to `total_steps` updates: step 0 (the
// initialisation), the powers of two 1, 2, 4, ..., 512 below total_steps,
// every multiple of `every`, `extra` steps asked for, and total_steps itself.
// Ascending, without repeats. INVALID_ARGUMENT, naming the value and the
// limit, for total_steps < 1, every < 1, or an extra step outside
// [0, total_steps].
absl::StatusOr<std::vector<int64_t>> CheckpointSchedule(
    int64_t total_steps, int64_t every, absl::Span<const int64_t> extra = {});

// Cuts a token stream into training samples and deals them out in batches.
// Sample i is stream[i * seq_len, i * seq_len + seq_len + 1): seq_len inputs
// and the targets one position later, consecutive samples sharing a token
// as GPT-NeoX's do. The samples are drawn without replacement in a shuffled
// order, reshuffled each epoch; the order depends only on the seed, so the
// batch of any update can be recomputed (a resumed run sees what an
// uninterrupted one saw).
class TokenBatcher {
 public:
  // FAILED_PRECONDITION if the stream is shorter than one sample;
  // INVALID_ARGUMENT for non-positive sizes.
  static absl::StatusOr<TokenBatcher> Create(std::vector<int32_t> stream,
                                             int64_t seq_len,
                                             int64_t batch_size, uint64_t seed);

  int64_t num_samples() const { return num_samples_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t stream_tokens() const { return static_cast<int64_t>(stream_.size()); }

  // The samples of update `step` (1-based), [batch_size, seq_len + 1]
  // row-major: global samples (step - 1) * batch_size onwards of the
  // sequence of epochs, each epoch a Fisher-Yates permutation of all
  // samples by a std::mt19937_64 seeded from (seed, epoch).
  std::vector<int32_t> Batch(int64_t step);

 private:
  TokenBatcher() = default;
  const std::vector<int64_t>& Permutation(int64_t epoch);

  std::vector<int32_t> stream_;
  int64_t seq_len_ = 0;
  int64_t batch_size_ = 0;
  int64_t num_samples_ = 0;
  uint64_t seed_ = 0;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> permutation_;
};

struct OptimizerOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  // Decoupled (AdamW): w -= lr * weight_decay * w, on matrices and
  // embeddings only.
  double weight_decay = 0.01;
  // Global L2 norm the gradients are clipped to; 0 disables clipping.
  double grad_clip = 1.0;
};

// A GPT-NeoX model being trained: float32 parameters (autograd leaves), the
// AdamW moments and the update count. Not thread-safe; libtorch's intra-op
// threads (SetComputeThreads) do the parallel work.
class GptNeoxTrainer {
 public:
  // A freshly initialised model (the recipe above), its parameters drawn in
  // GptNeoxTensorSlots order from one libtorch CPU generator seeded with
  // `seed`. INVALID_ARGUMENT for a config GptNeoxConfig::FromJson would
  // refuse.
  static absl::StatusOr<std::unique_ptr<GptNeoxTrainer>> Create(
      const GptNeoxConfig& config, const OptimizerOptions& optimizer,
      uint64_t seed);

  ~GptNeoxTrainer();
  GptNeoxTrainer(const GptNeoxTrainer&) = delete;
  GptNeoxTrainer& operator=(const GptNeoxTrainer&) = delete;

  const GptNeoxConfig& config() const;
  // The parameters (float32, CPU, requires_grad), for reading.
  const GptNeoxWeights& weights() const;
  // Updates done so far.
  int64_t step() const;
  int64_t num_parameters() const;

  // `tokens` holds `batch` samples of equal length n + 1 (row-major): ids in
  // [0, vocab_size). Inputs are the first n, targets the last n.
  //
  // One AdamW update at learning rate `lr`; returns the batch's mean
  // next-token cross-entropy (nats) before the update.
  absl::StatusOr<double> Step(absl::Span<const int32_t> tokens, int64_t batch,
                              double lr);
  // The mean cross-entropy, without gradients or update.
  absl::StatusOr<double> Loss(absl::Span<const int32_t> tokens,
                              int64_t batch) const;
  // The mean cross-entropy, with its gradients left in each parameter's
  // grad() (what Step does before updating; exposed for gradient checks).
  absl::StatusOr<double> LossAndGradients(absl::Span<const int32_t> tokens,
                                          int64_t batch);

  // The weights as a served checkpoint: Pythia's tensor names and order,
  // converted to `dtype` (F16, BF16 or F32; round to nearest even).
  absl::StatusOr<SafetensorsWriter> ExportWeights(DType dtype) const;

  // Everything needed to continue training bit for bit: the float32
  // parameters (under their Pythia names) and AdamW moments
  // ("optimizer.exp_avg.<name>", "optimizer.exp_avg_sq.<name>"), with the
  // update count ("garden_train_step") and a 64-bit checksum of all tensor
  // bytes ("garden_train_checksum") in the metadata. Callers may add
  // metadata of their own.
  absl::StatusOr<SafetensorsWriter> SaveState() const;
  // Replaces parameters, moments and update count with those of a file
  // SaveState wrote. DATA_LOSS, saying what is wrong, for a missing or
  // misshapen tensor, a checksum mismatch, a bad step or a non-finite
  // value; the trainer is unchanged then.
  absl::Status RestoreState(const SafetensorsFile& file);

 private:
  struct Impl;
  explicit GptNeoxTrainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A 64-bit checksum (not cryptographic: it catches corruption, and is the
// same on every machine). The value depends on the bytes and on how they
// were split into Update calls, so checker and writer feed the same pieces.
class Checksum64 {
 public:
  void Update(absl::Span<const uint8_t> bytes);
  uint64_t value() const { return state_; }
  // 16 lower-case hex digits.
  std::string Hex() const;

 private:
  uint64_t state_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace garden

#endif  // GARDEN_COMMON_TRAIN_TRAINER_H_
