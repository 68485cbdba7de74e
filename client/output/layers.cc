#include "client/output/layers.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/output/csv.h"
#include "client/output/json.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

// "1e-3" for 0.001: how thresholds are named as keys.
std::string ThresholdName(double t) {
  std::string s = absl::StrFormat("%.0e", t);  // "1e-03"
  const size_t e = s.find("e-0");
  if (e != std::string::npos) s.erase(e + 2, 1);
  return s;
}

// A metric's value, or null when the record has none.
nlohmann::json Value(const pb::LayerStatsRecord& r, const std::string& m) {
  const auto number = [](bool has, double v) { return has ? JsonNumber(v) : nlohmann::json(); };
  if (m == "n") return r.has_n() ? nlohmann::json(r.n()) : nlohmann::json();
  if (m == "mean") return number(r.has_mean(), r.mean());
  if (m == "std") return number(r.has_std(), r.std());
  if (m == "rms") return number(r.has_rms(), r.rms());
  if (m == "max_abs") return number(r.has_max_abs(), r.max_abs());
  if (m == "frobenius") return number(r.has_frobenius(), r.frobenius());
  if (m == "spectral_norm") return number(r.has_spectral_norm(), r.spectral_norm());
  if (m == "stable_rank") return number(r.has_stable_rank(), r.stable_rank());
  if (m == "effective_rank") return number(r.has_effective_rank(), r.effective_rank());
  if (m == "alpha") return number(r.has_alpha(), r.alpha());
  if (m == "alpha_weighted") return number(r.has_alpha_weighted(), r.alpha_weighted());
  if (m == "ks_distance") return number(r.has_ks_distance(), r.ks_distance());
  if (m == "xmin") return number(r.has_xmin(), r.xmin());
  if (m == "num_spikes") return r.has_num_spikes() ? nlohmann::json(r.num_spikes()) : nlohmann::json();
  if (m == "sparsity") {
    nlohmann::json out = nlohmann::json::object();
    for (const pb::SparsityAt& s : r.sparsity()) out[ThresholdName(s.threshold())] = JsonNumber(s.fraction());
    return out;
  }
  return nullptr;
}

std::string Text(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_number_float()) return CsvNumber(v.get<double>());
  return v.dump();
}

}  // namespace

const std::vector<std::string>& AllLayerMetrics() {
  static const std::vector<std::string> kAll = {
      "n",           "mean",          "std",   "rms",           "max_abs",
      "frobenius",   "sparsity",      "spectral_norm", "stable_rank", "effective_rank",
      "alpha",       "alpha_weighted", "ks_distance",   "xmin",        "num_spikes"};
  return kAll;
}

void LayersRenderer::Record(const pb::LayerStatsRecord& r, const std::string& model) {
  nlohmann::json j = {{"step", r.step()},
                      {"tensor", r.tensor()},
                      {"layer", r.layer()},
                      {"kind", r.kind()},
                      {"shape", std::vector<int64_t>(r.shape().begin(), r.shape().end())}};
  if (!model.empty()) j["model"] = model;
  for (const std::string& m : metrics_) j[m] = Value(r, m);
  if (!r.spectrum_method().empty()) j["spectrum_method"] = r.spectrum_method();
  if (r.eigenvalues_size() > 0) {
    nlohmann::json eigenvalues = nlohmann::json::array();
    for (double l : r.eigenvalues()) eigenvalues.push_back(JsonNumber(l));
    j["eigenvalues"] = std::move(eigenvalues);
  }
  records_.Print(j, [&] {
    std::vector<std::string> names = {"step", "tensor", "layer", "kind", "rows", "cols"};
    std::vector<std::string> cells = {absl::StrCat(r.step()), r.tensor(), absl::StrCat(r.layer()),
                                      r.kind(),
                                      absl::StrCat(r.shape_size() > 0 ? r.shape(0) : 0),
                                      absl::StrCat(r.shape_size() > 1 ? r.shape(1) : 0)};
    if (!model.empty()) {
      names.insert(names.begin(), "model");
      cells.insert(cells.begin(), model);
    }
    for (const std::string& m : metrics_) {
      if (m == "sparsity") {
        for (const pb::SparsityAt& s : r.sparsity()) {
          names.push_back("sparsity_" + ThresholdName(s.threshold()));
          cells.push_back(CsvNumber(s.fraction()));
        }
        continue;
      }
      names.push_back(m);
      cells.push_back(Text(j[m]));
    }
    names.push_back("spectrum_method");
    cells.push_back(r.spectrum_method());
    if (format_ == Format::kCsv) {
      return RecordText{absl::StrCat(absl::StrJoin(names, ","), "\n"),
                        absl::StrCat(absl::StrJoin(cells, ","), "\n")};
    }
    std::string header, row;
    for (size_t i = 0; i < names.size(); ++i) {
      const size_t width = names[i] == "tensor" ? 44
                           : names[i] == "model" ? 24
                                                 : std::max<size_t>(names[i].size(), 10);
      absl::StrAppend(&header, absl::StrFormat("%-*s ", width, names[i]));
      absl::StrAppend(&row, absl::StrFormat("%-*s ", width, cells[i]));
    }
    return RecordText{header + "\n", row + "\n"};
  });
}

}  // namespace garden::client
