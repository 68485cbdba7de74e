#include "common/model/gpt_neox.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/file_content.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/formats/byte_source.h"
#include "common/formats/open_tensor_file.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

using Json = nlohmann::json;

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// What a config value must be, for its checks and messages.
template <typename T>
struct ConfigType;
// Integral floats (e.g. 512.0) are refused: configs written by transformers
// always use JSON integers, and a float here means the file is not what we
// think it is.
template <>
struct ConfigType<int64_t> {
  static constexpr const char* kName = "an integer";
  static bool Holds(const Json& j) { return j.is_number_integer(); }
};
template <>
struct ConfigType<double> {
  static constexpr const char* kName = "a number";
  static bool Holds(const Json& j) { return j.is_number(); }
};
template <>
struct ConfigType<bool> {
  static constexpr const char* kName = "a boolean";
  static bool Holds(const Json& j) { return j.is_boolean(); }
};

// Reads `key` into *out; an absent or null key leaves *out as it is, unless
// `required`. Numbers must be finite.
template <typename T>
absl::Status ReadValue(const Json& obj, const char* key, T* out,
                       bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("config.json: missing required key \"", key, "\""));
  }
  if (!ConfigType<T>::Holds(*it)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: \"", key, "\" must be ",
                     ConfigType<T>::kName, ", got ", ContentForMessage(it->dump())));
  }
  *out = it->get<T>();
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(*out)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.json: \"", key, "\" must be finite"));
    }
  }
  return absl::OkStatus();
}

// model_type, if given, and the sizes.
absl::Status ReadSizes(const Json& obj, GptNeoxConfig* c) {
  if (auto it = obj.find("model_type"); it != obj.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "gpt_neox") {
      return absl::FailedPreconditionError(absl::StrCat(
          "config.json: \"model_type\" is ", ContentForMessage(it->dump()), ", not \"gpt_neox\""));
    }
  }
  for (auto [key, field] : {
           std::pair{"hidden_size", &c->hidden_size},
           std::pair{"num_hidden_layers", &c->num_hidden_layers},
           std::pair{"num_attention_heads", &c->num_attention_heads},
           std::pair{"intermediate_size", &c->intermediate_size},
           std::pair{"vocab_size", &c->vocab_size},
       }) {
    RETURN_IF_ERROR(ReadValue(obj, key, field, /*required=*/true));
    if (*field <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config.json: \"", key, "\" must be positive, got ", *field));
    }
  }
  RETURN_IF_ERROR(ReadValue(obj, "max_position_embeddings",
                          &c->max_position_embeddings));
  if (c->max_position_embeddings <= 0) {
    return absl::InvalidArgumentError(
        "config.json: \"max_position_embeddings\" must be positive");
  }
  return absl::OkStatus();
}

// Rotary embedding, layer norm, residual and embedding options.
absl::Status ReadOptions(const Json& obj, GptNeoxConfig* c) {
  // Newer transformers name these partial_rotary_factor and rope_theta.
  for (const char* key : {"partial_rotary_factor", "rotary_pct"}) {
    RETURN_IF_ERROR(ReadValue(obj, key, &c->rotary_pct));
  }
  for (const char* key : {"rope_theta", "rotary_emb_base"}) {
    RETURN_IF_ERROR(ReadValue(obj, key, &c->rotary_emb_base));
  }
  RETURN_IF_ERROR(ReadValue(obj, "layer_norm_eps", &c->layer_norm_eps));
  RETURN_IF_ERROR(
      ReadValue(obj, "use_parallel_residual", &c->use_parallel_residual));
  bool tie = false;
  RETURN_IF_ERROR(ReadValue(obj, "tie_word_embeddings", &tie));
  if (tie) {
    return absl::FailedPreconditionError(
        "config.json: \"tie_word_embeddings\" is true; only untied embed_out "
        "(as in every Pythia model) is supported");
  }
  return absl::OkStatus();
}

absl::Status ReadActivation(const Json& obj, GptNeoxConfig* c) {
  auto it = obj.find("hidden_act");
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: \"hidden_act\" must be a string, got ", ContentForMessage(it->dump())));
  }
  const std::string act = it->get<std::string>();
  if (act == "gelu") {
    c->hidden_act = GptNeoxConfig::Activation::kGelu;
  } else if (act == "gelu_new" || act == "gelu_fast" ||
             act == "gelu_pytorch_tanh") {
    c->hidden_act = GptNeoxConfig::Activation::kGeluTanh;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: \"hidden_act\" ", ContentForMessage(act),
        " is not supported (gelu, gelu_new, gelu_fast, gelu_pytorch_tanh "
        "are)"));
  }
  return absl::OkStatus();
}

// What the values must satisfy together.
absl::Status CheckConsistent(const GptNeoxConfig& c) {
  if (c.hidden_size % c.num_attention_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: \"hidden_size\" ", c.hidden_size,
                     " is not divisible by \"num_attention_heads\" ",
                     c.num_attention_heads));
  }
  if (!(c.rotary_pct >= 0 && c.rotary_pct <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: \"rotary_pct\" must be in [0, 1], got ", c.rotary_pct));
  }
  if (c.rotary_dims() % 2 != 0) {
    // transformers would fail at run time: its cos/sin tables have an even
    // number of columns.
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: \"rotary_pct\" ", c.rotary_pct, " gives ",
                     c.rotary_dims(), " rotary dimensions of head_dim ",
                     c.head_dim(), "; they must be even"));
  }
  if (!(c.rotary_emb_base > 0)) {
    return absl::InvalidArgumentError(
        "config.json: \"rotary_emb_base\" must be positive");
  }
  if (!(c.layer_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        "config.json: \"layer_norm_eps\" must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<at::ScalarType> TorchDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return at::kFloat;
    case DType::kF16:
      return at::kHalf;
    case DType::kBF16:
      return at::kBFloat16;
    default:
      return absl::FailedPreconditionError(
          absl::StrCat("unsupported weight dtype ", ToAbsl(DTypeName(dtype)),
                       " (F32, F16 and BF16 are)"));
  }
}

// x W^T + b. A single row (decoding at batch 1) goes through gemv: OpenBLAS
// runs at::linear's M = 1 sgemm 2-6x slower than sgemv for the same weight
// (measured for every pythia-70m layer shape), and at batch 1 the weights'
// memory traffic is the whole cost of a token.
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w,
                  const at::Tensor& b = at::Tensor()) {
  const int64_t in = w.size(1);
  if (x.numel() == in && x.device().is_cpu()) {
    at::Tensor v = x.reshape({in});
    at::Tensor y = b.defined() ? at::addmv(b, w, v) : at::mv(w, v);
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  return at::linear(x, w, b);
}

}  // namespace

// ---------------------------------------------------------------- config ---

int64_t GptNeoxConfig::rotary_dims() const {
  return static_cast<int64_t>(static_cast<double>(head_dim()) * rotary_pct);
}

absl::StatusOr<GptNeoxConfig> GptNeoxConfig::FromJson(std::string_view text) {
  Json obj = Json::parse(text.begin(), text.end(), nullptr,
                         /*allow_exceptions=*/false);
  if (obj.is_discarded()) {
    return absl::InvalidArgumentError("config.json: not valid JSON");
  }
  if (!obj.is_object()) {
    return absl::InvalidArgumentError("config.json: not a JSON object");
  }
  GptNeoxConfig c;
  RETURN_IF_ERROR(ReadSizes(obj, &c));
  RETURN_IF_ERROR(ReadOptions(obj, &c));
  RETURN_IF_ERROR(ReadActivation(obj, &c));
  RETURN_IF_ERROR(CheckConsistent(c));
  return c;
}

absl::StatusOr<GptNeoxConfig> ReadGptNeoxConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  absl::StatusOr<GptNeoxConfig> config = GptNeoxConfig::FromJson(text);
  if (!config.ok()) return Annotate(config.status(), path);
  return config;
}

// --------------------------------------------------------------- weights ---

WeightSource::~WeightSource() = default;

TensorFileWeightSource::TensorFileWeightSource(
    std::vector<std::shared_ptr<const TensorFile>> files)
    : files_(std::move(files)) {}

absl::StatusOr<std::unique_ptr<TensorFileWeightSource>>
TensorFileWeightSource::Open(const std::vector<std::string>& paths) {
  std::vector<std::shared_ptr<const TensorFile>> files;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> source,
                     LocalFileSource::Open(path));
    ASSIGN_OR_RETURN(std::unique_ptr<TensorFile> file,
                     OpenTensorFile(std::move(source), path));
    files.push_back(std::move(file));
  }
  return std::make_unique<TensorFileWeightSource>(std::move(files));
}

absl::StatusOr<std::unique_ptr<TensorFileWeightSource>>
TensorFileWeightSource::OpenDir(const std::string& dir) {
  std::vector<std::string> safetensors, bins;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto extension = entry.path().extension();
    if (extension == ".safetensors") safetensors.push_back(entry.path().string());
    if (extension == ".bin") bins.push_back(entry.path().string());
  }
  if (ec) {
    return absl::NotFoundError(absl::StrCat(dir, ": ", ec.message()));
  }
  std::vector<std::string>& paths = safetensors.empty() ? bins : safetensors;
  if (paths.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no *.safetensors or *.bin files"));
  }
  std::sort(paths.begin(), paths.end());
  return Open(paths);
}

absl::StatusOr<RawTensor> TensorFileWeightSource::Get(
    const std::string& name) const {
  for (const auto& file : files_) {
    const TensorInfo* info = file->Find(name);
    if (info == nullptr) continue;
    RawTensor raw;
    raw.dtype = info->dtype;
    raw.shape = info->shape;
    raw.num_bytes = info->num_bytes();
    raw.read = [file, info](absl::Span<uint8_t> out) {
      return file->ReadElements(*info, 0, out);
    };
    return raw;
  }
  return absl::NotFoundError(absl::StrCat("tensor ", name, " not found"));
}

// --------------------------------------------------------------- forward ---

std::vector<GptNeoxTensorSlot> GptNeoxTensorSlots(const GptNeoxConfig& config,
                                                  GptNeoxWeights* weights) {
  const int64_t h = config.hidden_size, v = config.vocab_size,
                ff = config.intermediate_size;
  using R = GptNeoxRole;
  std::vector<GptNeoxTensorSlot> slots;
  slots.push_back(
      {"gpt_neox.embed_in.weight", {v, h}, R::kEmbedding, &weights->embed_in});
  weights->layers.resize(config.num_hidden_layers);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("gpt_neox.layers.", i, ".");
    GptNeoxLayerWeights& w = weights->layers[i];
    slots.push_back({p + "input_layernorm.weight", {h}, R::kNormWeight,
                     &w.ln1_w});
    slots.push_back({p + "input_layernorm.bias", {h}, R::kNormBias, &w.ln1_b});
    slots.push_back({p + "post_attention_layernorm.weight", {h},
                     R::kNormWeight, &w.ln2_w});
    slots.push_back(
        {p + "post_attention_layernorm.bias", {h}, R::kNormBias, &w.ln2_b});
    slots.push_back({p + "attention.query_key_value.weight", {3 * h, h},
                     R::kMatrix, &w.qkv_w});
    slots.push_back(
        {p + "attention.query_key_value.bias", {3 * h}, R::kBias, &w.qkv_b});
    slots.push_back({p + "attention.dense.weight", {h, h},
                     R::kOutputProjection, &w.dense_w});
    slots.push_back({p + "attention.dense.bias", {h}, R::kBias, &w.dense_b});
    slots.push_back(
        {p + "mlp.dense_h_to_4h.weight", {ff, h}, R::kMatrix, &w.up_w});
    slots.push_back({p + "mlp.dense_h_to_4h.bias", {ff}, R::kBias, &w.up_b});
    slots.push_back({p + "mlp.dense_4h_to_h.weight", {h, ff},
                     R::kOutputProjection, &w.down_w});
    slots.push_back({p + "mlp.dense_4h_to_h.bias", {h}, R::kBias, &w.down_b});
  }
  slots.push_back({"gpt_neox.final_layer_norm.weight", {h}, R::kNormWeight,
                   &weights->final_w});
  slots.push_back({"gpt_neox.final_layer_norm.bias", {h}, R::kNormBias,
                   &weights->final_b});
  slots.push_back(
      {"embed_out.weight", {v, h}, R::kEmbedding, &weights->embed_out});
  return slots;
}

void ComputeRotaryTables(const GptNeoxConfig& config, c10::Device device,
                         at::ScalarType dtype, GptNeoxWeights* weights) {
  // Computed in float32 exactly as transformers does (the products
  // t * inv_freq round in float32; doing them in double would shift the
  // angles at late positions).
  const int64_t rot = config.rotary_dims();
  if (rot == 0) {
    weights->rotary_cos = at::Tensor();
    weights->rotary_sin_signed = at::Tensor();
    return;
  }
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor inv_freq =
      1.0 / at::pow(config.rotary_emb_base,
                    at::arange(0, rot, 2, f32) / static_cast<double>(rot));
  at::Tensor t = at::arange(config.max_position_embeddings, f32);
  at::Tensor freqs = at::outer(t, inv_freq);  // [max_pos, rot / 2]
  at::Tensor cos = at::cat({freqs, freqs}, -1).cos();
  at::Tensor sin = freqs.sin();
  at::Tensor sin_signed = at::cat({-sin, sin}, -1);
  weights->rotary_cos = cos.to(device, dtype);
  weights->rotary_sin_signed = sin_signed.to(device, dtype);
}

namespace {

// Applies the rotary embedding to x: [batch, heads, seq, head_dim] at
// positions past, past + 1, ...
at::Tensor Rotate(const GptNeoxConfig& config, const GptNeoxWeights& weights,
                  const at::Tensor& x, int64_t past) {
  const int64_t rot = config.rotary_dims();
  if (rot == 0) return x;
  const int64_t head_dim = x.size(-1), seq = x.size(2);
  at::Tensor cos_p = weights.rotary_cos.narrow(0, past, seq);
  at::Tensor sin_p = weights.rotary_sin_signed.narrow(0, past, seq);
  at::Tensor xr = rot == head_dim ? x : x.narrow(-1, 0, rot);
  at::Tensor swapped =
      at::cat({xr.narrow(-1, rot / 2, rot / 2), xr.narrow(-1, 0, rot / 2)}, -1);
  at::Tensor out = xr * cos_p + swapped * sin_p;
  if (rot == head_dim) return out;
  return at::cat({out, x.narrow(-1, rot, head_dim - rot)}, -1);
}

}  // namespace

at::Tensor GptNeoxForward(const GptNeoxConfig& config,
                          const GptNeoxWeights& weights, const at::Tensor& ids,
                          const GptNeoxForwardOptions& options) {
  KvCache* cache = options.cache;
  const c10::Device device = weights.embed_in.device();
  const at::ScalarType dtype = weights.embed_in.scalar_type();
  const int64_t batch = ids.size(0), seq = ids.size(1);
  const int64_t hidden = config.hidden_size;
  const int64_t heads = config.num_attention_heads;
  const int64_t head_dim = config.head_dim();
  const int64_t past = cache != nullptr ? cache->length_ : 0;
  const int64_t total = past + seq;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  if (cache != nullptr) cache->Reserve(config, batch, total, device, dtype);

  // Query i (position past + i) may see keys 0 .. past + i. A single new
  // token sees everything, so decoding needs no mask.
  at::Tensor mask;
  if (seq > 1) {
    auto long_dev = at::TensorOptions().dtype(at::kLong).device(device);
    at::Tensor q_pos = at::arange(past, total, long_dev).unsqueeze(1);
    at::Tensor k_pos = at::arange(0, total, long_dev).unsqueeze(0);
    mask = k_pos > q_pos;  // [seq, total], true where hidden
  }

  at::Tensor h = at::embedding(weights.embed_in, ids);  // [batch, seq, hidden]
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const GptNeoxLayerWeights& w = weights.layers[l];
    at::Tensor x1 =
        at::layer_norm(h, {hidden}, w.ln1_w, w.ln1_b, config.layer_norm_eps);
    // [batch, seq, heads, 3 * head_dim] -> [batch, heads, seq, 3 * head_dim]
    at::Tensor qkv = Linear(x1, w.qkv_w, w.qkv_b)
                         .view({batch, seq, heads, 3 * head_dim})
                         .transpose(1, 2);
    at::Tensor q = Rotate(config, weights, qkv.narrow(-1, 0, head_dim), past);
    at::Tensor k =
        Rotate(config, weights, qkv.narrow(-1, head_dim, head_dim), past);
    at::Tensor v = qkv.narrow(-1, 2 * head_dim, head_dim);
    if (cache != nullptr) {
      cache->keys_[l].narrow(2, past, seq).copy_(k);
      cache->values_[l].narrow(2, past, seq).copy_(v);
      k = cache->keys_[l].narrow(2, 0, total);
      v = cache->values_[l].narrow(2, 0, total);
    }
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) * scale;
    if (mask.defined()) {
      scores.masked_fill_(mask, -std::numeric_limits<double>::infinity());
    }
    // Softmax in float32 whatever the compute dtype, as transformers does.
    at::Tensor probs = at::softmax(scores, -1, at::kFloat);
    if (l == options.capture_layer) return probs;
    at::Tensor context = at::matmul(probs.to(dtype), v)
                             .transpose(1, 2)
                             .reshape({batch, seq, hidden});
    at::Tensor attn = Linear(context, w.dense_w, w.dense_b);

    auto mlp = [&](const at::Tensor& in) {
      at::Tensor x2 =
          at::layer_norm(in, {hidden}, w.ln2_w, w.ln2_b, config.layer_norm_eps);
      at::Tensor up = Linear(x2, w.up_w, w.up_b);
      up = config.hidden_act == GptNeoxConfig::Activation::kGelu
               ? at::gelu(up)
               : at::gelu(up, "tanh");
      return Linear(up, w.down_w, w.down_b);
    };
    if (config.use_parallel_residual) {
      // transformers sums mlp + attn + residual in this order.
      h = mlp(h) + attn + h;
    } else {
      at::Tensor mid = attn + h;
      h = mlp(mid) + mid;
    }
  }
  if (cache != nullptr) cache->length_ = total;
  if (options.last_only) h = h.narrow(1, seq - 1, 1);
  if (options.positions.defined()) {
    h = h.reshape({-1, hidden}).index_select(0, options.positions);
  }
  h = at::layer_norm(h, {hidden}, weights.final_w, weights.final_b,
                     config.layer_norm_eps);
  return Linear(h, weights.embed_out).to(at::kFloat);
}

// -------------------------------------------------------------- KV cache ---

void KvCache::Reserve(const GptNeoxConfig& config, int64_t batch, int64_t total,
                      c10::Device device, at::ScalarType dtype) {
  const int64_t layers_n = config.num_hidden_layers;
  const int64_t heads = config.num_attention_heads;
  const int64_t head_dim = config.head_dim();
  const int64_t past = length_;
  const bool fits = static_cast<int64_t>(keys_.size()) == layers_n &&
                    keys_[0].size(0) == batch && keys_[0].device() == device &&
                    keys_[0].scalar_type() == dtype &&
                    keys_[0].size(2) >= total;
  if (fits) return;
  // Grow geometrically (or allocate), keeping what is valid.
  int64_t capacity = std::max<int64_t>(total, 32);
  if (!keys_.empty() && past > 0) {
    capacity = std::max(capacity, 2 * keys_[0].size(2));
  }
  capacity = std::min(capacity, config.max_position_embeddings);
  auto tensor_options = at::TensorOptions().dtype(dtype).device(device);
  std::vector<at::Tensor> keys(layers_n), values(layers_n);
  for (int64_t i = 0; i < layers_n; ++i) {
    keys[i] = at::empty({batch, heads, capacity, head_dim}, tensor_options);
    values[i] = at::empty({batch, heads, capacity, head_dim}, tensor_options);
    if (past > 0) {
      keys[i].narrow(2, 0, past).copy_(keys_[i].narrow(2, 0, past));
      values[i].narrow(2, 0, past).copy_(values_[i].narrow(2, 0, past));
    }
  }
  keys_ = std::move(keys);
  values_ = std::move(values);
  batch_ = batch;
}

KvCache::KvCache() = default;
KvCache::~KvCache() = default;
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;

// ----------------------------------------------------------------- model ---

struct GptNeoxModel::Impl {
  GptNeoxConfig config;
  c10::Device device = c10::Device(c10::kCPU);
  at::ScalarType dtype = at::kFloat;
  GptNeoxWeights weights;  // inference tensors in `dtype` on `device`

  // GptNeoxForward after validation.
  at::Tensor Run(const at::Tensor& ids, KvCache* cache, bool last_only,
                 int64_t capture_layer = -1,
                 at::Tensor positions = at::Tensor()) const {
    GptNeoxForwardOptions options;
    options.cache = cache;
    options.last_only = last_only;
    options.capture_layer = capture_layer;
    options.positions = std::move(positions);
    return GptNeoxForward(config, weights, ids, options);
  }

  absl::Status CheckIds(const at::Tensor& ids, const KvCache* cache) const;
  absl::Status CheckPrompt(absl::Span<const int64_t> prompt,
                           int64_t max_new_tokens) const;
  // Shared decoding loop; `pick` chooses the next token from float32 CPU
  // logits [vocab].
  template <typename Pick>
  absl::StatusOr<Generation> Decode(absl::Span<const int64_t> prompt,
                                    int64_t max_new_tokens, bool use_cache,
                                    Pick&& pick,
                                    const TokenCallback& on_token) const;
};

absl::Status GptNeoxModel::Impl::CheckIds(const at::Tensor& ids,
                                          const KvCache* cache) const {
  if (!ids.defined() || ids.dim() != 2) {
    return absl::InvalidArgumentError("ids must be a [batch, seq] tensor");
  }
  if (!at::isIntegralType(ids.scalar_type(), /*includeBool=*/false)) {
    return absl::InvalidArgumentError("ids must be an integer tensor");
  }
  if (ids.size(0) == 0 || ids.size(1) == 0) {
    return absl::InvalidArgumentError("ids must not be empty");
  }
  const int64_t past = cache != nullptr ? cache->length_ : 0;
  if (past + ids.size(1) > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "positions ", past, " + ", ids.size(1),
        " exceed max_position_embeddings = ", config.max_position_embeddings));
  }
  if (cache != nullptr && past > 0 && cache->batch_ != ids.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", ids.size(0),
                                                   " differs from the cache's ",
                                                   cache->batch_));
  }
  const int64_t lo = ids.min().item<int64_t>();
  const int64_t hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", lo < 0 ? lo : hi,
                     " outside [0, vocab_size = ", config.vocab_size, ")"));
  }
  return absl::OkStatus();
}

absl::Status GptNeoxModel::Impl::CheckPrompt(absl::Span<const int64_t> prompt,
                                             int64_t max_new_tokens) const {
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  if (max_new_tokens < 0) {
    return absl::InvalidArgumentError("max_new_tokens must be >= 0");
  }
  if (static_cast<int64_t>(prompt.size()) + max_new_tokens >
      config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt.size(), " tokens) + max_new_tokens (",
        max_new_tokens,
        ") exceed max_position_embeddings = ", config.max_position_embeddings));
  }
  for (int64_t id : prompt) {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id,
                       " outside [0, vocab_size = ", config.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

template <typename Pick>
absl::StatusOr<Generation> GptNeoxModel::Impl::Decode(
    absl::Span<const int64_t> prompt, int64_t max_new_tokens, bool use_cache,
    Pick&& pick, const TokenCallback& on_token) const {
  RETURN_IF_ERROR(CheckPrompt(prompt, max_new_tokens));
  c10::InferenceMode guard;
  auto long_dev = at::TensorOptions().dtype(at::kLong).device(device);
  std::vector<int64_t> sequence(prompt.begin(), prompt.end());
  Generation out;
  KvCache cache;
  at::Tensor next = at::tensor(sequence, at::kLong).to(device).unsqueeze(0);
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    at::Tensor logits;
    if (use_cache) {
      logits = Run(next, &cache, /*last_only=*/true);
    } else {
      at::Tensor all = at::tensor(sequence, at::kLong).to(device).unsqueeze(0);
      logits = Run(all, nullptr, /*last_only=*/true);
    }
    at::Tensor row = logits.reshape({-1}).cpu().contiguous();
    const float* data = row.data_ptr<float>();
    const int64_t token = pick(data, row.numel());
    // log softmax in double, with the max subtracted, over the raw logits.
    const float m = *std::max_element(data, data + row.numel());
    double sum = 0;
    for (int64_t i = 0; i < row.numel(); ++i) sum += std::exp(data[i] - m);
    out.tokens.push_back(token);
    out.logprobs.push_back(static_cast<float>(data[token] - m - std::log(sum)));
    if (on_token && !on_token(token, out.logprobs.back())) {
      return absl::CancelledError("generation stopped by the caller");
    }
    sequence.push_back(token);
    next = at::full({1, 1}, token, long_dev);
  }
  return out;
}

GptNeoxModel::GptNeoxModel(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
GptNeoxModel::~GptNeoxModel() = default;

const GptNeoxConfig& GptNeoxModel::config() const { return impl_->config; }

std::string GptNeoxModel::device() const { return impl_->device.str(); }

namespace {

// LoadOptions::device as a device this process has.
absl::StatusOr<c10::Device> ResolveDevice(const LoadOptions& options) {
  std::string device_name = options.device;
  if (device_name == "auto") {
    device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  }
  c10::Device device = c10::Device(c10::kCPU);
  try {
    device = c10::Device(device_name);
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("device \"", options.device,
                     "\" is not one of cpu, cuda, cuda:N, auto"));
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      return absl::UnavailableError(absl::StrCat(
          "device \"", options.device,
          "\": no CUDA device (or this libtorch was built without CUDA)"));
    }
    if (!device.has_index()) device.set_index(0);
    if (device.index() >= static_cast<int>(torch::cuda::device_count())) {
      return absl::UnavailableError(
          absl::StrCat("device \"", options.device, "\": only ",
                       torch::cuda::device_count(), " CUDA devices"));
    }
  } else if (!device.is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device \"", options.device,
                     "\" is not one of cpu, cuda, cuda:N, auto"));
  }
  return device;
}

// LoadOptions::dtype, if `device` computes in it.
absl::StatusOr<at::ScalarType> ResolveDType(const LoadOptions& options,
                                            const c10::Device& device) {
  if (options.dtype == "float32") return at::kFloat;
  if (options.dtype == "float16" || options.dtype == "bfloat16") {
    if (!device.is_cuda()) {
      // CPU kernels for half types are slow and some are missing in 1.13.
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype ", options.dtype, " is only supported on CUDA; use float32"));
    }
    return options.dtype == "float16" ? at::kHalf : at::kBFloat16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dtype \"", options.dtype,
                   "\" is not one of float32, float16, bfloat16"));
}

// Every wanted tensor, checked (presence, shape, dtype, size) before any is
// converted, so that a broken checkpoint fails fast and with the first bad
// name.
absl::StatusOr<std::vector<RawTensor>> FetchWeights(
    const std::vector<GptNeoxTensorSlot>& wanted, const WeightSource& weights) {
  std::vector<RawTensor> raws;
  raws.reserve(wanted.size());
  for (const GptNeoxTensorSlot& want : wanted) {
    absl::StatusOr<RawTensor> raw = weights.Get(want.name);
    if (!raw.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("weight ", want.name, " (expected shape ",
                       ShapeString(want.shape), "): ",
                       raw.status().code() == absl::StatusCode::kNotFound
                           ? std::string("missing")
                           : raw.status().ToString()));
    }
    if (raw->shape != want.shape) {
      return absl::FailedPreconditionError(absl::StrCat(
          "weight ", want.name, " has shape ", ShapeString(raw->shape),
          ", expected ", ShapeString(want.shape)));
    }
    absl::StatusOr<at::ScalarType> stored = TorchDType(raw->dtype);
    if (!stored.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("weight ", want.name, ": ", stored.status().message()));
    }
    const uint64_t numel =
        std::accumulate(want.shape.begin(), want.shape.end(), uint64_t{1},
                        [](uint64_t a, int64_t b) { return a * b; });
    if (raw->num_bytes != numel * DTypeSize(raw->dtype)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "weight ", want.name, ": ", raw->num_bytes, " bytes for ", numel,
          " elements of ", ToAbsl(DTypeName(raw->dtype))));
    }
    raws.push_back(*std::move(raw));
  }
  return raws;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GptNeoxModel>> GptNeoxModel::Load(
    const GptNeoxConfig& config, const WeightSource& weights,
    const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  ASSIGN_OR_RETURN(impl->device, ResolveDevice(options));
  ASSIGN_OR_RETURN(impl->dtype, ResolveDType(options, impl->device));
  const std::vector<GptNeoxTensorSlot> wanted =
      GptNeoxTensorSlots(config, &impl->weights);
  ASSIGN_OR_RETURN(std::vector<RawTensor> raws, FetchWeights(wanted, weights));

  absl::Status converted = TorchGuarded("loading GPT-NeoX weights", [&] {
    c10::InferenceMode guard;
    for (size_t i = 0; i < wanted.size(); ++i) {
      const RawTensor& raw = raws[i];
      // Read into a fresh tensor rather than wrap a mapping: the bytes need
      // not be aligned for their dtype, and a file that shrinks under a
      // mapping kills the process.
      at::Tensor host = at::empty(raw.shape, *TorchDType(raw.dtype));
      RETURN_IF_ERROR(raw.read(absl::MakeSpan(
          static_cast<uint8_t*>(host.data_ptr()), raw.num_bytes)));
      *wanted[i].tensor = host.to(impl->device, impl->dtype).contiguous();
      raws[i] = RawTensor();  // drop the file early
    }
    ComputeRotaryTables(config, impl->device, impl->dtype, &impl->weights);
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(converted);
  return std::unique_ptr<GptNeoxModel>(new GptNeoxModel(std::move(impl)));
}

absl::StatusOr<at::Tensor> GptNeoxModel::Forward(const at::Tensor& ids,
                                                 KvCache* cache) const {
  return TorchGuarded(
      "GptNeoxModel::Forward", [&]() -> absl::StatusOr<at::Tensor> {
        c10::InferenceMode guard;
        RETURN_IF_ERROR(impl_->CheckIds(ids, cache));
        return impl_->Run(ids.to(impl_->device, at::kLong), cache,
                          /*last_only=*/false);
      });
}

absl::StatusOr<at::Tensor> GptNeoxModel::LogitsAt(
    const at::Tensor& ids, const at::Tensor& positions) const {
  return TorchGuarded(
      "GptNeoxModel::LogitsAt", [&]() -> absl::StatusOr<at::Tensor> {
        c10::InferenceMode guard;
        RETURN_IF_ERROR(impl_->CheckIds(ids, nullptr));
        const int64_t total = ids.numel();
        if (positions.dim() != 1 || positions.numel() == 0) {
          return absl::InvalidArgumentError(
              "positions must be a non-empty 1-D tensor");
        }
        at::Tensor flat = positions.to(at::kCPU, at::kLong);
        const int64_t lo = flat.min().item<int64_t>();
        const int64_t hi = flat.max().item<int64_t>();
        if (lo < 0 || hi >= total) {
          return absl::InvalidArgumentError(absl::StrCat(
              "position ", lo < 0 ? lo : hi, " is outside [0, ", total, ")"));
        }
        return impl_->Run(ids.to(impl_->device, at::kLong), nullptr,
                          /*last_only=*/false, /*capture_layer=*/-1,
                          flat.to(impl_->device));
      });
}

absl::StatusOr<Generation> GptNeoxModel::Greedy(
    absl::Span<const int64_t> prompt, int64_t max_new_tokens,
    const TokenCallback& on_token) const {
  return TorchGuarded("GptNeoxModel::Greedy", [&] {
    return impl_->Decode(
        prompt, max_new_tokens, /*use_cache=*/true,
        [](const float* logits, int64_t n) {
          return std::max_element(logits, logits + n) - logits;
        },
        on_token);
  });
}

absl::StatusOr<Generation> GptNeoxModel::GreedyNoCache(
    absl::Span<const int64_t> prompt, int64_t max_new_tokens) const {
  return TorchGuarded("GptNeoxModel::GreedyNoCache", [&] {
    return impl_->Decode(
        prompt, max_new_tokens, /*use_cache=*/false,
        [](const float* logits, int64_t n) {
          return std::max_element(logits, logits + n) - logits;
        },
        TokenCallback());
  });
}

absl::StatusOr<Generation> GptNeoxModel::Sample(
    absl::Span<const int64_t> prompt, int64_t max_new_tokens,
    const SamplingOptions& options, const TokenCallback& on_token) const {
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature)) {
    return absl::InvalidArgumentError("temperature must be >= 0");
  }
  if (options.top_k < 0) {
    return absl::InvalidArgumentError("top_k must be >= 0");
  }
  if (!(options.top_p > 0 && options.top_p <= 1)) {
    return absl::InvalidArgumentError("top_p must be in (0, 1]");
  }
  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> order;
  std::vector<double> weight;
  auto pick = [&](const float* logits, int64_t n) -> int64_t {
    if (options.temperature == 0) {
      return std::max_element(logits, logits + n) - logits;
    }
    // Candidates, likeliest first (lowest id first among equals, so that
    // the order, and hence the draw, does not depend on the sort).
    order.resize(n);
    std::iota(order.begin(), order.end(), int64_t{0});
    auto before = [logits](int64_t a, int64_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    };
    int64_t kept = n;
    if (options.top_k > 0 && options.top_k < n) {
      kept = options.top_k;
      std::partial_sort(order.begin(), order.begin() + kept, order.end(),
                        before);
    } else {
      std::sort(order.begin(), order.end(), before);
    }
    // Softmax over the kept candidates at the temperature, in double.
    weight.resize(kept);
    const double top = logits[order[0]];
    double sum = 0;
    for (int64_t i = 0; i < kept; ++i) {
      weight[i] = std::exp((logits[order[i]] - top) / options.temperature);
      sum += weight[i];
    }
    // Nucleus: the shortest prefix whose probability reaches top_p (always
    // at least the likeliest token).
    if (options.top_p < 1) {
      double mass = 0;
      int64_t i = 0;
      while (i < kept) {
        mass += weight[i] / sum;
        ++i;
        if (mass >= options.top_p) break;
      }
      kept = i;
      sum = 0;
      for (int64_t j = 0; j < kept; ++j) sum += weight[j];
    }
    // A uniform double from 53 random bits: std::uniform_real_distribution
    // is not specified bit-for-bit, this is.
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
    double acc = 0;
    for (int64_t i = 0; i < kept; ++i) {
      acc += weight[i];
      if (u < acc) return order[i];
    }
    return order[kept - 1];
  };
  return TorchGuarded("GptNeoxModel::Sample", [&] {
    return impl_->Decode(prompt, max_new_tokens, /*use_cache=*/true, pick,
                         on_token);
  });
}

absl::StatusOr<at::Tensor> GptNeoxModel::AttentionWeights(const at::Tensor& ids,
                                                          int64_t layer) const {
  if (layer < 0 || layer >= impl_->config.num_hidden_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, " outside [0, num_hidden_layers = ",
                     impl_->config.num_hidden_layers, ")"));
  }
  return TorchGuarded(
      "GptNeoxModel::AttentionWeights", [&]() -> absl::StatusOr<at::Tensor> {
        c10::InferenceMode guard;
        at::Tensor batch =
            ids.defined() && ids.dim() == 1 ? ids.unsqueeze(0) : ids;
        if (!batch.defined() || batch.dim() != 2 || batch.size(0) != 1) {
          return absl::InvalidArgumentError(
              "ids must be one sequence: [seq] or [1, seq]");
        }
        RETURN_IF_ERROR(impl_->CheckIds(batch, nullptr));
        at::Tensor probs =
            impl_->Run(batch.to(impl_->device, at::kLong), nullptr,
                       /*last_only=*/false, layer);
        return probs[0].to(at::kCPU, at::kFloat).contiguous();
      });
}

absl::StatusOr<std::unique_ptr<GptNeoxModel>> GptNeoxModel::WithWeights(
    const std::function<absl::Status(const GptNeoxTensorSlot& slot)>& edit) const {
  auto impl = std::make_unique<Impl>();
  impl->config = impl_->config;
  impl->device = impl_->device;
  impl->dtype = impl_->dtype;
  impl->weights = impl_->weights;  // shares every tensor, rotary tables too
  const std::vector<GptNeoxTensorSlot> slots =
      GptNeoxTensorSlots(impl->config, &impl->weights);
  RETURN_IF_ERROR(TorchGuarded("GptNeoxModel::WithWeights", [&]() -> absl::Status {
    c10::InferenceMode guard;
    for (const GptNeoxTensorSlot& slot : slots) {
      const at::Tensor shared = *slot.tensor;
      RETURN_IF_ERROR(edit(slot));
      const at::Tensor& now = *slot.tensor;
      if (now.is_same(shared)) continue;
      if (!now.defined() || now.sizes() != shared.sizes() ||
          now.scalar_type() != shared.scalar_type() ||
          now.device() != shared.device()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "weight ", slot.name, ": a replacement must keep the shape, dtype "
            "and device of the tensor it replaces"));
      }
      *slot.tensor = now.contiguous();
    }
    return absl::OkStatus();
  }));
  return std::unique_ptr<GptNeoxModel>(new GptNeoxModel(std::move(impl)));
}

uint64_t ForwardWorkingBytes(const GptNeoxConfig& c, int64_t positions,
                             int64_t logit_rows, int64_t context, int64_t cached) {
  const auto u = [](int64_t x) { return static_cast<uint64_t>(std::max<int64_t>(x, 0)); };
  const uint64_t t = u(positions), ctx = std::max(u(context), t);
  // Per position: the residual stream and its norms, q/k/v, the attention
  // output, the MLP's two intermediate tensors (about 12 hidden + 2
  // intermediate floats); per head the scores and their softmax over the
  // context; the logits; the KV cache (keys and values of every layer).
  const uint64_t floats = t * (12 * u(c.hidden_size) + 2 * u(c.intermediate_size)) +
                          2 * u(c.num_attention_heads) * t * ctx +
                          u(logit_rows) * u(c.vocab_size) +
                          2 * u(c.num_hidden_layers) * u(cached) * u(c.hidden_size);
  return 4 * floats;
}

void SetComputeThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace garden
