// A tensor's distribution over training:
//   garden hist         histograms and moments at each step (--plot: the
//                       density heatmap, --branches: with the modes)
//   garden bifurcation  bimodality at each step and the onset
#ifndef GARDEN_CLIENT_COMMANDS_DISTRIBUTION_H_
#define GARDEN_CLIENT_COMMANDS_DISTRIBUTION_H_

#include <memory>

#include "client/commands/command.h"

namespace garden::client {

std::unique_ptr<Command> HistCommand();
std::unique_ptr<Command> BifurcationCommand();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_DISTRIBUTION_H_
