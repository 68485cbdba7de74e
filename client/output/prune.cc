#include "client/output/prune.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/csv.h"
#include "client/output/json.h"

namespace garden::client {

void PruneRenderer::Point(const garden::v1::PrunePoint& p) {
  nlohmann::json record = {{"step", p.step()},
                           {"fraction", JsonNumber(p.fraction())},
                           {"perplexity", JsonNumber(p.perplexity())},
                           {"accuracy", JsonNumber(p.accuracy())},
                           {"n", p.n()},
                           {"mean_logprob", JsonNumber(p.mean_logprob())},
                           {"target_tokens", p.target_tokens()},
                           {"truncated", p.truncated()},
                           {"zeroed", p.zeroed()},
                           {"matched_numel", p.matched_numel()}};
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : p.tensors()) {
    tensors.push_back({{"name", t.name()}, {"numel", t.numel()}, {"zeroed", t.zeroed()}});
  }
  record["tensors"] = std::move(tensors);
  records_.Print(std::move(record), [&] {
    if (format_ == Format::kCsv) {
      return RecordText{
          "step,fraction,perplexity,accuracy,n,mean_logprob,target_tokens,"
          "truncated,zeroed,matched_numel\n",
          absl::StrCat(p.step(), ",", CsvNumber(p.fraction()), ",",
                       CsvNumber(p.perplexity()), ",", CsvNumber(p.accuracy()), ",",
                       p.n(), ",", CsvNumber(p.mean_logprob()), ",",
                       p.target_tokens(), ",", p.truncated(), ",", p.zeroed(), ",",
                       p.matched_numel(), "\n")};
    }
    return RecordText{
        absl::StrFormat("%8s %9s %14s %9s %12s %6s\n", "STEP", "FRACTION",
                        "PERPLEXITY", "ACCURACY", "ZEROED", "N"),
        absl::StrFormat("%8d %9.4g %14.6g %9.4f %12d %6d\n", p.step(), p.fraction(),
                        p.perplexity(), p.accuracy(), p.zeroed(), p.n())};
  });
}

void PruneRenderer::Finish() {
  if (format_ == Format::kJson) {
    WriteJson({{"points", records_.TakeKept()}}, out_);
  }
}

}  // namespace garden::client
