// Mean square displacement (StreamMSD): points as they arrive, then each
// model's peak.
#ifndef GARDEN_CLIENT_OUTPUT_MSD_H_
#define GARDEN_CLIENT_OUTPUT_MSD_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"
#include "nlohmann/json.hpp"

namespace garden::client {

// Point keys: step, msd, from_step, rate, n; msd_before_previous and
// before_previous_step when the server sends them; lag and pairs in lag
// mode; model when several models (--compare) are rendered.
//   jsonl: one point a line.
//   json:  {"points": [...], "peak", "largest", "monotonic"} per model, or
//          {"models": [{model, points, peak, largest, monotonic}]} for
//          several: "largest" is {step, msd} of the largest msd, "peak" the
//          same when it is interior (else null: a maximum at the first or
//          last point is no peak), "monotonic" "increasing", "decreasing" or
//          null.
//   csv:   [model,]step,msd,from_step,rate,n; numbers as CsvNumber writes.
//   table: MODEL STEP FROM MSD RATE, then "[model ]peak: step|lag S, msd M",
//          or "[model ]no peak[, increasing]: the largest msd M is at the
//          last step S".
// Call BeginModel, Point/Peak for its stream, EndModel once that stream
// completed; Finish after the last model.
class MsdRenderer {
 public:
  MsdRenderer(Format format, bool lag, bool label_models, std::ostream& out)
      : format_(format),
        lag_(lag),
        label_models_(label_models),
        out_(out),
        records_(format, out) {}

  void BeginModel(const std::string& model);
  void Point(const garden::v1::MSDPoint& point);
  void Peak(const garden::v1::MSDPeak& peak) { peak_ = peak; }
  void EndModel();
  void Finish();

 private:
  Format format_;
  bool lag_;
  bool label_models_;
  std::ostream& out_;
  RecordPrinter records_;
  std::string model_;
  std::optional<garden::v1::MSDPeak> peak_;
  std::optional<int64_t> first_step_;  // of this model's curve
  nlohmann::json models_ = nlohmann::json::array();  // json, several models
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_MSD_H_
