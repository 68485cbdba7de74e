#include "client/output/matrix.h"

#include "absl/strings/str_cat.h"
#include "client/output/csv.h"
#include "client/output/json.h"
#include "nlohmann/json.hpp"

namespace garden::client {

void RenderMatrix(const MatrixResult& r, Format format, std::ostream& out) {
  const auto width = static_cast<size_t>(r.col_end - r.col_begin);
  if (format == Format::kCsv) {
    out << "step,row,col,value\n";
    for (const MatrixAtStep& s : r.steps) {
      for (size_t i = 0; i < s.values.size(); ++i) {
        out << absl::StrCat(s.step, ",", r.row_begin + static_cast<int64_t>(i / width), ",",
                            r.col_begin + static_cast<int64_t>(i % width), ",",
                            CsvNumber(s.values[i]), "\n");
      }
    }
    out << std::flush;
    return;
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const MatrixAtStep& s : r.steps) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t begin = 0; begin < s.values.size(); begin += width) {
      nlohmann::json row = nlohmann::json::array();
      for (size_t i = begin; i < begin + width; ++i) row.push_back(JsonNumber(s.values[i]));
      rows.push_back(std::move(row));
    }
    steps.push_back({{"step", s.step}, {"values", std::move(rows)}});
  }
  WriteJson({{"model", r.model},
             {"tensor", r.tensor},
             {"dtype", r.dtype},
             {"shape", r.shape},
             {"rows", {r.row_begin, r.row_end}},
             {"cols", {r.col_begin, r.col_end}},
             {"steps", std::move(steps)}},
            out);
}

}  // namespace garden::client
