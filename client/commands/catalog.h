// What the server holds:
//   garden models   [--suite S] [--format json|table]
//   garden tensors  --size 70m [--variant deduped] --step 1000
//   garden datasets
#ifndef GARDEN_CLIENT_COMMANDS_CATALOG_H_
#define GARDEN_CLIENT_COMMANDS_CATALOG_H_

#include <memory>

#include "client/commands/command.h"

namespace garden::client {

std::unique_ptr<Command> ModelsCommand();
std::unique_ptr<Command> TensorsCommand();
std::unique_ptr<Command> DatasetsCommand();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_CATALOG_H_
