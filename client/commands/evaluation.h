// How well a model predicts over training:
//   garden ppl  LAMBADA-style perplexity and accuracy per step on a dataset
//               the server registered (--plot: the curves)
#ifndef GARDEN_CLIENT_COMMANDS_EVALUATION_H_
#define GARDEN_CLIENT_COMMANDS_EVALUATION_H_

#include <memory>

#include "client/commands/command.h"

namespace garden::client {

std::unique_ptr<Command> PerplexityCommand();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_EVALUATION_H_
