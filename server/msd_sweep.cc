#include "server/msd_sweep.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/absl_compat.h"
#include "common/histogram.h"
#include "common/step_spec.h"
#include "server/ordered_tasks.h"

namespace garden {
namespace {

// Streamed through per worker thread: 4 MiB chunks, decoded to doubles.
constexpr size_t kChunkBytes = size_t{4} << 20;

// A tensor's values held exactly: float covers F16, BF16 and F32.
struct TensorValues {
  std::vector<int64_t> shape;
  std::vector<float> as_float;
  std::vector<double> as_double;  // F64 tensors only
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

// Streams one tensor, calling fn(offset, values, count) on decoded chunks.
template <typename Fn>
absl::Status ForEachChunk(const TensorHandle& handle, const CancelFlag* cancel,
                          Fn&& fn) {
  thread_local std::vector<uint8_t> buffer(kChunkBytes);
  thread_local std::vector<double> decoded(kChunkBytes / 2);
  const TensorInfo& info = *handle.info;
  const size_t item = DTypeSize(info.dtype);
  size_t offset = 0;
  return handle.file->ReadChunks(
      info, absl::MakeSpan(buffer),
      [&](absl::Span<const uint8_t> chunk) -> absl::Status {
        if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
          return absl::CancelledError("MSD sweep cancelled");
        }
        const size_t count = chunk.size() / item;
        DecodeInto(chunk.data(), count, info.dtype, decoded.data());
        fn(offset, decoded.data(), count);
        offset += count;
        return absl::OkStatus();
      });
}

absl::StatusOr<TensorValues> ReadValues(const TensorHandle& handle,
                                        const CancelFlag* cancel) {
  TensorValues values;
  values.shape = handle.info->shape;
  const size_t n = handle.info->numel();
  const bool wide = handle.info->dtype == DType::kF64;
  (wide ? values.as_double.resize(n) : values.as_float.resize(n));
  auto status = ForEachChunk(
      handle, cancel, [&](size_t offset, const double* x, size_t count) {
        if (wide) {
          std::copy(x, x + count, values.as_double.begin() + offset);
        } else {
          // Exact: every F16, BF16 and F32 value is a float.
          for (size_t i = 0; i < count; ++i) {
            values.as_float[offset + i] = static_cast<float>(x[i]);
          }
        }
      });
  if (!status.ok()) return status;
  return values;
}

// Sum of squared differences between decoded values and `reference`, with
// four partial sums; with `replace`, the values then overwrite `reference`.
template <typename T>
double SquaredDistance(const double* x, size_t count, const T* reference) {
  double sum[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    for (size_t l = 0; l < 4; ++l) {
      const double d = x[i + l] - static_cast<double>(reference[i + l]);
      sum[l] += d * d;
    }
  }
  for (; i < count; ++i) {
    const double d = x[i] - static_cast<double>(reference[i]);
    sum[0] += d * d;
  }
  return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

template <typename T>
double SquaredDistance(const double* x, size_t count, T* reference,
                       bool replace) {
  const double sum =
      SquaredDistance(x, count, static_cast<const T*>(reference));
  if (replace) {
    for (size_t k = 0; k < count; ++k) reference[k] = static_cast<T>(x[k]);
  }
  return sum;
}

// MSD of one step against `reference` (same shape required). With
// `replace` (the same object as `reference`, consecutive sweeps only) the
// step's values then take the reference's place.
absl::StatusOr<MsdPoint> Displacement(
    const CheckpointStore& store, const CheckpointLocation& where,
    const std::string& tensor, const TensorValues& reference,
    int64_t reference_step, TensorValues* replace, const CancelFlag* cancel) {
  auto handle = OpenFloatTensor(store, where, tensor);
  if (!handle.ok()) return handle.status();
  if (handle->info->shape != reference.shape) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor \"", tensor, "\" of ", where.model.Name(),
                     " has shape ", ShapeText(handle->info->shape), " at step ",
                     where.step, " but ", ShapeText(reference.shape),
                     " at step ", reference_step, "; MSD needs one shape"));
  }
  if (replace != nullptr && handle->info->dtype == DType::kF64 &&
      replace->as_double.empty()) {
    // An F64 step after narrower ones: keep its values exactly from now on.
    replace->as_double.assign(replace->as_float.begin(),
                              replace->as_float.end());
    replace->as_float.clear();
    replace->as_float.shrink_to_fit();
  }
  double sum = 0;
  auto status = ForEachChunk(
      *handle, cancel, [&](size_t offset, const double* x, size_t count) {
        if (replace != nullptr) {
          sum += replace->as_double.empty()
                     ? SquaredDistance(x, count,
                                       replace->as_float.data() + offset, true)
                     : SquaredDistance(
                           x, count, replace->as_double.data() + offset, true);
        } else {
          sum += reference.as_double.empty()
                     ? SquaredDistance(x, count,
                                       reference.as_float.data() + offset)
                     : SquaredDistance(x, count,
                                       reference.as_double.data() + offset);
        }
      });
  if (!status.ok()) return status;
  MsdPoint point;
  point.step = where.step;
  point.from_step = reference_step;
  point.n = handle->info->numel();
  point.msd = point.n ? sum / static_cast<double>(point.n) : 0.0;
  return point;
}

}  // namespace

absl::Status RunMsdSweep(CheckpointStore& store, ThreadPool& pool,
                         const MsdSweepOptions& options,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled) {
  using Mode = MsdSweepOptions::Mode;
  if (options.steps.empty()) return absl::InvalidArgumentError("no steps");
  auto locations = std::make_shared<std::vector<CheckpointLocation>>();
  for (int64_t step : options.steps) {
    auto where = store.Locate(options.model, step);
    if (!where.ok()) return where.status();
    locations->push_back(*where);
  }
  const std::string tensor = options.tensor;
  const CheckpointStore* store_ptr = &store;
  CancelFlag never{false};

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
    auto values = ReadValues(*handle, &never);
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
            return MsdPoint{.step = t0, .msd = 0, .from_step = t0, .n = n};
          }
          return Displacement(*store_ptr, (*locations)[i], tensor, *reference,
                              t0, /*replace=*/nullptr, cancel);
        },
        [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
  }

  // Consecutive: one step after another, each compared with the previous
  // one, whose values it then replaces (window 1 keeps them in order).
  auto first = OpenFloatTensor(store, locations->front(), tensor);
  if (!first.ok()) return first.status();
  auto values = ReadValues(*first, &never);
  if (!values.ok()) return values.status();
  auto previous = std::make_shared<TensorValues>(*std::move(values));
  const MsdPoint start{.step = options.steps.front(),
                       .msd = 0,
                       .from_step = options.steps.front(),
                       .n = first->info->numel()};
  if (!point(start)) return absl::CancelledError("the client stopped reading");
  auto steps = std::make_shared<std::vector<int64_t>>(options.steps);
  return RunOrdered<MsdPoint>(
      pool, locations->size() - 1, {.window = 1},
      [store_ptr, locations, tensor, previous, steps](
          size_t i, const CancelFlag* cancel) -> absl::StatusOr<MsdPoint> {
        auto p = Displacement(*store_ptr, (*locations)[i + 1], tensor,
                              *previous, (*steps)[i], previous.get(), cancel);
        if (!p.ok()) return p.status();
        p->rate = p->msd / static_cast<double>(p->step - p->from_step);
        return p;
      },
      [&](size_t, MsdPoint& p) { return point(p); }, cancelled);
}

}  // namespace garden
