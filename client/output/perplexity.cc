#include "client/output/perplexity.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/csv.h"
#include "client/output/json.h"

namespace garden::client {

void PerplexityRenderer::Point(const garden::v1::PerplexityPoint& p,
                               const std::string& model) {
  nlohmann::json record = {{"step", p.step()},
                           {"perplexity", JsonNumber(p.perplexity())},
                           {"accuracy", JsonNumber(p.accuracy())},
                           {"n", p.n()},
                           {"mean_logprob", JsonNumber(p.mean_logprob())},
                           {"target_tokens", p.target_tokens()},
                           {"truncated", p.truncated()}};
  if (label_models_) record["model"] = model;
  records_.Print(std::move(record), [&] {
    if (format_ == Format::kCsv) {
      return RecordText{
          absl::StrCat(label_models_ ? "model," : "",
                       "step,perplexity,accuracy,n,mean_logprob,"
                       "target_tokens,truncated\n"),
          absl::StrCat(label_models_ ? model + "," : "", p.step(), ",",
                       CsvNumber(p.perplexity()), ",", CsvNumber(p.accuracy()),
                       ",", p.n(), ",", CsvNumber(p.mean_logprob()), ",",
                       p.target_tokens(), ",", p.truncated(), "\n")};
    }
    return RecordText{
        absl::StrFormat("%-28s %8s %14s %9s %6s\n", "MODEL", "STEP",
                        "PERPLEXITY", "ACCURACY", "N"),
        absl::StrFormat("%-28s %8d %14.6g %9.4f %6d\n", model, p.step(),
                        p.perplexity(), p.accuracy(), p.n())};
  });
}

void PerplexityRenderer::Finish() {
  if (format_ == Format::kJson) {
    WriteJson({{"steps", records_.TakeKept()}}, out_);
  }
}

}  // namespace garden::client
