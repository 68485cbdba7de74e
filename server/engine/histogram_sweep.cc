#include "server/engine/histogram_sweep.h"

#include <chrono>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/base/transfer_meter.h"
#include "server/engine/chunk_reader.h"
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

// Feeds a tensor's bytes to a CodeCounter or ValueScanner.
template <typename Sink>
absl::Status StreamInto(const TensorHandle& tensor, Sink& sink,
                        const CancelFlag* cancel) {
  return ReadTensorChunks(
      tensor, cancel, "histogram sweep",
      [&](absl::Span<const uint8_t> chunk) { return sink.Add(chunk, cancel); });
}

bool IsSixteenBit(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16;
}

absl::StatusOr<StepScan> ScanStep(const StepTensors& steps, size_t i,
                                  const Binner* binner, bool keep_counts,
                                  const CancelFlag* cancel) {
  ASSIGN_OR_RETURN(const TensorHandle tensor,
                   steps.OpenFloat(i, "histograms need"));
  const TensorInfo& info = *tensor.info;
  StepScan scan;
  scan.step = steps.step(i);
  scan.dtype = info.dtype;
  scan.shape = info.shape;
  if (IsSixteenBit(info.dtype)) {
    ASSIGN_OR_RETURN(CodeCounter counter, CodeCounter::Create(info.dtype));
    RETURN_IF_ERROR(StreamInto(tensor, counter, cancel));
    CodeCounts counts = counter.Finish();
    scan.summary = counts.Summarize();
    if (binner != nullptr) scan.histogram = counts.Bin(*binner);
    if (keep_counts) scan.counts = std::move(counts);
  } else {
    ASSIGN_OR_RETURN(ValueScanner scanner,
                     ValueScanner::Create(info.dtype, binner));
    RETURN_IF_ERROR(StreamInto(tensor, scanner, cancel));
    ScanResult result = scanner.Finish();
    scan.summary = result.summary;
    scan.histogram = std::move(result.histogram);
  }
  return scan;
}

StepHistogram Frame(const StepScan& scan, const Histogram& histogram) {
  StepHistogram frame;
  frame.step = scan.step;
  frame.dtype = scan.dtype;
  frame.shape = scan.shape;
  frame.histogram = histogram;
  frame.summary = scan.summary;
  return frame;
}

// Says when a progress message with new transfer bytes is worth sending:
// bytes arrived for this request since the last one, 250 ms ago or more.
class ProgressTicker {
 public:
  bool Due() {
    const TransferMeter* meter = CurrentTransferMeter();
    if (meter == nullptr) return false;
    const uint64_t received = meter->received.load();
    const auto now = std::chrono::steady_clock::now();
    if (received == last_bytes_ || now - last_ < std::chrono::milliseconds(250)) {
      return false;
    }
    last_bytes_ = received;
    last_ = now;
    return true;
  }

 private:
  uint64_t last_bytes_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

OrderedTasksOptions Window(const ThreadPool& pool) {
  return {.window = std::max<size_t>(2, pool.size() * 2)};
}

// One read per step, binned over the given range.
absl::Status SweepFixedRange(ThreadPool& pool,
                             const HistogramSweepOptions& options,
                             const HistogramSweepCallbacks& callbacks) {
  ASSIGN_OR_RETURN(Binner binner,
                   Binner::Create(options.range->first, options.range->second,
                                  options.bins));
  auto shared_binner = std::make_shared<const Binner>(std::move(binner));
  std::shared_ptr<const StepTensors> steps = options.steps;
  return RunOrdered<StepScan>(
      pool, steps->size(), Window(pool),
      [steps, shared_binner](size_t i, const CancelFlag* cancel) {
        return ScanStep(*steps, i, shared_binner.get(), false, cancel);
      },
      [&](size_t, StepScan& scan) {
        return callbacks.frame(Frame(scan, *scan.histogram));
      },
      callbacks.cancelled);
}

// One binner for all steps over their common extremes, or one per step over
// its own.
absl::StatusOr<std::vector<Binner>> AutoBinners(
    const std::vector<StepScan>& scans, const HistogramSweepOptions& options) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (const StepScan& scan : scans) {
    lo = std::min(lo, scan.summary.min);
    hi = std::max(hi, scan.summary.max);
  }
  std::vector<Binner> binners;
  for (size_t i = 0; i < (options.per_step_range ? scans.size() : 1); ++i) {
    const auto [range_lo, range_hi] =
        options.per_step_range ? AutoRange(scans[i].summary.min,
                                           scans[i].summary.max, options.bins)
                               : AutoRange(lo, hi, options.bins);
    ASSIGN_OR_RETURN(Binner binner,
                     Binner::Create(range_lo, range_hi, options.bins));
    binners.push_back(std::move(binner));
  }
  return binners;
}

// Automatic range: scan every step for its extremes, keeping the value
// counts of 16-bit tensors so they need no second read, then bin.
absl::Status SweepAutoRange(ThreadPool& pool,
                            const HistogramSweepOptions& options,
                            const HistogramSweepCallbacks& callbacks) {
  // Bad bin counts fail before any step is read.
  RETURN_IF_ERROR(Binner::Create(0, 1, options.bins).status());
  std::shared_ptr<const StepTensors> steps = options.steps;
  const size_t total = steps->size();
  std::vector<StepScan> scans(total);
  uint32_t done = 0;
  OrderedTasksOptions window = Window(pool);
  // While a step's bytes are still arriving from the Hub, the progress
  // message goes out again with them, at most every 250 ms.
  ProgressTicker ticker;
  if (callbacks.progress) {
    window.waiting = [&] {
      if (ticker.Due()) callbacks.progress(done, static_cast<uint32_t>(total));
    };
  }
  RETURN_IF_ERROR(RunOrdered<StepScan>(
      pool, total, window,
      [steps](size_t i, const CancelFlag* cancel) {
        return ScanStep(*steps, i, nullptr, true, cancel);
      },
      [&](size_t i, StepScan& scan) {
        scans[i] = std::move(scan);
        done = static_cast<uint32_t>(i + 1);
        return !callbacks.progress ||
               callbacks.progress(done, static_cast<uint32_t>(total));
      },
      callbacks.cancelled));
  ASSIGN_OR_RETURN(auto binners, AutoBinners(scans, options));
  auto shared_binners =
      std::make_shared<const std::vector<Binner>>(std::move(binners));
  auto kept = std::make_shared<std::vector<StepScan>>(std::move(scans));
  return RunOrdered<Histogram>(
      pool, total, Window(pool),
      [steps, shared_binners, kept](
          size_t i, const CancelFlag* cancel) -> absl::StatusOr<Histogram> {
        const auto& binners = *shared_binners;
        const Binner& binner = binners[binners.size() == 1 ? 0 : i];
        const StepScan& scan = (*kept)[i];
        if (scan.counts.has_value()) return scan.counts->Bin(binner);
        // (Kept as a StatusOr: unwrapping it into a local makes GCC 12 warn
        // of an uninitialised optional.)
        absl::StatusOr<StepScan> again =
            ScanStep(*steps, i, &binner, false, cancel);
        RETURN_IF_ERROR(again.status());
        return std::move(*again->histogram);
      },
      [&](size_t i, Histogram& histogram) {
        const bool more = callbacks.frame(Frame((*kept)[i], histogram));
        (*kept)[i].counts.reset();  // frees the table once it has been sent
        return more;
      },
      callbacks.cancelled);
}

}  // namespace

absl::Status RunHistogramSweep(ThreadPool& pool,
                               const HistogramSweepOptions& options,
                               const HistogramSweepCallbacks& callbacks) {
  if (options.range.has_value()) {
    return SweepFixedRange(pool, options, callbacks);
  }
  return SweepAutoRange(pool, options, callbacks);
}

}  // namespace garden
