#include "client/output/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

// JSON has no NaN or infinity: those become null.
nlohmann::json Number(double x) {
  if (!std::isfinite(x)) return nullptr;
  return x;
}

// Shortest text that reads back as the same double.
std::string Exact(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

std::string Shape(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string ModelName(const pb::ModelRef& m) {
  return absl::StrCat(m.suite(), "-", m.size(),
                      m.variant() == "deduped" ? "-deduped" : "");
}

std::string Sparkline(const pb::HistogramFrame& f) {
  static const char* kBlocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  // At most 64 columns: wider histograms are summed into groups.
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

}  // namespace

nlohmann::json FrameJson(const pb::HistogramFrame& f) {
  nlohmann::json j;
  j["step"] = f.step();
  j["lo"] = Number(f.lo());
  j["hi"] = Number(f.hi());
  j["counts"] = std::vector<uint64_t>(f.counts().begin(), f.counts().end());
  j["underflow"] = f.underflow();
  j["overflow"] = f.overflow();
  j["n"] = f.n();
  j["mean"] = Number(f.mean());
  j["std"] = Number(f.std());
  j["min"] = Number(f.min());
  j["max"] = Number(f.max());
  j["skewness"] = Number(f.skewness());
  j["kurtosis"] = Number(f.kurtosis());
  j["nan"] = f.nan();
  j["posinf"] = f.posinf();
  j["neginf"] = f.neginf();
  j["dtype"] = f.dtype();
  j["shape"] = std::vector<int64_t>(f.shape().begin(), f.shape().end());
  return j;
}

nlohmann::json ModelsJson(const pb::ListModelsResponse& response) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : response.models()) {
    models.push_back({
        {"suite", m.model().suite()},
        {"size", m.model().size()},
        {"variant", m.model().variant()},
        {"name", ModelName(m.model())},
        {"repo_id", m.repo_id()},
        {"layout", m.layout()},
        {"steps", std::vector<int64_t>(m.steps().begin(), m.steps().end())},
        {"missing_from_schedule",
         std::vector<int64_t>(m.missing_from_schedule().begin(),
                              m.missing_from_schedule().end())},
    });
  }
  return {{"models", models}};
}

nlohmann::json TensorsJson(const pb::ListTensorsResponse& response) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : response.tensors()) {
    tensors.push_back({
        {"name", t.name()},
        {"dtype", t.dtype()},
        {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
        {"num_bytes", t.num_bytes()},
        {"file", t.file()},
    });
  }
  const auto& ref = response.checkpoint();
  return {{"suite", ref.model().suite()},
          {"size", ref.model().size()},
          {"variant", ref.model().variant()},
          {"step", ref.step()},
          {"tensors", tensors}};
}

void PrintModelsTable(const pb::ListModelsResponse& response,
                      std::ostream& out) {
  out << absl::StrFormat("%-28s %-8s %-10s %6s  %-18s %s\n", "MODEL", "SIZE",
                         "VARIANT", "STEPS", "RANGE", "LAYOUT");
  for (const auto& m : response.models()) {
    const std::string range =
        m.steps().empty()
            ? "-"
            : absl::StrCat(m.steps(0), "..", m.steps(m.steps_size() - 1));
    out << absl::StrFormat("%-28s %-8s %-10s %6d  %-18s %s\n",
                           ModelName(m.model()), m.model().size(),
                           m.model().variant(), m.steps_size(), range,
                           m.layout());
  }
}

void PrintTensorsTable(const pb::ListTensorsResponse& response,
                       std::ostream& out) {
  out << absl::StrFormat("%-52s %-5s %-16s %12s  %s\n", "TENSOR", "DTYPE",
                         "SHAPE", "BYTES", "FILE");
  for (const auto& t : response.tensors()) {
    out << absl::StrFormat("%-52s %-5s %-16s %12d  %s\n", t.name(), t.dtype(),
                           Shape(t.shape()), t.num_bytes(), t.file());
  }
}

void PrintFrameCsvHeader(const pb::HistogramFrame& first, std::ostream& out) {
  out << "step,lo,hi,n,mean,std,min,max,skewness,kurtosis,underflow,overflow,"
         "nan,posinf,neginf";
  for (int i = 0; i < first.counts_size(); ++i) out << ",bin" << i;
  out << "\n";
}

void PrintFrameCsvRow(const pb::HistogramFrame& f, std::ostream& out) {
  out << f.step() << "," << Exact(f.lo()) << "," << Exact(f.hi()) << ","
      << f.n() << "," << Exact(f.mean()) << "," << Exact(f.std()) << ","
      << Exact(f.min()) << "," << Exact(f.max()) << "," << Exact(f.skewness())
      << "," << Exact(f.kurtosis()) << "," << f.underflow() << ","
      << f.overflow() << "," << f.nan() << "," << f.posinf() << ","
      << f.neginf();
  for (uint64_t c : f.counts()) out << "," << c;
  out << "\n";
}

void PrintFrameTableHeader(std::ostream& out) {
  out << absl::StrFormat("%8s %11s %11s %11s %11s %11s %9s %9s  %s\n", "STEP",
                         "N", "MEAN", "STD", "MIN", "MAX", "SKEW", "KURT",
                         "HISTOGRAM");
}

void PrintFrameTableRow(const pb::HistogramFrame& f, std::ostream& out) {
  out << absl::StrFormat("%8d %11d %11.4g %11.4g %11.4g %11.4g %9.3f %9.3f  %s",
                         f.step(), f.n(), f.mean(), f.std(), f.min(), f.max(),
                         f.skewness(), f.kurtosis(), Sparkline(f));
  if (f.underflow() || f.overflow() || f.nan()) {
    out << absl::StrFormat("  (under %d, over %d, nan %d)", f.underflow(),
                           f.overflow(), f.nan());
  }
  out << "\n";
}

void ProgressBar::Update(uint32_t done, uint32_t total,
                         const std::string& label) {
  if (!enabled_ || total == 0) return;
  constexpr int kWidth = 30;
  const int filled =
      static_cast<int>(static_cast<uint64_t>(done) * kWidth / total);
  std::fprintf(
      stderr, "\r[%s%s] %u/%u %s\x1b[K", std::string(filled, '#').c_str(),
      std::string(kWidth - filled, '.').c_str(), done, total, label.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace garden::client
