#include "common/model/lm_eval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {

ClozeSplit SplitCloze(std::string_view text) {
  ClozeSplit split;
  const size_t space = text.rfind(' ');
  if (space == std::string_view::npos) {
    split.target = std::string(text);
    return split;
  }
  split.context = std::string(text.substr(0, space));
  split.target = absl::StrCat(" ", ToAbsl(text.substr(space + 1)));
  const size_t kept = split.context.find_last_not_of(' ') + 1;  // npos+1 = 0
  split.target.insert(0, split.context, kept);
  split.context.resize(kept);
  return split;
}

absl::StatusOr<ContinuationRequest> ClozeRequest(const Tokenizer& tokenizer,
                                                 std::string_view text) {
  const ClozeSplit split = SplitCloze(text);
  ContinuationRequest request;
  if (split.context.empty()) {
    const std::vector<int32_t> eot = tokenizer.Encode("<|endoftext|>");
    if (eot.size() != 1 || !tokenizer.IsSpecial(eot[0])) {
      return absl::FailedPreconditionError(absl::StrCat(
          "\"", ToAbsl(text),
          "\" has no context, and the tokenizer has no <|endoftext|> token "
          "to stand for it"));
    }
    request.context = {eot[0]};
    for (int32_t id : tokenizer.Encode(split.target)) {
      request.continuation.push_back(id);
    }
  } else {
    const std::vector<int32_t> whole =
        tokenizer.Encode(absl::StrCat(split.context, split.target));
    const std::vector<int32_t> context = tokenizer.Encode(split.context);
    request.context.assign(context.begin(), context.end());
    if (whole.size() > context.size()) {
      request.continuation.assign(whole.begin() + context.size(), whole.end());
    }
  }
  if (request.continuation.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the target \"", split.target, "\" of \"", ToAbsl(text),
        "\" has no tokens of its own"));
  }
  return request;
}

namespace {

// One row of a batch: the model input and where the continuation sits in it.
struct Row {
  size_t request = 0;
  std::vector<int64_t> input;
  size_t continuation_start = 0;  // index in input of the first predicting position
  bool truncated = false;
};

// Adds the scores of rows order[next, next + batch) from the logits of
// their continuation positions, [sum of continuation lengths, vocab] in
// row order.
void ScoreBatch(const at::Tensor& logits, const std::vector<Row>& rows,
                const std::vector<size_t>& order, size_t next, size_t batch,
                const std::vector<ContinuationRequest>& requests,
                std::vector<ContinuationScore>& scores) {
  c10::InferenceMode guard;
  // Double precision for the normalisation: the sum over the vocabulary
  // is where float32 would lose digits.
  const at::Tensor all = logits.to(at::kCPU, at::kDouble);
  const at::Tensor logp = at::log_softmax(all, /*dim=*/1);
  const at::Tensor best = all.argmax(/*dim=*/1);  // the lowest id on ties
  auto logp_a = logp.accessor<double, 2>();
  auto best_a = best.accessor<int64_t, 1>();
  int64_t offset = 0;
  for (size_t b = 0; b < batch; ++b) {
    const Row& row = rows[order[next + b]];
    const auto& continuation = requests[row.request].continuation;
    ContinuationScore& score = scores[row.request];
    score.truncated = row.truncated;
    score.greedy = true;
    for (size_t j = 0; j < continuation.size(); ++j, ++offset) {
      score.logprob += logp_a[offset][continuation[j]];
      score.greedy = score.greedy && best_a[offset] == continuation[j];
    }
  }
}

// The rows of `requests`, validated against the model's vocabulary and
// context, and their order: longest first, so each batch's padding is small.
absl::Status PlanRows(const GptNeoxConfig& config,
                      const std::vector<ContinuationRequest>& requests,
                      std::vector<Row>& rows, std::vector<size_t>& order) {
  const size_t max_length = static_cast<size_t>(config.max_position_embeddings);
  rows.assign(requests.size(), Row());
  for (size_t i = 0; i < requests.size(); ++i) {
    const ContinuationRequest& r = requests[i];
    if (r.context.empty() || r.continuation.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request ", i, " has an empty context or continuation"));
    }
    if (r.continuation.size() > max_length) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request ", i, " has a continuation of ", r.continuation.size(),
          " tokens; the model's context is ", max_length));
    }
    for (int64_t id : r.continuation) {
      if (id < 0 || id >= config.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("request ", i, " has token id ", id,
                         " outside the vocabulary [0, ", config.vocab_size,
                         ")"));
      }
    }
    Row& row = rows[i];
    row.request = i;
    row.input = r.context;
    row.input.insert(row.input.end(), r.continuation.begin(),
                     r.continuation.end());
    row.input.pop_back();  // the last token predicts nothing we score
    if (row.input.size() > max_length) {
      row.input.erase(row.input.begin(),
                      row.input.end() - static_cast<ptrdiff_t>(max_length));
      row.truncated = true;
    }
    row.continuation_start = row.input.size() - r.continuation.size();
  }
  order.resize(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rows[a].input.size() > rows[b].input.size();
  });
  return absl::OkStatus();
}

// How many rows from order[next] make the next batch: as many as fit
// `max_batch_tokens` at the first (longest) row's length, at least one.
size_t BatchRows(const std::vector<Row>& rows, const std::vector<size_t>& order,
                 size_t next, const ScoringOptions& options) {
  const int64_t budget = std::max<int64_t>(options.max_batch_tokens, 1);
  const auto length = static_cast<int64_t>(rows[order[next]].input.size());
  return static_cast<size_t>(std::clamp<int64_t>(
      budget / length, 1, static_cast<int64_t>(order.size() - next)));
}

}  // namespace

absl::StatusOr<uint64_t> ScoringWorkingBytes(
    const GptNeoxConfig& config, const std::vector<ContinuationRequest>& requests,
    const ScoringOptions& options) {
  std::vector<Row> rows;
  std::vector<size_t> order;
  RETURN_IF_ERROR(PlanRows(config, requests, rows, order));
  uint64_t most = 0;
  for (size_t next = 0; next < order.size();) {
    const size_t batch = BatchRows(rows, order, next, options);
    const auto length = static_cast<int64_t>(rows[order[next]].input.size());
    int64_t scored = 0;
    for (size_t b = 0; b < batch; ++b) {
      scored += static_cast<int64_t>(requests[rows[order[next + b]].request].continuation.size());
    }
    // The forward pass, then ScoreBatch's double-precision copy of the
    // logits and their log-softmax.
    const uint64_t bytes =
        ForwardWorkingBytes(config, static_cast<int64_t>(batch) * length, scored, length, 0) +
        2 * sizeof(double) * static_cast<uint64_t>(scored) *
            static_cast<uint64_t>(config.vocab_size);
    most = std::max(most, bytes);
    next += batch;
  }
  return most;
}

absl::StatusOr<std::vector<ContinuationScore>> ScoreContinuations(
    const GptNeoxModel& model, const std::vector<ContinuationRequest>& requests,
    const ScoringOptions& options, const std::function<bool()>& cancelled) {
  std::vector<Row> rows;
  std::vector<size_t> order;
  RETURN_IF_ERROR(PlanRows(model.config(), requests, rows, order));

  std::vector<ContinuationScore> scores(requests.size());
  size_t next = 0;
  while (next < order.size()) {
    if (cancelled && cancelled()) {
      return absl::CancelledError("scoring cancelled");
    }
    const int64_t length =
        static_cast<int64_t>(rows[order[next]].input.size());
    const size_t batch = BatchRows(rows, order, next, options);
    // Right padding with id 0: positions after a row's end never influence
    // its earlier positions under causal attention.
    at::Tensor ids = at::zeros({static_cast<int64_t>(batch), length}, at::kLong);
    auto ids_a = ids.accessor<int64_t, 2>();
    std::vector<int64_t> positions;
    for (size_t b = 0; b < batch; ++b) {
      const Row& row = rows[order[next + b]];
      for (size_t t = 0; t < row.input.size(); ++t) ids_a[b][t] = row.input[t];
      for (size_t t = row.continuation_start; t < row.input.size(); ++t) {
        positions.push_back(static_cast<int64_t>(b) * length +
                            static_cast<int64_t>(t));
      }
    }
    ASSIGN_OR_RETURN(const at::Tensor logits,
                     model.LogitsAt(ids, at::tensor(positions, at::kLong)));
    try {
      ScoreBatch(logits, rows, order, next, batch, requests, scores);
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("scoring: ", e.what_without_backtrace()));
    }
    next += batch;
  }
  return scores;
}

}  // namespace garden
