// AllCommands: the families' commands, in --help order.
#include "client/commands/commands.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

namespace garden::client {

Commands AllCommands() {
  Commands all;
  for (auto family : {CatalogCommands, DistributionCommands, ValuesCommands, DynamicsCommands,
                      EvaluationCommands, LanguageModelCommands,
                      ServiceCommands, UiCommands}) {
    for (std::unique_ptr<Command>& command : family()) {
      all.push_back(std::move(command));
    }
  }
  // A name missing here would be listed last.
  constexpr std::string_view kHelpOrder[] = {
      "models", "tensors",  "hist",      "matrix",   "tokenize", "generate",
      "unmask", "logits",   "attention", "msd",      "bifurcation",
      "audit",  "envelope", "layers",   "datasets", "ppl",       "prune",    "health",   "token",    "ui"};
  auto rank = [&](const std::unique_ptr<Command>& command) {
    return std::find(std::begin(kHelpOrder), std::end(kHelpOrder),
                     command->name()) -
           std::begin(kHelpOrder);
  };
  std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
    return rank(a) < rank(b);
  });
  return all;
}

}  // namespace garden::client
