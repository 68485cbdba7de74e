// GPT-NeoX causal language model (the Pythia architecture) in libtorch, for
// running the checkpoints Garden studies: logits, greedy and sampled
// continuations, and attention patterns.
//
// The architecture, as Hugging Face transformers' GPTNeoXForCausalLM computes
// it (inference only, no dropout):
//
//   h = embed_in[ids]
//   for each layer:
//     a = Attention(LayerNorm1(h))
//     h = use_parallel_residual ? h + a + Mlp(LayerNorm2(h))
//                               : (h + a) + Mlp(LayerNorm2(h + a))
//   logits = embed_out(FinalLayerNorm(h))          (untied, no bias)
//
// Attention: one fused query_key_value projection whose output rows are laid
// out per head as [q | k | v] chunks of head_dim; rotary position embeddings
// on the first rotary_dims() dimensions of every query and key head (the
// "rotate_half" convention: dimension i pairs with i + rotary_dims/2);
// causal softmax(q k^T / sqrt(head_dim)) v; output projection `dense`.
// Mlp: dense_4h_to_h(act(dense_h_to_4h(x))).
//
// Weights arrive through a WeightSource so that the server's checkpoint store
// (or anything else holding raw bytes) can supply them; TensorFileWeightSource
// reads them from open checkpoint files (safetensors, torch.save).
//
// The forward math exists once, in GptNeoxForward over a GptNeoxWeights:
// GptNeoxModel runs it under c10::InferenceMode for serving, and the trainer
// (common/train/trainer.h) runs it on autograd-tracked parameters.
#ifndef GARDEN_COMMON_MODEL_GPT_NEOX_H_
#define GARDEN_COMMON_MODEL_GPT_NEOX_H_

#include <ATen/core/Tensor.h>  // at::Tensor only; the ops live in gpt_neox.cc

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/formats/dtype.h"
#include "common/formats/tensor_file.h"

namespace garden {

// The hyper-parameters of a GPT-NeoX checkpoint, as its config.json states
// them (Hugging Face key names).
struct GptNeoxConfig {
  enum class Activation {
    kGelu,      // "gelu": exact, 0.5 x (1 + erf(x / sqrt 2))
    kGeluTanh,  // "gelu_new", "gelu_fast", "gelu_pytorch_tanh": tanh form
  };

  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  double rotary_pct = 0.25;
  double rotary_emb_base = 10000;
  int64_t max_position_embeddings = 2048;
  double layer_norm_eps = 1e-5;
  bool use_parallel_residual = true;
  Activation hidden_act = Activation::kGelu;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // int(head_dim * rotary_pct), as transformers truncates it; always even.
  int64_t rotary_dims() const;

  // Parses config.json text. The five sizes are required; the others default
  // to the values above (transformers' defaults) when absent. Errors name the
  // offending key: INVALID_ARGUMENT for text that is not a JSON object, a
  // value of the wrong type, or an impossible value (non-positive size,
  // hidden_size not divisible by the heads, odd rotary dims, unknown
  // activation); FAILED_PRECONDITION for a missing required key, or for a
  // valid configuration this implementation does not run
  // (tie_word_embeddings: true).
  static absl::StatusOr<GptNeoxConfig> FromJson(std::string_view json);
};

// One tensor of a weight source: what it is, and how to read its raw
// little-endian bytes.
struct RawTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t num_bytes = 0;
  // Fills `out` (num_bytes long) with the bytes: read, not mapped, so that a
  // file truncated during a load is a status (DATA_LOSS), never SIGBUS.
  std::function<absl::Status(absl::Span<uint8_t> out)> read;
};

// Where a model's weights come from, by Hugging Face tensor name.
class WeightSource {
 public:
  virtual ~WeightSource();
  // NOT_FOUND (naming the tensor) if the source has no such tensor.
  virtual absl::StatusOr<RawTensor> Get(const std::string& name) const = 0;
};

// Weights in one or more open checkpoint files (a sharded checkpoint is
// several). A name present in more than one file is taken from the first.
class TensorFileWeightSource : public WeightSource {
 public:
  explicit TensorFileWeightSource(
      std::vector<std::shared_ptr<const TensorFile>> files);
  // Opens every path in the format its name says (OpenTensorFile); the first
  // error wins.
  static absl::StatusOr<std::unique_ptr<TensorFileWeightSource>> Open(
      const std::vector<std::string>& paths);
  // Opens every "*.safetensors" file directly inside `dir`, in name order,
  // or, where there is none, every "*.bin" file; NOT_FOUND if there is
  // neither.
  static absl::StatusOr<std::unique_ptr<TensorFileWeightSource>> OpenDir(
      const std::string& dir);

  absl::StatusOr<RawTensor> Get(const std::string& name) const override;

 private:
  std::vector<std::shared_ptr<const TensorFile>> files_;
};

// Reads `dir`/config.json and parses it with GptNeoxConfig::FromJson.
absl::StatusOr<GptNeoxConfig> ReadGptNeoxConfig(const std::string& dir);

// The tensors of a GPT-NeoX model. The forward pass only reads them, so they
// may be inference tensors (serving) or autograd leaves (training).
struct GptNeoxLayerWeights {
  at::Tensor ln1_w, ln1_b;      // input_layernorm
  at::Tensor ln2_w, ln2_b;      // post_attention_layernorm
  at::Tensor qkv_w, qkv_b;      // attention.query_key_value
  at::Tensor dense_w, dense_b;  // attention.dense
  at::Tensor up_w, up_b;        // mlp.dense_h_to_4h
  at::Tensor down_w, down_b;    // mlp.dense_4h_to_h
};

struct GptNeoxWeights {
  at::Tensor embed_in;  // [vocab, hidden]
  std::vector<GptNeoxLayerWeights> layers;
  at::Tensor final_w, final_b;  // final_layer_norm
  at::Tensor embed_out;         // [vocab, hidden], untied, no bias
  // Not parameters: rotary tables for every position, [max_pos,
  // rotary_dims], in the compute dtype; cos, and sin with its first half
  // negated, so that rotating is x * cos + swap_halves(x) * sin_signed (the
  // same products and sums as transformers' x * cos + rotate_half(x) * sin).
  // Undefined when rotary_dims() is 0. Filled by ComputeRotaryTables.
  at::Tensor rotary_cos, rotary_sin_signed;
};

// What a weight is, for whoever initialises or regularises it.
enum class GptNeoxRole {
  kEmbedding,         // embed_in, embed_out
  kMatrix,            // query_key_value, dense_h_to_4h
  kOutputProjection,  // attention.dense, mlp.dense_4h_to_h (into the residual)
  kBias,              // linear biases
  kNormWeight,        // LayerNorm gains
  kNormBias,          // LayerNorm shifts
};

// One weight of a model: its Hugging Face name, shape, role and slot.
struct GptNeoxTensorSlot {
  std::string name;  // "gpt_neox.layers.0.attention.dense.weight"
  std::vector<int64_t> shape;
  GptNeoxRole role;
  at::Tensor* tensor;  // into the GptNeoxWeights given
};

// Every weight of `config`'s model in Pythia's order (embed_in, each layer's
// norms, attention, MLP, then the final norm and embed_out), pointing into
// `weights`, whose layers are resized to the layer count. The one list of
// names both loading and the trainer's checkpoints use.
std::vector<GptNeoxTensorSlot> GptNeoxTensorSlots(const GptNeoxConfig& config,
                                                  GptNeoxWeights* weights);

// Fills weights->rotary_cos and rotary_sin_signed for `config`, computed in
// float32 as transformers does, then converted to `dtype` on `device`.
void ComputeRotaryTables(const GptNeoxConfig& config, c10::Device device,
                         at::ScalarType dtype, GptNeoxWeights* weights);

class KvCache;

struct GptNeoxForwardOptions {
  // Continue at positions cache->length() onwards and append to the cache.
  KvCache* cache = nullptr;
  // Logits of the last position only (what decoding needs: the vocabulary
  // projection dominates small models).
  bool last_only = false;
  // If >= 0, stop after that layer's attention and return its probabilities
  // [batch, heads, seq, past + seq] (float32) instead of logits.
  int64_t capture_layer = -1;
  // If defined (int64 [n]): logits [n, vocab] of these positions only, as
  // flat indices b * seq + t (scoring needs a few positions per sequence,
  // and the vocabulary projection is most of a small model's work).
  at::Tensor positions;
};

// The GPT-NeoX forward pass: ids [batch, seq] (int64, on the weights'
// device) to logits [batch, seq (or 1), vocab], float32. Validates nothing
// (GptNeoxModel::Forward checks ids; the trainer builds them) and throws
// c10::Error on misuse; autograd records it unless the caller is in
// inference or no-grad mode.
at::Tensor GptNeoxForward(const GptNeoxConfig& config,
                          const GptNeoxWeights& weights, const at::Tensor& ids,
                          const GptNeoxForwardOptions& options = {});

// Past keys and values of every layer, for incremental decoding: each
// Forward() with a cache attends to everything it saw before and appends its
// own keys and values, and its tokens take the next positions. A cache
// belongs to one model and one batch size; it is not thread-safe.
class KvCache {
 public:
  KvCache();
  ~KvCache();
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;

  // Tokens seen so far (the position the next token takes).
  int64_t length() const { return length_; }
  // Forgets everything (keeps the buffers for reuse).
  void Clear() { length_ = 0; }

 private:
  friend class GptNeoxModel;
  friend at::Tensor GptNeoxForward(const GptNeoxConfig&, const GptNeoxWeights&,
                                   const at::Tensor&,
                                   const GptNeoxForwardOptions&);
  // Makes room for `total` positions of `batch` sequences in `dtype` on
  // `device`, keeping the first length_ positions.
  void Reserve(const GptNeoxConfig& config, int64_t batch, int64_t total,
               c10::Device device, at::ScalarType dtype);

  int64_t length_ = 0;
  int64_t batch_ = 0;
  // Per layer: [batch, heads, capacity, head_dim]; the first length_
  // positions along dim 2 are valid. Grown geometrically, so that decoding
  // n tokens copies O(n) rather than O(n^2) elements.
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

struct LoadOptions {
  // "cpu", "cuda", "cuda:N", or "auto" (the first GPU if there is one).
  std::string device = "cpu";
  // Compute dtype: "float32"; "float16" and "bfloat16" only on CUDA. Stored
  // weights (F32, F16, BF16) are converted to it on load.
  std::string dtype = "float32";
};

struct SamplingOptions {
  double temperature = 1.0;  // > 0; 0 means greedy
  int64_t top_k = 0;         // keep the k likeliest tokens; 0 keeps all
  double top_p = 1.0;        // nucleus: smallest set with mass >= top_p
  uint64_t seed = 0;         // same seed, same prompt, same device: same text
};

struct Generation {
  std::vector<int64_t> tokens;  // the new tokens only, prompt excluded
  // log p(token | everything before) under the model's own distribution
  // (softmax of the raw logits: temperature 1, no top-k/top-p filtering),
  // so that scores are comparable across sampling settings.
  std::vector<float> logprobs;
};

// A loaded model. Const methods are thread-safe (they run under
// c10::InferenceMode and touch no shared mutable state); each caller brings
// its own KvCache.
class GptNeoxModel {
 public:
  // Checks every weight's presence and shape against `config` before
  // converting any: FAILED_PRECONDITION naming the tensor and both shapes for
  // a missing or mis-shaped weight (or an unsupported stored dtype);
  // INVALID_ARGUMENT for bad options; UNAVAILABLE for a CUDA device on a
  // machine (or libtorch build) without one. Buffers some checkpoints also
  // carry (attention.bias, attention.masked_bias, attention.rotary_emb.*) are
  // never asked for.
  static absl::StatusOr<std::unique_ptr<GptNeoxModel>> Load(
      const GptNeoxConfig& config, const WeightSource& weights,
      const LoadOptions& options);
  static absl::StatusOr<std::unique_ptr<GptNeoxModel>> Load(
      const GptNeoxConfig& config, const WeightSource& weights) {
    return Load(config, weights, LoadOptions());
  }

  ~GptNeoxModel();
  GptNeoxModel(const GptNeoxModel&) = delete;
  GptNeoxModel& operator=(const GptNeoxModel&) = delete;

  const GptNeoxConfig& config() const;
  // "cpu", "cuda:0", ...
  std::string device() const;

  // ids: [batch, seq] integer tensor (any device) of token ids in
  // [0, vocab_size). Returns logits [batch, seq, vocab_size], float32, on the
  // model's device. With a cache, the tokens continue at positions
  // cache->length() onwards and are appended to it. INVALID_ARGUMENT for bad
  // ids, a batch size differing from the cache's, or positions beyond
  // max_position_embeddings (naming the limit).
  absl::StatusOr<at::Tensor> Forward(const at::Tensor& ids,
                                     KvCache* cache = nullptr) const;

  // Logits [n, vocab] (float32, on the model's device) at `positions`
  // (int64 [n], flat indices b * seq + t into ids [batch, seq]) only.
  // INVALID_ARGUMENT as Forward, or for a position outside [0, batch * seq).
  absl::StatusOr<at::Tensor> LogitsAt(const at::Tensor& ids,
                                      const at::Tensor& positions) const;

  // Called after each new token with its log-probability; returning false
  // stops the generation with CANCELLED (a client that went away).
  using TokenCallback = std::function<bool(int64_t token, float logprob)>;

  // Greedy decoding (argmax, lowest id on ties) of `max_new_tokens` tokens
  // after `prompt` (non-empty), with a KV cache. INVALID_ARGUMENT if prompt +
  // new tokens exceed max_position_embeddings.
  absl::StatusOr<Generation> Greedy(absl::Span<const int64_t> prompt,
                                    int64_t max_new_tokens,
                                    const TokenCallback& on_token = {}) const;
  // The same without the cache: every step reruns the whole sequence. Slow;
  // it exists to check the cache.
  absl::StatusOr<Generation> GreedyNoCache(absl::Span<const int64_t> prompt,
                                           int64_t max_new_tokens) const;

  // Sampling with temperature, top-k and top-p, from a std::mt19937_64
  // seeded with options.seed (the draw is made in double precision on the
  // CPU, so only the logits depend on the device).
  absl::StatusOr<Generation> Sample(absl::Span<const int64_t> prompt,
                                    int64_t max_new_tokens,
                                    const SamplingOptions& options,
                                    const TokenCallback& on_token = {}) const;

  // Attention probabilities of `layer` for one sequence: ids [seq] or
  // [1, seq]; returns [heads, seq, seq] float32 on the CPU, row i the
  // distribution of query i over keys 0..i.
  absl::StatusOr<at::Tensor> AttentionWeights(const at::Tensor& ids,
                                              int64_t layer) const;

  // A model with this one's configuration, device and dtype whose weights
  // are this one's except those `edit` replaces: it is called once per
  // weight, in GptNeoxTensorSlots order, with slot.tensor pointing at the
  // shared tensor (an inference tensor on device(), in the compute dtype),
  // and may set *slot.tensor to a new tensor of the same shape, dtype and
  // device, but never modify the shared one in place (other requests read
  // it). Nothing `edit` leaves is copied. FAILED_PRECONDITION naming the
  // tensor for a replacement that does not match; `edit`'s errors as they
  // are; INTERNAL for what libtorch throws. `edit` runs under
  // c10::InferenceMode. For in-memory variants of a loaded model
  // (server/engine/prune.h).
  absl::StatusOr<std::unique_ptr<GptNeoxModel>> WithWeights(
      const std::function<absl::Status(const GptNeoxTensorSlot& slot)>& edit) const;

 private:
  struct Impl;
  explicit GptNeoxModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An estimate, on the large side, of the memory one forward pass allocates
// at its peak, in float32 activations: `positions` tokens at once, of which
// `logit_rows` are projected onto the vocabulary, attending over `context`
// positions (at least `positions`; more with a KV cache), whose cache of
// `cached` positions it keeps. For admission (gardend --request-memory-bytes);
// the weights are the model cache's.
uint64_t ForwardWorkingBytes(const GptNeoxConfig& config, int64_t positions,
                             int64_t logit_rows, int64_t context, int64_t cached);

// Threads libtorch uses inside one operation (at::set_num_threads).
void SetComputeThreads(int threads);

// Runs `body` (returning absl::Status or absl::StatusOr), turning a
// libtorch exception into INTERNAL prefixed with `what`: torch reports shape
// and device errors by throwing, and nothing may escape into callers that
// speak absl::Status.
template <typename F>
auto TorchGuarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string(what) + ": libtorch: " +
                               e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + ": " + e.what());
  }
}

}  // namespace garden

#endif  // GARDEN_COMMON_MODEL_GPT_NEOX_H_
