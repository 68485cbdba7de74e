#include "server/engine/msd_sweep.h"

#include <sys/mman.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/naming/step_spec.h"
#include "common/stats/histogram.h"
#include "server/engine/ordered_tasks.h"

namespace garden {
namespace {

// Streamed through per worker thread.
constexpr size_t kChunkBytes = size_t{4} << 20;
// Elements decoded at a time: small enough to stay in the L1 cache.
constexpr size_t kBlock = 2048;

// Anonymous memory for a whole tensor, asking for transparent huge pages:
// filling a fresh 50 MB buffer page by page costs ~30 ms of page faults on
// a virtual machine (bench/scan_bench), as much as reading the tensor.
struct LargeFree {
  size_t size = 0;
  void operator()(uint8_t* p) const {
    if (p != nullptr) munmap(p, size);
  }
};
using LargeBuffer = std::unique_ptr<uint8_t[], LargeFree>;

absl::StatusOr<LargeBuffer> AllocateLarge(size_t size) {
  size = std::max<size_t>(size, 1);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", size, " bytes for a tensor"));
  }
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // advisory: fine if refused
#endif
  return LargeBuffer(static_cast<uint8_t*>(p), LargeFree{size});
}

// A tensor kept as its stored bytes: exact, and half the memory of floats
// for 16-bit dtypes; a consecutive sweep refreshes it with memcpy.
struct TensorValues {
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;
  LargeBuffer bytes;  // uninitialised until read
  size_t size = 0;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<TensorHandle> OpenFloatTensor(const CheckpointStore& store,
                                             const CheckpointLocation& where,
                                             const std::string& tensor) {
  auto handle = store.OpenTensor(where, tensor);
  if (!handle.ok()) return handle.status();
  if (!IsAnalysableFloat(handle->info->dtype)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor \"", tensor, "\" of ", where.model.Name(), " step ", where.step,
        " has dtype ", ToAbsl(DTypeName(handle->info->dtype)),
        "; MSD needs F64, F32, F16 or BF16"));
  }
  return handle;
}

absl::StatusOr<TensorValues> ReadValues(const TensorHandle& handle) {
  TensorValues values;
  values.shape = handle.info->shape;
  values.dtype = handle.info->dtype;
  values.size = handle.info->num_bytes();
  auto buffer = AllocateLarge(values.size);
  if (!buffer.ok()) return buffer.status();
  values.bytes = *std::move(buffer);
  if (values.size == 0) return values;
  // The whole tensor in one read, straight into place.
  auto status = handle.file->ReadChunks(
      *handle.info, absl::MakeSpan(values.bytes.get(), values.size),
      [](absl::Span<const uint8_t>) { return absl::OkStatus(); });
  if (!status.ok()) return status;
  return values;
}

// Sum of (x - r)^2 over n elements of dtypes dx and dr, decoded exactly to
// double block by block, with four partial sums.
double SquaredDistanceGeneric(const uint8_t* x, DType dx, const uint8_t* r,
                              DType dr, size_t n) {
  thread_local std::vector<double> a(kBlock), b(kBlock);
  double sum[4] = {0, 0, 0, 0};
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    DecodeInto(x + start * DTypeSize(dx), m, dx, a.data());
    DecodeInto(r + start * DTypeSize(dr), m, dr, b.data());
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
      for (size_t l = 0; l < 4; ++l) {
        const double d = a[i + l] - b[i + l];
        sum[l] += d * d;
      }
    }
    for (; i < m; ++i) {
      const double d = a[i] - b[i];
      sum[0] += d * d;
    }
  }
  return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

#if defined(__x86_64__)
// F16 against F16 with the F16C conversion: 8 halves per instruction, the
// differences taken in double (a difference of halves can need more bits
// than a float has).
__attribute__((target("avx2,f16c,fma"))) double SquaredDistanceF16Avx2(
    const uint8_t* x, const uint8_t* r, size_t n) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 fx = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 * i)));
    const __m256 fr = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * i)));
    const __m256d d0 =
        _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(fx)),
                      _mm256_cvtps_pd(_mm256_castps256_ps128(fr)));
    const __m256d d1 =
        _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(fx, 1)),
                      _mm256_cvtps_pd(_mm256_extractf128_ps(fr, 1)));
    acc0 = _mm256_fmadd_pd(d0, d0, acc0);
    acc1 = _mm256_fmadd_pd(d1, d1, acc1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  if (i < n) {
    sum += SquaredDistanceGeneric(x + 2 * i, DType::kF16, r + 2 * i,
                                  DType::kF16, n - i);
  }
  return sum;
}
#endif

double SquaredDistance(const uint8_t* x, DType dx, const uint8_t* r, DType dr,
                       size_t n) {
#if defined(__x86_64__)
  static const bool f16c = __builtin_cpu_supports("avx2") &&
                           __builtin_cpu_supports("f16c") &&
                           __builtin_cpu_supports("fma");
  if (f16c && dx == DType::kF16 && dr == DType::kF16) {
    return SquaredDistanceF16Avx2(x, r, n);
  }
#endif
  return SquaredDistanceGeneric(x, dx, r, dr, n);
}

// MSD of one step against `reference` (same shape required), and against
// `also` when given. With `into` (consecutive sweeps) the step's bytes are
// kept there; `into` may be `also`, whose chunk is compared before it is
// overwritten.
struct Distances {
  MsdPoint point;
  double msd_also = std::numeric_limits<double>::quiet_NaN();
};

absl::StatusOr<Distances> Displacement(
    const CheckpointStore& store, const CheckpointLocation& where,
    const std::string& tensor, const TensorValues& reference,
    int64_t reference_step, const TensorValues* also, TensorValues* into,
    const CancelFlag* cancel) {
  auto handle = OpenFloatTensor(store, where, tensor);
  if (!handle.ok()) return handle.status();
  const TensorInfo& info = *handle->info;
  if (info.shape != reference.shape) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor \"", tensor, "\" of ", where.model.Name(),
                     " has shape ", ShapeText(info.shape), " at step ",
                     where.step, " but ", ShapeText(reference.shape),
                     " at step ", reference_step, "; MSD needs one shape"));
  }
  // `into` is reused when it already holds this dtype and size; otherwise
  // the step's bytes go to a new buffer, moved into `into` at the end.
  TensorValues fresh;
  uint8_t* keep = nullptr;
  if (into != nullptr) {
    if (into->bytes && into->dtype == info.dtype &&
        into->size == info.num_bytes()) {
      keep = into->bytes.get();
    } else {
      fresh.shape = info.shape;
      fresh.dtype = info.dtype;
      fresh.size = info.num_bytes();
      auto buffer = AllocateLarge(fresh.size);
      if (!buffer.ok()) return buffer.status();
      fresh.bytes = *std::move(buffer);
      keep = fresh.bytes.get();
    }
  }
  thread_local std::vector<uint8_t> buffer(kChunkBytes);
  const size_t item = DTypeSize(info.dtype);
  size_t offset = 0;  // elements
  double sum = 0, sum_also = 0;
  auto status = handle->file->ReadChunks(
      info, absl::MakeSpan(buffer),
      [&](absl::Span<const uint8_t> chunk) -> absl::Status {
        if (IsCancelled(cancel)) {
          return absl::CancelledError("MSD sweep cancelled");
        }
        const size_t count = chunk.size() / item;
        sum += SquaredDistance(
            chunk.data(), info.dtype,
            reference.bytes.get() + offset * DTypeSize(reference.dtype),
            reference.dtype, count);
        if (also != nullptr) {
          sum_also += SquaredDistance(
              chunk.data(), info.dtype,
              also->bytes.get() + offset * DTypeSize(also->dtype), also->dtype,
              count);
        }
        if (keep != nullptr) {
          std::memcpy(keep + offset * item, chunk.data(), chunk.size());
        }
        offset += count;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (fresh.bytes) *into = std::move(fresh);
  Distances out;
  out.point.step = where.step;
  out.point.from_step = reference_step;
  out.point.n = info.numel();
  const double n = static_cast<double>(out.point.n);
  out.point.msd = out.point.n ? sum / n : 0.0;
  if (also != nullptr) out.msd_also = out.point.n ? sum_also / n : 0.0;
  return out;
}

// Entries of all steps held at once by one lag worker, as doubles.
constexpr size_t kLagBlockValues = size_t{2} << 20;

// Upper triangle (i <= j) of sum over entries of d_i d_j, d_i the
// displacement of step i from step 0, for the blocks a worker owns.
struct Gram {
  size_t steps = 0;
  std::vector<double> g;  // steps x steps, row-major
  double& at(size_t i, size_t j) { return g[i * steps + j]; }
};

// Dot product with four partial sums (vectorisable without reassociating).
double Dot(const double* a, const double* b, size_t n) {
  double s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t l = 0; l < 4; ++l) s[l] += a[i + l] * b[i + l];
  }
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// The Gram matrix over the blocks worker, worker + workers, ... of
// `block` entries each.
absl::StatusOr<Gram> LagGram(const std::vector<TensorHandle>& handles,
                             size_t block, size_t worker, size_t workers,
                             const CancelFlag* cancel) {
  const size_t steps = handles.size();
  const TensorInfo& first = *handles.front().info;
  const uint64_t numel = first.numel();
  Gram gram{steps, std::vector<double>(steps * steps, 0.0)};
  std::vector<double> x(steps * block), base(block);
  std::vector<uint8_t> bytes(block * sizeof(double));
  for (uint64_t start = worker * block; start < numel;
       start += workers * block) {
    if (IsCancelled(cancel)) {
      return absl::CancelledError("MSD sweep cancelled");
    }
    const size_t m = static_cast<size_t>(std::min<uint64_t>(block, numel - start));
    for (size_t i = 0; i < steps; ++i) {
      const TensorInfo& info = *handles[i].info;
      const size_t item = DTypeSize(info.dtype);
      auto status = handles[i].file->ReadElements(
          info, start, absl::MakeSpan(bytes.data(), m * item));
      if (!status.ok()) return status;
      double* row = i == 0 ? base.data() : x.data() + i * block;
      DecodeInto(bytes.data(), m, info.dtype, row);
      if (i > 0) {
        for (size_t k = 0; k < m; ++k) row[k] -= base[k];
      }
    }
    // Step 0's displacement is zero: its row and column stay 0.
    for (size_t i = 1; i < steps; ++i) {
      for (size_t j = i; j < steps; ++j) {
        gram.at(i, j) += Dot(x.data() + i * block, x.data() + j * block, m);
      }
    }
  }
  return gram;
}

absl::Status RunLagSweep(const CheckpointStore& store, ThreadPool& pool,
                         const std::vector<CheckpointLocation>& locations,
                         const MsdSweepOptions& options,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled) {
  auto handles = std::make_shared<std::vector<TensorHandle>>();
  for (const auto& where : locations) {
    auto handle = OpenFloatTensor(store, where, options.tensor);
    if (!handle.ok()) return handle.status();
    handles->push_back(*std::move(handle));
  }
  const size_t steps = handles->size();
  const uint64_t numel = handles->front().info->numel();
  const size_t block = std::max<size_t>(1024, kLagBlockValues / steps);
  const size_t blocks = static_cast<size_t>((numel + block - 1) / block);
  const size_t workers = std::max<size_t>(1, std::min(pool.size(), blocks));
  // Partial matrices are added in worker order: the same sums for the same
  // thread count, run after run.
  Gram total{steps, std::vector<double>(steps * steps, 0.0)};
  auto status = RunOrdered<Gram>(
      pool, workers, {.window = workers},
      [handles, block, workers](size_t w, const CancelFlag* cancel) {
        return LagGram(*handles, block, w, workers, cancel);
      },
      [&](size_t, Gram& part) {
        for (size_t k = 0; k < total.g.size(); ++k) total.g[k] += part.g[k];
        return true;
      },
      cancelled);
  if (!status.ok()) return status;

  struct Lag {
    double sum = 0;
    uint32_t pairs = 0;
  };
  std::map<int64_t, Lag> lags;
  const double n = static_cast<double>(numel);
  for (size_t i = 0; i < steps; ++i) {
    for (size_t j = i + 1; j < steps; ++j) {
      // Rounding can leave a tiny negative for (nearly) identical steps.
      const double sq = std::max(
          0.0, total.at(i, i) + total.at(j, j) - 2 * total.at(i, j));
      Lag& lag = lags[options.steps[j] - options.steps[i]];
      lag.sum += numel ? sq / n : 0.0;
      ++lag.pairs;
    }
  }
  for (const auto& [tau, lag] : lags) {
    MsdPoint p;
    p.step = tau;
    p.msd = lag.sum / lag.pairs;
    p.n = numel;
    p.pairs = lag.pairs;
    if (!point(p)) return absl::CancelledError("the client stopped reading");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunMsdSweep(CheckpointStore& store, ThreadPool& pool,
                         const MsdSweepOptions& options,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled) {
  using Mode = MsdSweepOptions::Mode;
  if (options.steps.empty()) return absl::InvalidArgumentError("no steps");
  auto located = store.LocateAll(options.model, options.steps);
  if (!located.ok()) return located.status();
  auto locations =
      std::make_shared<std::vector<CheckpointLocation>>(*std::move(located));
  const std::string tensor = options.tensor;
  const CheckpointStore* store_ptr = &store;

  // Every step's header first (no data is read): a missing tensor or a
  // change of shape fails before any point is sent.
  std::vector<int64_t> first_shape;
  for (const auto& where : *locations) {
    auto handle = OpenFloatTensor(store, where, tensor);
    if (!handle.ok()) return handle.status();
    if (&where == &locations->front()) {
      first_shape = handle->info->shape;
    } else if (handle->info->shape != first_shape) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tensor \"", tensor, "\" of ", where.model.Name(), " has shape ",
          ShapeText(handle->info->shape), " at step ", where.step, " but ",
          ShapeText(first_shape), " at step ", options.steps.front(),
          "; MSD needs one shape"));
    }
  }

  if (options.mode == Mode::kLag) {
    if (options.steps.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the lag mode needs at least 2 steps; selected ",
          FormatSteps(options.steps)));
    }
    return RunLagSweep(store, pool, *locations, options, point, cancelled);
  }

  if (options.mode == Mode::kReference) {
    size_t reference_index = options.steps.size();
    for (size_t i = 0; i < options.steps.size(); ++i) {
      if (options.steps[i] == options.reference_step) reference_index = i;
    }
    if (reference_index == options.steps.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("reference step ", options.reference_step,
                       " is not among the selected steps (",
                       FormatSteps(options.steps), ")"));
    }
    auto handle = OpenFloatTensor(store, (*locations)[reference_index], tensor);
    if (!handle.ok()) return handle.status();
    auto values = ReadValues(*handle);
    if (!values.ok()) return values.status();
    // Shared, read only, by the tasks.
    auto reference = std::make_shared<const TensorValues>(*std::move(values));
    const int64_t t0 = options.reference_step;
    const uint64_t n = handle->info->numel();
    return RunOrdered<MsdPoint>(
        pool, locations->size(), {.window = std::max<size_t>(2, pool.size())},
        [store_ptr, locations, tensor, reference, reference_index, t0, n](
            size_t i, const CancelFlag* cancel) -> absl::StatusOr<MsdPoint> {
          if (i == reference_index) {
            MsdPoint self;
            self.step = self.from_step = t0;
            self.n = n;
            return self;
          }
          auto d = Displacement(*store_ptr, (*locations)[i], tensor, *reference,
                                t0, /*also=*/nullptr,
                                /*into=*/nullptr, cancel);
          if (!d.ok()) return d.status();
          return d->point;
        },
        [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
  }

  // Consecutive: one step after another (window 1 keeps them in order),
  // each compared with the previous step and the one before it; the bytes
  // of the one before are recycled to hold the current step.
  auto first = OpenFloatTensor(store, locations->front(), tensor);
  if (!first.ok()) return first.status();
  auto values = ReadValues(*first);
  if (!values.ok()) return values.status();
  struct Window {
    TensorValues previous, before;
  };
  auto window = std::make_shared<Window>();
  window->previous = *std::move(values);
  MsdPoint start;
  start.step = start.from_step = options.steps.front();
  start.n = first->info->numel();
  if (!point(start)) return absl::CancelledError("the client stopped reading");
  auto steps = std::make_shared<std::vector<int64_t>>(options.steps);
  return RunOrdered<MsdPoint>(
      pool, locations->size() - 1, {.window = 1},
      [store_ptr, locations, tensor, window, steps](
          size_t i, const CancelFlag* cancel) -> absl::StatusOr<MsdPoint> {
        const bool have_before = i >= 1;
        auto d = Displacement(*store_ptr, (*locations)[i + 1], tensor,
                              window->previous, (*steps)[i],
                              have_before ? &window->before : nullptr,
                              &window->before, cancel);
        if (!d.ok()) return d.status();
        std::swap(window->previous, window->before);
        MsdPoint p = d->point;
        p.rate = p.msd / static_cast<double>(p.step - p.from_step);
        if (have_before) {
          p.msd_before_previous = d->msd_also;
          p.before_previous_step = (*steps)[i - 1];
        }
        return p;
      },
      [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
}

}  // namespace garden
