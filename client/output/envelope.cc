#include "client/output/envelope.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/csv.h"
#include "client/output/json.h"
#include "client/output/records.h"

namespace garden::client {

void RenderEnvelope(const std::vector<EnvelopePoint>& points,
                    const std::vector<RunOnset>& onsets, const std::string& metric,
                    const std::string& tensor, Format format, std::ostream& out) {
  RecordPrinter point_records(format, out);
  for (const EnvelopePoint& p : points) {
    point_records.Print(
        {{"step", p.step},
         {"mean", JsonNumber(p.mean)},
         {"min", JsonNumber(p.min)},
         {"max", JsonNumber(p.max)},
         {"std", JsonNumber(p.std)},
         {"runs", p.runs}},
        [&] {
          if (format == Format::kCsv) {
            return RecordText{"step,mean,min,max,std,runs\n",
                              absl::StrCat(p.step, ",", CsvNumber(p.mean), ",",
                                           CsvNumber(p.min), ",", CsvNumber(p.max), ",",
                                           CsvNumber(p.std), ",", p.runs, "\n")};
          }
          return RecordText{
              absl::StrFormat("%8s %14s %14s %14s %14s %5s\n", "STEP", "MEAN", "MIN",
                              "MAX", "STD", "RUNS"),
              absl::StrFormat("%8d %14.6g %14.6g %14.6g %14.6g %5d\n", p.step, p.mean,
                              p.min, p.max, p.std, p.runs)};
        });
  }
  if (format == Format::kCsv || format == Format::kTable) out << "\n";
  RecordPrinter onset_records(format, out);
  for (const RunOnset& o : onsets) {
    onset_records.Print(
        {{"run", o.run},
         {"model", o.model},
         {"onset", o.onset ? nlohmann::json(*o.onset) : nlohmann::json(nullptr)}},
        [&] {
          const std::string onset = o.onset ? absl::StrCat(*o.onset) : "";
          if (format == Format::kCsv) {
            return RecordText{"run,model,onset\n",
                              absl::StrCat(o.run, ",", o.model, ",",
                                           onset, "\n")};
          }
          return RecordText{
              absl::StrFormat("%-14s %-32s %8s\n", "RUN", "MODEL", "ONSET"),
              absl::StrFormat("%-14s %-32s %8s\n", o.run, o.model,
                              o.onset ? onset : "none")};
        });
  }
  if (format == Format::kJson) {
    WriteJson({{"metric", metric},
               {"tensor", tensor},
               {"points", point_records.TakeKept()},
               {"onsets", onset_records.TakeKept()}},
              out);
  }
}

}  // namespace garden::client
