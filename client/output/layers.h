// Per-layer statistics and spectra (StreamLayerStats), a record per step and
// matrix as it arrives.
//   jsonl: {step, tensor, layer, kind, shape, [model,] <each metric asked for>,
//          spectrum_method}; sparsity is {"1e-3": fraction, ...}; a
//          power-law metric without a fit, and numbers JSON cannot hold,
//          are null; "eigenvalues" (descending) when the request asked.
//   csv:   step,tensor,layer,kind,rows,cols, then the metrics in the order
//          asked (sparsity as sparsity_1e-3, ...), then spectrum_method.
//   table: the same columns, aligned.
#ifndef GARDEN_CLIENT_OUTPUT_LAYERS_H_
#define GARDEN_CLIENT_OUTPUT_LAYERS_H_

#include <ostream>
#include <string>
#include <vector>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

class LayersRenderer {
 public:
  // `metrics` as the request names them (their order is the columns').
  LayersRenderer(Format format, std::vector<std::string> metrics, std::ostream& out)
      : format_(format), metrics_(std::move(metrics)), records_(format, out) {}

  // `model` non-empty (several models, --compare): a "model" key, and a
  // first column in csv and table.
  void Record(const garden::v1::LayerStatsRecord& record, const std::string& model = "");

 private:
  Format format_;
  std::vector<std::string> metrics_;
  RecordPrinter records_;
};

// Every metric, in the order `garden layers` lists them.
const std::vector<std::string>& AllLayerMetrics();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_LAYERS_H_
