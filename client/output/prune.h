// The sparsification experiment (StreamPrune), one row per step and
// fraction as it arrives.
#ifndef GARDEN_CLIENT_OUTPUT_PRUNE_H_
#define GARDEN_CLIENT_OUTPUT_PRUNE_H_

#include <ostream>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// Row keys: step, fraction, perplexity, accuracy, n, mean_logprob,
// target_tokens, truncated, zeroed, matched_numel, and (jsonl, json only)
// tensors: [{name, numel, zeroed}] in the model's parameter order.
//   jsonl: one row a line.
//   json:  {"points": [...]}.
//   csv:   step,fraction,perplexity,...,zeroed,matched_numel; numbers as
//          CsvNumber writes them.
//   table: STEP FRACTION PERPLEXITY ACCURACY ZEROED N.
// Finish once the stream completed.
class PruneRenderer {
 public:
  PruneRenderer(Format format, std::ostream& out)
      : format_(format), out_(out), records_(format, out) {}

  void Point(const garden::v1::PrunePoint& point);
  void Finish();

 private:
  Format format_;
  std::ostream& out_;
  RecordPrinter records_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_PRUNE_H_
