#include "common/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {
namespace {

constexpr char kStepKey[] = "garden_train_step";
constexpr char kChecksumKey[] = "garden_train_checksum";
constexpr char kExpAvg[] = "optimizer.exp_avg.";
constexpr char kExpAvgSq[] = "optimizer.exp_avg_sq.";

bool Decays(GptNeoxRole role) {
  return role == GptNeoxRole::kEmbedding || role == GptNeoxRole::kMatrix ||
         role == GptNeoxRole::kOutputProjection;
}

std::string TensorBytes(const at::Tensor& t) {
  at::Tensor c = t.detach().contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

absl::Span<const uint8_t> AsBytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// Draws uniformly from [0, n) with one 64-bit draw: the high half of the
// 128-bit product (the same rule common/train/corpus.cc uses), fixed on every
// platform, unlike std::uniform_int_distribution.
uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >>
                               64);
}

}  // namespace

// ------------------------------------------------------------ schedules ---

int64_t LrSchedule::warmup_steps() const {
  const double w =
      std::ceil(warmup_fraction * static_cast<double>(total_steps));
  return std::max<int64_t>(1, static_cast<int64_t>(w));
}

double LrSchedule::At(int64_t step) const {
  const int64_t total = std::max<int64_t>(1, total_steps);
  step = std::clamp<int64_t>(step, 1, total);
  const int64_t warmup = warmup_steps();
  if (step <= warmup) {
    return peak * static_cast<double>(step) / static_cast<double>(warmup);
  }
  const double min_lr = final_fraction * peak;
  const double progress =
      static_cast<double>(step - warmup) /
      static_cast<double>(std::max<int64_t>(1, total - warmup));
  return min_lr + (peak - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

absl::StatusOr<std::vector<int64_t>> CheckpointSchedule(
    int64_t total_steps, int64_t every, absl::Span<const int64_t> extra) {
  if (total_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps must be at least 1, got ", total_steps));
  }
  if (every < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint interval must be at least 1, got ", every));
  }
  std::vector<int64_t> steps = {0};
  for (int64_t p = 1; p <= 512 && p < total_steps; p *= 2) steps.push_back(p);
  for (int64_t s = every; s <= total_steps; s += every) steps.push_back(s);
  for (int64_t s : extra) {
    if (s < 0 || s > total_steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint step ", s, " is outside [0, steps = ", total_steps, "]"));
    }
    steps.push_back(s);
  }
  steps.push_back(total_steps);
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  return steps;
}

// --------------------------------------------------------------- batches ---

absl::StatusOr<TokenBatcher> TokenBatcher::Create(std::vector<int32_t> stream,
                                                  int64_t seq_len,
                                                  int64_t batch_size,
                                                  uint64_t seed) {
  if (seq_len < 1 || batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence length (", seq_len, ") and batch size (",
                     batch_size, ") must be positive"));
  }
  const int64_t n = static_cast<int64_t>(stream.size());
  if (n < seq_len + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the corpus has ", n, " tokens, fewer than one sample (", seq_len + 1,
        " tokens for sequence length ", seq_len, ")"));
  }
  TokenBatcher b;
  b.stream_ = std::move(stream);
  b.seq_len_ = seq_len;
  b.batch_size_ = batch_size;
  b.num_samples_ = (n - 1) / seq_len;
  b.seed_ = seed;
  return b;
}

const std::vector<int64_t>& TokenBatcher::Permutation(int64_t epoch) {
  if (epoch != cached_epoch_) {
    // A distinct stream per epoch; the odd constant spreads nearby seeds.
    std::mt19937_64 rng(
        seed_ ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(epoch + 1)));
    permutation_.resize(num_samples_);
    for (int64_t i = 0; i < num_samples_; ++i) permutation_[i] = i;
    for (int64_t i = num_samples_ - 1; i > 0; --i) {
      const auto j =
          static_cast<int64_t>(Below(rng, static_cast<uint64_t>(i + 1)));
      std::swap(permutation_[i], permutation_[j]);
    }
    cached_epoch_ = epoch;
  }
  return permutation_;
}

std::vector<int32_t> TokenBatcher::Batch(int64_t step) {
  const int64_t width = seq_len_ + 1;
  std::vector<int32_t> out(static_cast<size_t>(batch_size_ * width));
  for (int64_t r = 0; r < batch_size_; ++r) {
    const int64_t global = (step - 1) * batch_size_ + r;
    const int64_t sample =
        Permutation(global / num_samples_)[global % num_samples_];
    std::copy_n(stream_.begin() + sample * seq_len_, width,
                out.begin() + r * width);
  }
  return out;
}

// -------------------------------------------------------------- checksum ---

void Checksum64::Update(absl::Span<const uint8_t> bytes) {
  // Eight bytes at a time through a multiply-xorshift mix.
  constexpr uint64_t kMul = 0x9fb21c651e98df25ull;
  uint64_t h = state_ ^ (bytes.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w = 0;
    for (int k = 0; k < 8; ++k)
      w |= static_cast<uint64_t>(bytes[i + k]) << (8 * k);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  for (; i < bytes.size(); ++i) {
    h = (h ^ bytes[i]) * kMul;
    h ^= h >> 29;
  }
  state_ = h;
}

std::string Checksum64::Hex() const { return absl::StrFormat("%016x", state_); }

// --------------------------------------------------------------- trainer ---

struct GptNeoxTrainer::Impl {
  GptNeoxConfig config;
  OptimizerOptions optimizer;
  GptNeoxWeights weights;
  std::vector<GptNeoxTensorSlot> slots;
  std::vector<at::Tensor> exp_avg, exp_avg_sq;  // per slot
  int64_t step = 0;

  // Inputs [batch, n] and targets [batch, n] from the flat samples.
  absl::StatusOr<std::pair<at::Tensor, at::Tensor>> Split(
      absl::Span<const int32_t> tokens, int64_t batch) const;
  at::Tensor LossTensor(const at::Tensor& inputs,
                        const at::Tensor& targets) const {
    at::Tensor logits = GptNeoxForward(config, weights, inputs);
    return at::cross_entropy_loss(logits.reshape({-1, config.vocab_size}),
                                  targets.reshape({-1}));
  }
};

absl::StatusOr<std::pair<at::Tensor, at::Tensor>> GptNeoxTrainer::Impl::Split(
    absl::Span<const int32_t> tokens, int64_t batch) const {
  const int64_t total = static_cast<int64_t>(tokens.size());
  if (batch < 1 || total % batch != 0 || total / batch < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        total, " tokens are not ", batch, " samples of at least 2 tokens"));
  }
  const int64_t width = total / batch;
  if (width - 1 > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "samples of ", width - 1, " inputs exceed max_position_embeddings = ",
        config.max_position_embeddings));
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id,
                       " outside [0, vocab_size = ", config.vocab_size, ")"));
    }
  }
  at::Tensor all =
      at::from_blob(const_cast<int32_t*>(tokens.data()), {batch, width},
                    at::TensorOptions().dtype(at::kInt))
          .to(at::kLong);
  return std::make_pair(all.narrow(1, 0, width - 1).contiguous(),
                        all.narrow(1, 1, width - 1).contiguous());
}

GptNeoxTrainer::GptNeoxTrainer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
GptNeoxTrainer::~GptNeoxTrainer() = default;

absl::StatusOr<std::unique_ptr<GptNeoxTrainer>> GptNeoxTrainer::Create(
    const GptNeoxConfig& config, const OptimizerOptions& optimizer,
    uint64_t seed) {
  // The config must be one the loader accepts: the checkpoints written from
  // this model have to load.
  if (config.hidden_size <= 0 || config.num_hidden_layers <= 0 ||
      config.num_attention_heads <= 0 || config.intermediate_size <= 0 ||
      config.vocab_size <= 0 ||
      config.hidden_size % config.num_attention_heads != 0 ||
      config.rotary_dims() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad model shape: hidden ", config.hidden_size, ", layers ",
        config.num_hidden_layers, ", heads ", config.num_attention_heads,
        ", intermediate ", config.intermediate_size, ", vocab ",
        config.vocab_size,
        " (hidden must divide into heads with an even number of rotary "
        "dimensions each)"));
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->optimizer = optimizer;
  absl::Status made = TorchGuarded("initialising GPT-NeoX", [&] {
    at::NoGradGuard no_grad;
    impl->slots = GptNeoxTensorSlots(config, &impl->weights);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const double d = static_cast<double>(config.hidden_size);
    const double small_init = std::sqrt(2.0 / (5.0 * d));
    const double wang_init =
        2.0 / (static_cast<double>(config.num_hidden_layers) * std::sqrt(d));
    for (const GptNeoxTensorSlot& slot : impl->slots) {
      at::Tensor t = at::empty(slot.shape, at::kFloat);
      switch (slot.role) {
        case GptNeoxRole::kEmbedding:
        case GptNeoxRole::kMatrix:
          t.normal_(0.0, small_init, gen);
          break;
        case GptNeoxRole::kOutputProjection:
          t.normal_(0.0, wang_init, gen);
          break;
        case GptNeoxRole::kNormWeight:
          t.fill_(1.0);
          break;
        case GptNeoxRole::kBias:
        case GptNeoxRole::kNormBias:
          t.zero_();
          break;
      }
      t.set_requires_grad(true);
      *slot.tensor = t;
      impl->exp_avg.push_back(at::zeros(slot.shape, at::kFloat));
      impl->exp_avg_sq.push_back(at::zeros(slot.shape, at::kFloat));
    }
    ComputeRotaryTables(config, c10::Device(c10::kCPU), at::kFloat,
                        &impl->weights);
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(made);
  return std::unique_ptr<GptNeoxTrainer>(new GptNeoxTrainer(std::move(impl)));
}

const GptNeoxConfig& GptNeoxTrainer::config() const { return impl_->config; }
const GptNeoxWeights& GptNeoxTrainer::weights() const { return impl_->weights; }
int64_t GptNeoxTrainer::step() const { return impl_->step; }

int64_t GptNeoxTrainer::num_parameters() const {
  int64_t n = 0;
  for (const GptNeoxTensorSlot& slot : impl_->slots) n += slot.tensor->numel();
  return n;
}

absl::StatusOr<double> GptNeoxTrainer::Loss(absl::Span<const int32_t> tokens,
                                            int64_t batch) const {
  ASSIGN_OR_RETURN(const auto split, impl_->Split(tokens, batch));
  return TorchGuarded("GptNeoxTrainer::Loss", [&]() -> absl::StatusOr<double> {
    at::NoGradGuard no_grad;
    return impl_->LossTensor(split.first, split.second).item<double>();
  });
}

absl::StatusOr<double> GptNeoxTrainer::LossAndGradients(
    absl::Span<const int32_t> tokens, int64_t batch) {
  ASSIGN_OR_RETURN(const auto split, impl_->Split(tokens, batch));
  return TorchGuarded(
      "GptNeoxTrainer::LossAndGradients", [&]() -> absl::StatusOr<double> {
        for (const GptNeoxTensorSlot& slot : impl_->slots) {
          slot.tensor->mutable_grad() = at::Tensor();
        }
        at::Tensor loss = impl_->LossTensor(split.first, split.second);
        loss.backward();
        return loss.item<double>();
      });
}

absl::StatusOr<double> GptNeoxTrainer::Step(absl::Span<const int32_t> tokens,
                                            int64_t batch, double lr) {
  ASSIGN_OR_RETURN(const double loss, LossAndGradients(tokens, batch));
  if (!std::isfinite(loss)) {
    return absl::FailedPreconditionError(
        absl::StrCat("loss is ", loss, " at update ", impl_->step + 1,
                     "; training diverged (lower the learning rate)"));
  }
  absl::Status updated = TorchGuarded("GptNeoxTrainer::Step", [&] {
    at::NoGradGuard no_grad;
    Impl& m = *impl_;
    const OptimizerOptions& o = m.optimizer;
    // Global gradient norm, summed in double in slot order (deterministic).
    double sum_sq = 0;
    for (const GptNeoxTensorSlot& slot : m.slots) {
      const at::Tensor& g = slot.tensor->grad();
      if (g.defined()) sum_sq += g.square().sum().item<double>();
    }
    const double norm = std::sqrt(sum_sq);
    // torch.nn.utils.clip_grad_norm_'s rule.
    const double clip = o.grad_clip > 0 ? o.grad_clip / (norm + 1e-6) : 1.0;
    const double t = static_cast<double>(m.step + 1);
    const double bias1 = 1.0 - std::pow(o.beta1, t);
    const double bias2 = 1.0 - std::pow(o.beta2, t);
    for (size_t i = 0; i < m.slots.size(); ++i) {
      at::Tensor& p = *m.slots[i].tensor;
      at::Tensor g = p.grad().defined() ? p.grad() : at::zeros_like(p);
      if (clip < 1.0) g = g * clip;
      // torch.optim.AdamW's arithmetic, in its order.
      if (Decays(m.slots[i].role)) p.mul_(1.0 - lr * o.weight_decay);
      m.exp_avg[i].mul_(o.beta1).add_(g, 1.0 - o.beta1);
      m.exp_avg_sq[i].mul_(o.beta2).addcmul_(g, g, 1.0 - o.beta2);
      at::Tensor denom =
          (m.exp_avg_sq[i].sqrt() / std::sqrt(bias2)).add_(o.eps);
      p.addcdiv_(m.exp_avg[i], denom, -lr / bias1);
      p.mutable_grad() = at::Tensor();
    }
    ++m.step;
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(updated);
  return loss;
}

absl::StatusOr<SafetensorsWriter> GptNeoxTrainer::ExportWeights(
    DType dtype) const {
  at::ScalarType type;
  switch (dtype) {
    case DType::kF32:
      type = at::kFloat;
      break;
    case DType::kF16:
      type = at::kHalf;
      break;
    case DType::kBF16:
      type = at::kBFloat16;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cannot export weights as ", ToAbsl(DTypeName(dtype)),
                       " (F32, F16 and BF16 are possible)"));
  }
  return TorchGuarded(
      "GptNeoxTrainer::ExportWeights",
      [&]() -> absl::StatusOr<SafetensorsWriter> {
        at::NoGradGuard no_grad;
        SafetensorsWriter writer;
        for (const GptNeoxTensorSlot& slot : impl_->slots) {
          RETURN_IF_ERROR(writer.Add(slot.name, dtype, slot.shape,
                                     TensorBytes(slot.tensor->to(type))));
        }
        return writer;
      });
}

absl::StatusOr<SafetensorsWriter> GptNeoxTrainer::SaveState() const {
  return TorchGuarded(
      "GptNeoxTrainer::SaveState", [&]() -> absl::StatusOr<SafetensorsWriter> {
        at::NoGradGuard no_grad;
        SafetensorsWriter writer;
        Checksum64 sum;
        auto add = [&](const std::string& name, const GptNeoxTensorSlot& slot,
                       const at::Tensor& t) -> absl::Status {
          std::string bytes = TensorBytes(t);
          sum.Update(AsBytes(bytes));
          return writer.Add(name, DType::kF32, slot.shape, std::move(bytes));
        };
        const Impl& m = *impl_;
        for (size_t i = 0; i < m.slots.size(); ++i) {
          const GptNeoxTensorSlot& slot = m.slots[i];
          RETURN_IF_ERROR(add(slot.name, slot, *slot.tensor));
          RETURN_IF_ERROR(add(kExpAvg + slot.name, slot, m.exp_avg[i]));
          RETURN_IF_ERROR(add(kExpAvgSq + slot.name, slot, m.exp_avg_sq[i]));
        }
        writer.SetMetadata(kStepKey, absl::StrCat(m.step));
        writer.SetMetadata(kChecksumKey, sum.Hex());
        return writer;
      });
}

absl::Status GptNeoxTrainer::RestoreState(const SafetensorsFile& file) {
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(
        absl::StrCat(file.path(), ": not a usable training state: ", what));
  };
  const auto& meta = file.metadata();
  int64_t step = 0;
  auto step_it = meta.find(kStepKey);
  if (step_it == meta.end() || !absl::SimpleAtoi(step_it->second, &step) ||
      step < 0) {
    return bad(absl::StrCat("no valid \"", kStepKey, "\" in its metadata"));
  }
  auto sum_it = meta.find(kChecksumKey);
  if (sum_it == meta.end()) {
    return bad(absl::StrCat("no \"", kChecksumKey, "\" in its metadata"));
  }
  const Impl& m = *impl_;
  // Check everything before touching the model.
  std::vector<const TensorInfo*> infos;
  Checksum64 sum;
  for (const GptNeoxTensorSlot& slot : m.slots) {
    for (const std::string& name :
         {slot.name, kExpAvg + slot.name, kExpAvgSq + slot.name}) {
      const TensorInfo* info = file.Find(name);
      if (info == nullptr)
        return bad(absl::StrCat("tensor ", name, " missing"));
      if (info->dtype != DType::kF32 || info->shape != slot.shape) {
        return bad(absl::StrCat("tensor ", name, " is ",
                                ToAbsl(DTypeName(info->dtype)),
                                " of the wrong shape or type for this model"));
      }
      ASSIGN_OR_RETURN(const absl::Span<const uint8_t> bytes, file.Data(*info));
      sum.Update(bytes);
      infos.push_back(info);
    }
  }
  if (sum.Hex() != sum_it->second) {
    return bad(absl::StrCat("checksum ", sum.Hex(), " differs from the ",
                            sum_it->second, " recorded: the file is corrupt"));
  }
  return TorchGuarded("GptNeoxTrainer::RestoreState", [&]() -> absl::Status {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> loaded;
    for (const TensorInfo* info : infos) {
      at::Tensor t = at::empty(info->shape, at::kFloat);
      RETURN_IF_ERROR(file.ReadElements(
          *info, 0,
          absl::MakeSpan(static_cast<uint8_t*>(t.data_ptr()), info->num_bytes())));
      if (!at::isfinite(t).all().item<bool>()) {
        return bad(absl::StrCat("tensor ", info->name,
                                " holds NaN or infinite values"));
      }
      loaded.push_back(std::move(t));
    }
    Impl& mm = *impl_;
    for (size_t i = 0; i < mm.slots.size(); ++i) {
      mm.slots[i].tensor->copy_(loaded[3 * i]);
      mm.exp_avg[i].copy_(loaded[3 * i + 1]);
      mm.exp_avg_sq[i].copy_(loaded[3 * i + 2]);
    }
    mm.step = step;
    return absl::OkStatus();
  });
}

}  // namespace garden
