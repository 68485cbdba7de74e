// How the garden CLI prints what the server sends: JSON, JSON lines, CSV,
// and tables for people.
#ifndef GARDEN_CLIENT_OUTPUT_OUTPUT_H_
#define GARDEN_CLIENT_OUTPUT_OUTPUT_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "garden/v1/garden.pb.h"
#include "nlohmann/json.hpp"

namespace garden::client {

// One histogram frame with the jsonl keys scripts rely on: step, lo, hi,
// counts, underflow, overflow, n, mean, std, min, max, skewness, kurtosis
// (plus nan, posinf, neginf, dtype, shape). Undefined values are null.
nlohmann::json FrameJson(const garden::v1::HistogramFrame& frame);

nlohmann::json ModelsJson(const garden::v1::ListModelsResponse& response);
nlohmann::json TensorsJson(const garden::v1::ListTensorsResponse& response);

void PrintModelsTable(const garden::v1::ListModelsResponse& response,
                      std::ostream& out);
void PrintTensorsTable(const garden::v1::ListTensorsResponse& response,
                       std::ostream& out);

// CSV: a header row, then one row per frame with the scalar keys followed by
// bin0..binN-1.
void PrintFrameCsvHeader(const garden::v1::HistogramFrame& first,
                         std::ostream& out);
void PrintFrameCsvRow(const garden::v1::HistogramFrame& frame,
                      std::ostream& out);

// Table: a header, then per frame its statistics and the histogram drawn as
// a row of block characters.
void PrintFrameTableHeader(std::ostream& out);
void PrintFrameTableRow(const garden::v1::HistogramFrame& frame,
                        std::ostream& out);

// A one-line progress bar redrawn on stderr while it is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  ~ProgressBar() { Clear(); }
  void Update(uint32_t done, uint32_t total, const std::string& label);
  void Clear();

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_OUTPUT_H_
