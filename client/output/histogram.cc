#include "client/output/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/csv.h"
#include "client/output/json.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

nlohmann::json FrameJson(const pb::HistogramFrame& f) {
  nlohmann::json j;
  j["step"] = f.step();
  j["lo"] = JsonNumber(f.lo());
  j["hi"] = JsonNumber(f.hi());
  j["counts"] = std::vector<uint64_t>(f.counts().begin(), f.counts().end());
  j["underflow"] = f.underflow();
  j["overflow"] = f.overflow();
  j["n"] = f.n();
  j["mean"] = JsonNumber(f.mean());
  j["std"] = JsonNumber(f.std());
  j["min"] = JsonNumber(f.min());
  j["max"] = JsonNumber(f.max());
  j["skewness"] = JsonNumber(f.skewness());
  j["kurtosis"] = JsonNumber(f.kurtosis());
  j["nan"] = f.nan();
  j["posinf"] = f.posinf();
  j["neginf"] = f.neginf();
  j["dtype"] = f.dtype();
  j["shape"] = std::vector<int64_t>(f.shape().begin(), f.shape().end());
  return j;
}

std::string CsvHeader(const pb::HistogramFrame& first) {
  std::string header =
      "step,lo,hi,n,mean,std,min,max,skewness,kurtosis,underflow,overflow,"
      "nan,posinf,neginf";
  for (int i = 0; i < first.counts_size(); ++i) {
    absl::StrAppend(&header, ",bin", i);
  }
  return header + "\n";
}

std::string CsvRow(const pb::HistogramFrame& f) {
  std::string row = absl::StrCat(
      f.step(), ",", CsvNumber(f.lo()), ",", CsvNumber(f.hi()), ",", f.n(),
      ",", CsvNumber(f.mean()), ",", CsvNumber(f.std()), ",",
      CsvNumber(f.min()), ",", CsvNumber(f.max()), ",",
      CsvNumber(f.skewness()), ",", CsvNumber(f.kurtosis()), ",",
      f.underflow(), ",", f.overflow(), ",", f.nan(), ",", f.posinf(), ",",
      f.neginf());
  for (uint64_t c : f.counts()) absl::StrAppend(&row, ",", c);
  return row + "\n";
}

// The counts as block characters, at most 64 columns: wider histograms are
// summed into groups.
std::string Sparkline(const pb::HistogramFrame& f) {
  static const char* kBlocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const int bins = f.counts_size();
  const int columns = std::min(bins, 64);
  std::vector<uint64_t> grouped(columns, 0);
  for (int i = 0; i < bins; ++i) {
    grouped[static_cast<int64_t>(i) * columns / bins] += f.counts(i);
  }
  const uint64_t peak = *std::max_element(grouped.begin(), grouped.end());
  std::string out;
  for (uint64_t c : grouped) {
    int level = peak ? static_cast<int>(std::ceil(8.0 * c / peak)) : 0;
    out += kBlocks[std::clamp(level, 0, 8)];
  }
  return out;
}

std::string TableHeader() {
  return absl::StrFormat("%8s %11s %11s %11s %11s %11s %9s %9s  %s\n", "STEP",
                         "N", "MEAN", "STD", "MIN", "MAX", "SKEW", "KURT",
                         "HISTOGRAM");
}

std::string TableRow(const pb::HistogramFrame& f) {
  std::string row = absl::StrFormat(
      "%8d %11d %11.4g %11.4g %11.4g %11.4g %9.3f %9.3f  %s", f.step(), f.n(),
      f.mean(), f.std(), f.min(), f.max(), f.skewness(), f.kurtosis(),
      Sparkline(f));
  if (f.underflow() || f.overflow() || f.nan()) {
    absl::StrAppendFormat(&row, "  (under %d, over %d, nan %d)", f.underflow(),
                          f.overflow(), f.nan());
  }
  return row + "\n";
}

}  // namespace

void HistogramRenderer::Frame(const pb::HistogramFrame& frame,
                              const std::string& model) {
  nlohmann::json record = FrameJson(frame);
  if (label_models_) record["model"] = model;
  records_.Print(std::move(record), [&] {
    return format_ == Format::kCsv
               ? RecordText{CsvHeader(frame), CsvRow(frame)}
               : RecordText{TableHeader(), TableRow(frame)};
  });
}

}  // namespace garden::client
