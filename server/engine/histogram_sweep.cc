#include "server/engine/histogram_sweep.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "server/engine/ordered_tasks.h"

namespace garden {
namespace {

// What one read of a step's tensor yields.
struct StepScan {
  int64_t step = 0;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  ValueSummary summary;
  std::optional<Histogram> histogram;  // when a binner was given
  std::optional<CodeCounts> counts;    // 16-bit tensors, when asked to keep
};

// Tensors are streamed through one buffer per worker thread, sized to stay
// in the core's L2 cache between the copy and the scan (bench/scan_bench).
constexpr size_t kChunkBytes = size_t{4} << 20;

absl::Span<uint8_t> ChunkBuffer() {
  thread_local std::vector<uint8_t> buffer(kChunkBytes);
  return absl::MakeSpan(buffer);
}

// Feeds a tensor's bytes to a CodeCounter or ValueScanner.
template <typename Sink>
absl::Status StreamInto(const SafetensorsFile& file, const TensorInfo& info,
                        Sink& sink, const CancelFlag* cancel) {
  return file.ReadChunks(
      info, ChunkBuffer(),
      [&](absl::Span<const uint8_t> chunk) { return sink.Add(chunk, cancel); });
}

bool IsSixteenBit(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16;
}

absl::StatusOr<StepScan> ScanStep(const CheckpointStore& store,
                                  const CheckpointLocation& where,
                                  const std::string& tensor,
                                  const Binner* binner, bool keep_counts,
                                  const CancelFlag* cancel) {
  auto handle = store.OpenTensor(where, tensor);
  if (!handle.ok()) return handle.status();
  const TensorInfo& info = *handle->info;
  if (!IsAnalysableFloat(info.dtype)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor \"", tensor, "\" of ", where.model.Name(), " step ", where.step,
        " has dtype ", ToAbsl(DTypeName(info.dtype)),
        "; histograms need F64, F32, F16 or BF16"));
  }
  StepScan scan;
  scan.step = where.step;
  scan.dtype = info.dtype;
  scan.shape = info.shape;
  const auto& file = *handle->file;
  if (IsSixteenBit(info.dtype)) {
    auto counter = CodeCounter::Create(info.dtype);
    if (!counter.ok()) return counter.status();
    if (auto s = StreamInto(file, info, *counter, cancel); !s.ok()) return s;
    CodeCounts counts = counter->Finish();
    scan.summary = counts.Summarize();
    if (binner != nullptr) scan.histogram = counts.Bin(*binner);
    if (keep_counts) scan.counts = std::move(counts);
  } else {
    auto scanner = ValueScanner::Create(info.dtype, binner);
    if (!scanner.ok()) return scanner.status();
    if (auto s = StreamInto(file, info, *scanner, cancel); !s.ok()) return s;
    ScanResult result = scanner->Finish();
    scan.summary = result.summary;
    scan.histogram = std::move(result.histogram);
  }
  return scan;
}

}  // namespace

absl::Status RunHistogramSweep(CheckpointStore& store, ThreadPool& pool,
                               const HistogramSweepOptions& options,
                               const HistogramSweepCallbacks& callbacks) {
  // Locate every step first: a missing one fails before any work is done.
  auto located = store.LocateAll(options.model, options.steps);
  if (!located.ok()) return located.status();
  auto locations =
      std::make_shared<std::vector<CheckpointLocation>>(*std::move(located));
  const size_t total = locations->size();
  const OrderedTasksOptions ordered{.window =
                                        std::max<size_t>(2, pool.size() * 2)};
  const std::string tensor = options.tensor;
  CheckpointStore* store_ptr = &store;

  auto emit = [&](const StepScan& scan, const Histogram& histogram) {
    StepHistogram frame;
    frame.step = scan.step;
    frame.dtype = scan.dtype;
    frame.shape = scan.shape;
    frame.histogram = histogram;
    frame.summary = scan.summary;
    return callbacks.frame(frame);
  };

  if (options.range.has_value()) {
    auto binner = Binner::Create(options.range->first, options.range->second,
                                 options.bins);
    if (!binner.ok()) return binner.status();
    auto shared_binner = std::make_shared<const Binner>(*binner);
    return RunOrdered<StepScan>(
        pool, total, ordered,
        [store_ptr, locations, tensor, shared_binner](
            size_t i, const CancelFlag* cancel) {
          return ScanStep(*store_ptr, (*locations)[i], tensor,
                          shared_binner.get(), false, cancel);
        },
        [&](size_t, StepScan& scan) { return emit(scan, *scan.histogram); },
        callbacks.cancelled);
  }

  // Automatic range: scan every step for its extremes, keeping the value
  // counts of 16-bit tensors so they need no second read.
  // Bad bin counts fail before any step is read.
  if (auto s = Binner::Create(0, 1, options.bins); !s.ok()) return s.status();
  std::vector<StepScan> scans(total);
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  auto status = RunOrdered<StepScan>(
      pool, total, ordered,
      [store_ptr, locations, tensor](size_t i, const CancelFlag* cancel) {
        return ScanStep(*store_ptr, (*locations)[i], tensor, nullptr, true,
                        cancel);
      },
      [&](size_t i, StepScan& scan) {
        lo = std::min(lo, scan.summary.min);
        hi = std::max(hi, scan.summary.max);
        scans[i] = std::move(scan);
        return !callbacks.progress ||
               callbacks.progress(static_cast<uint32_t>(i + 1),
                                  static_cast<uint32_t>(total));
      },
      callbacks.cancelled);
  if (!status.ok()) return status;
  // One binner for all steps, or one per step over its own extremes.
  auto binners = std::make_shared<std::vector<Binner>>();
  for (size_t i = 0; i < (options.per_step_range ? total : 1); ++i) {
    const auto [range_lo, range_hi] =
        options.per_step_range ? AutoRange(scans[i].summary.min,
                                           scans[i].summary.max, options.bins)
                               : AutoRange(lo, hi, options.bins);
    auto binner = Binner::Create(range_lo, range_hi, options.bins);
    if (!binner.ok()) return binner.status();
    binners->push_back(*std::move(binner));
  }
  auto kept = std::make_shared<std::vector<StepScan>>(std::move(scans));
  return RunOrdered<Histogram>(
      pool, total, ordered,
      [store_ptr, locations, tensor, binners, kept](
          size_t i, const CancelFlag* cancel) -> absl::StatusOr<Histogram> {
        const Binner& binner = (*binners)[binners->size() == 1 ? 0 : i];
        const StepScan& scan = (*kept)[i];
        if (scan.counts.has_value()) return scan.counts->Bin(binner);
        auto again = ScanStep(*store_ptr, (*locations)[i], tensor, &binner,
                              false, cancel);
        if (!again.ok()) return again.status();
        return std::move(*again->histogram);
      },
      [&](size_t i, Histogram& histogram) {
        const bool more = emit((*kept)[i], histogram);
        (*kept)[i].counts.reset();  // frees the table once it has been sent
        return more;
      },
      callbacks.cancelled);
}

}  // namespace garden
