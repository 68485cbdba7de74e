// Histogram frames (StreamHistograms), each printed as it arrives.
#ifndef GARDEN_CLIENT_OUTPUT_HISTOGRAM_H_
#define GARDEN_CLIENT_OUTPUT_HISTOGRAM_H_

#include <ostream>
#include <string>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// jsonl: one object per frame with step, lo, hi, counts, underflow,
// overflow, n, mean, std, min, max, skewness, kurtosis, nan, posinf,
// neginf, dtype, shape (undefined values null), plus "model" when the
// frames of several models (--compare) are interleaved.
// csv: a header row (its bin0..binN-1 from the first frame), then per frame
// the scalars and the counts; numbers as CsvNumber writes them.
// table: a header, then per frame its statistics and the histogram drawn
// as a row of block characters.
class HistogramRenderer {
 public:
  // `format` is jsonl, csv or table.
  HistogramRenderer(Format format, bool label_models, std::ostream& out)
      : format_(format), label_models_(label_models), records_(format, out) {}

  // Prints `frame` of `model` and flushes.
  void Frame(const garden::v1::HistogramFrame& frame,
             const std::string& model);

 private:
  Format format_;
  bool label_models_;
  RecordPrinter records_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_HISTOGRAM_H_
