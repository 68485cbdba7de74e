// How a tensor moves over training, and whether the steps can be trusted:
//   garden msd    mean square displacement per step (--plot: the curve)
//   garden audit  identical steps, discontinuities and missing steps
#ifndef GARDEN_CLIENT_COMMANDS_DYNAMICS_H_
#define GARDEN_CLIENT_COMMANDS_DYNAMICS_H_

#include <memory>

#include "client/commands/command.h"

namespace garden::client {

std::unique_ptr<Command> MsdCommand();
std::unique_ptr<Command> AuditCommand();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_DYNAMICS_H_
