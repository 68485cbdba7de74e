// A rectangle of one tensor's values at one or more steps (StreamMatrix), as
// the matrix command collects it: json or csv.
#ifndef GARDEN_CLIENT_OUTPUT_MATRIX_H_
#define GARDEN_CLIENT_OUTPUT_MATRIX_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "client/output/format.h"

namespace garden::client {

struct MatrixAtStep {
  int64_t step = 0;
  std::vector<double> values;  // row-major, rows x (col_end - col_begin)
};

struct MatrixResult {
  std::string model;  // "pythia-70m-deduped"
  std::string tensor, dtype;
  std::vector<int64_t> shape;
  int64_t row_begin = 0, row_end = 0, col_begin = 0, col_end = 0;
  std::vector<MatrixAtStep> steps;  // in the order asked
};

// json: {model, tensor, dtype, shape, rows: [begin, end], cols: [begin, end],
// steps: [{step, values: [[row], ...]}]} on one line, every value exact.
// csv: step,row,col,value, one value a line (row and col in the tensor).
void RenderMatrix(const MatrixResult& result, Format format, std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_MATRIX_H_
