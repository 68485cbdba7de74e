// Perplexity over training (StreamPerplexity), one row per step as it
// arrives.
#ifndef GARDEN_CLIENT_OUTPUT_PERPLEXITY_H_
#define GARDEN_CLIENT_OUTPUT_PERPLEXITY_H_

#include <ostream>
#include <string>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// Row keys: step, perplexity, accuracy, n, mean_logprob, target_tokens,
// truncated, and model when several models (--compare) are rendered.
//   jsonl: one row a line.
//   json:  {"steps": [...]}, every model's rows in one list.
//   csv:   [model,]step,perplexity,...; numbers as CsvNumber writes them.
//   table: MODEL STEP PERPLEXITY ACCURACY N.
// Finish once every model's stream completed.
class PerplexityRenderer {
 public:
  PerplexityRenderer(Format format, bool label_models, std::ostream& out)
      : format_(format),
        label_models_(label_models),
        out_(out),
        records_(format, out) {}

  void Point(const garden::v1::PerplexityPoint& point,
             const std::string& model);
  void Finish();

 private:
  Format format_;
  bool label_models_;
  std::ostream& out_;
  RecordPrinter records_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_PERPLEXITY_H_
