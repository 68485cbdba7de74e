#include "server/engine/msd_sweep.h"

#include <sys/mman.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/naming/step_spec.h"
#include "common/stats/displacement.h"
#include "common/stats/histogram.h"
#include "server/engine/chunk_reader.h"
#include "server/engine/ordered_tasks.h"

namespace garden {
namespace {

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
  DType dtype = DType::kF32;
  LargeBuffer bytes;  // uninitialised until read
  size_t size = 0;
};

absl::StatusOr<TensorValues> AllocateValues(const TensorInfo& info) {
  TensorValues values;
  values.dtype = info.dtype;
  values.size = info.num_bytes();
  ASSIGN_OR_RETURN(values.bytes, AllocateLarge(values.size));
  return values;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Every step's tensor, checked to be a float tensor of the first step's
// shape before any data is read.
absl::StatusOr<std::vector<TensorHandle>> OpenAll(const StepTensors& steps) {
  std::vector<TensorHandle> handles;
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSIGN_OR_RETURN(TensorHandle handle, steps.OpenFloat(i, "MSD needs"));
    const TensorInfo& info = *handle.info;
    const CheckpointLocation& where = steps.location(i);
    if (i > 0 && info.shape != handles.front().info->shape) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tensor \"", steps.tensor(), "\" of ", where.model.Name(),
          " has shape ", ShapeText(info.shape), " at step ", where.step,
          " but ", ShapeText(handles.front().info->shape), " at step ",
          steps.step(0), "; MSD needs one shape"));
    }
    handles.push_back(std::move(handle));
  }
  return handles;
}

absl::StatusOr<TensorValues> ReadValues(const TensorHandle& handle) {
  ASSIGN_OR_RETURN(TensorValues values, AllocateValues(*handle.info));
  if (values.size == 0) return values;
  // The whole tensor in one read, straight into place.
  RETURN_IF_ERROR(handle.file->ReadChunks(
      *handle.info, absl::MakeSpan(values.bytes.get(), values.size),
      [](absl::Span<const uint8_t>) { return absl::OkStatus(); }));
  return values;
}

// Sum of squared differences of a chunk of `count` elements with the same
// elements of `other`, starting at element `offset`.
double ChunkDistance(absl::Span<const uint8_t> chunk, DType dtype,
                     const TensorValues& other, size_t offset, size_t count) {
  return SquaredDistance(chunk.data(), dtype,
                         other.bytes.get() + offset * DTypeSize(other.dtype),
                         other.dtype, count);
}

// MSD of one step against `reference`, and against `also` when given. With
// `into` (consecutive sweeps) the step's bytes are kept there; `into` may be
// `also`, whose chunk is compared before it is overwritten.
struct Distances {
  MsdPoint point;
  double msd_also = std::numeric_limits<double>::quiet_NaN();
};

absl::StatusOr<Distances> Displacement(const StepTensors& steps, size_t i,
                                       const TensorValues& reference,
                                       int64_t reference_step,
                                       const TensorValues* also,
                                       TensorValues* into,
                                       const CancelFlag* cancel) {
  ASSIGN_OR_RETURN(const TensorHandle handle, steps.Open(i));
  const TensorInfo& info = *handle.info;
  // `into` is reused when it already holds this dtype and size; otherwise
  // the step's bytes go to a new buffer, moved into `into` at the end.
  TensorValues fresh;
  uint8_t* keep = nullptr;
  if (into != nullptr) {
    if (into->bytes && into->dtype == info.dtype &&
        into->size == info.num_bytes()) {
      keep = into->bytes.get();
    } else {
      ASSIGN_OR_RETURN(fresh, AllocateValues(info));
      keep = fresh.bytes.get();
    }
  }
  const size_t item = DTypeSize(info.dtype);
  size_t offset = 0;  // elements
  double sum = 0, sum_also = 0;
  RETURN_IF_ERROR(ReadTensorChunks(
      handle, cancel, "MSD sweep",
      [&](absl::Span<const uint8_t> chunk) -> absl::Status {
        const size_t count = chunk.size() / item;
        sum += ChunkDistance(chunk, info.dtype, reference, offset, count);
        if (also != nullptr) {
          sum_also += ChunkDistance(chunk, info.dtype, *also, offset, count);
        }
        if (keep != nullptr) {
          std::memcpy(keep + offset * item, chunk.data(), chunk.size());
        }
        offset += count;
        return absl::OkStatus();
      }));
  if (fresh.bytes) *into = std::move(fresh);
  Distances out;
  out.point.step = steps.step(i);
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
    const size_t m =
        static_cast<size_t>(std::min<uint64_t>(block, numel - start));
    for (size_t i = 0; i < steps; ++i) {
      const TensorInfo& info = *handles[i].info;
      const size_t item = DTypeSize(info.dtype);
      RETURN_IF_ERROR(handles[i].file->ReadElements(
          info, start, absl::MakeSpan(bytes.data(), m * item)));
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

absl::Status RunLagSweep(ThreadPool& pool, const StepTensors& steps,
                         std::vector<TensorHandle> opened,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled) {
  if (steps.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("the lag mode needs at least 2 steps; selected ",
                     FormatSteps(steps.steps())));
  }
  auto handles =
      std::make_shared<const std::vector<TensorHandle>>(std::move(opened));
  const size_t count = handles->size();
  const uint64_t numel = handles->front().info->numel();
  const size_t block = std::max<size_t>(1024, kLagBlockValues / count);
  const size_t blocks = static_cast<size_t>((numel + block - 1) / block);
  const size_t workers = std::max<size_t>(1, std::min(pool.size(), blocks));
  // Partial matrices are added in worker order: the same sums for the same
  // thread count, run after run.
  Gram total{count, std::vector<double>(count * count, 0.0)};
  RETURN_IF_ERROR(RunOrdered<Gram>(
      pool, workers, {.window = workers},
      [handles, block, workers](size_t w, const CancelFlag* cancel) {
        return LagGram(*handles, block, w, workers, cancel);
      },
      [&](size_t, Gram& part) {
        for (size_t k = 0; k < total.g.size(); ++k) total.g[k] += part.g[k];
        return true;
      },
      cancelled));

  struct Lag {
    double sum = 0;
    uint32_t pairs = 0;
  };
  std::map<int64_t, Lag> lags;
  const double n = static_cast<double>(numel);
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = i + 1; j < count; ++j) {
      // Rounding can leave a tiny negative for (nearly) identical steps.
      const double sq = std::max(
          0.0, total.at(i, i) + total.at(j, j) - 2 * total.at(i, j));
      Lag& lag = lags[steps.step(j) - steps.step(i)];
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

// Every step against t0, in parallel.
absl::Status RunReferenceSweep(ThreadPool& pool,
                               std::shared_ptr<const StepTensors> steps,
                               int64_t t0,
                               const std::function<bool(const MsdPoint&)>& point,
                               const std::function<bool()>& cancelled) {
  size_t reference_index = steps->size();
  for (size_t i = 0; i < steps->size(); ++i) {
    if (steps->step(i) == t0) reference_index = i;
  }
  if (reference_index == steps->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference step ", t0, " is not among the selected steps (",
                     FormatSteps(steps->steps()), ")"));
  }
  ASSIGN_OR_RETURN(const TensorHandle handle, steps->Open(reference_index));
  ASSIGN_OR_RETURN(TensorValues values, ReadValues(handle));
  // Shared, read only, by the tasks.
  auto reference = std::make_shared<const TensorValues>(std::move(values));
  const uint64_t n = handle.info->numel();
  return RunOrdered<MsdPoint>(
      pool, steps->size(), {.window = std::max<size_t>(2, pool.size())},
      [steps, reference, reference_index, t0, n](
          size_t i, const CancelFlag* cancel) -> absl::StatusOr<MsdPoint> {
        if (i == reference_index) {
          MsdPoint self;
          self.step = self.from_step = t0;
          self.n = n;
          return self;
        }
        ASSIGN_OR_RETURN(Distances d,
                         Displacement(*steps, i, *reference, t0,
                                      /*also=*/nullptr, /*into=*/nullptr,
                                      cancel));
        return d.point;
      },
      [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
}

// One step after another (window 1 keeps them in order), each compared with
// the previous step and the one before it; the bytes of the one before are
// recycled to hold the current step.
absl::Status RunConsecutiveSweep(
    ThreadPool& pool, std::shared_ptr<const StepTensors> steps,
    const std::function<bool(const MsdPoint&)>& point,
    const std::function<bool()>& cancelled) {
  ASSIGN_OR_RETURN(const TensorHandle first, steps->Open(0));
  ASSIGN_OR_RETURN(TensorValues values, ReadValues(first));
  struct Window {
    TensorValues previous, before;
  };
  auto window = std::make_shared<Window>();
  window->previous = std::move(values);
  MsdPoint start;
  start.step = start.from_step = steps->step(0);
  start.n = first.info->numel();
  if (!point(start)) return absl::CancelledError("the client stopped reading");
  return RunOrdered<MsdPoint>(
      pool, steps->size() - 1, {.window = 1},
      [steps, window](size_t i,
                      const CancelFlag* cancel) -> absl::StatusOr<MsdPoint> {
        const bool have_before = i >= 1;
        ASSIGN_OR_RETURN(
            Distances d,
            Displacement(*steps, i + 1, window->previous, steps->step(i),
                         have_before ? &window->before : nullptr,
                         &window->before, cancel));
        std::swap(window->previous, window->before);
        MsdPoint p = d.point;
        p.rate = p.msd / static_cast<double>(p.step - p.from_step);
        if (have_before) {
          p.msd_before_previous = d.msd_also;
          p.before_previous_step = steps->step(i - 1);
        }
        return p;
      },
      [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
}

}  // namespace

absl::Status RunMsdSweep(ThreadPool& pool, const MsdSweepOptions& options,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled) {
  using Mode = MsdSweepOptions::Mode;
  const std::shared_ptr<const StepTensors>& steps = options.steps;
  if (steps->size() == 0) return absl::InvalidArgumentError("no steps");
  // Every step's header first (no data is read): a missing tensor or a
  // change of shape fails before any point is sent.
  ASSIGN_OR_RETURN(std::vector<TensorHandle> handles, OpenAll(*steps));
  switch (options.mode) {
    case Mode::kLag:
      return RunLagSweep(pool, *steps, std::move(handles), point, cancelled);
    case Mode::kReference:
      return RunReferenceSweep(pool, steps, options.reference_step, point,
                               cancelled);
    case Mode::kConsecutive:
      return RunConsecutiveSweep(pool, steps, point, cancelled);
  }
  return absl::InvalidArgumentError("unknown MSD mode");
}

}  // namespace garden
