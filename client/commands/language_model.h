// A checkpoint used as a language model:
//   garden tokenize   token ids and pieces of a text
//   garden generate   continue a prompt, streamed token by token
//   garden unmask     causal unmasking over steps and prefix lengths
//   garden logits     mean next-token logits of a text
//   garden attention  attention matrix of one layer
#ifndef GARDEN_CLIENT_COMMANDS_LANGUAGE_MODEL_H_
#define GARDEN_CLIENT_COMMANDS_LANGUAGE_MODEL_H_

#include <memory>

#include "client/commands/command.h"

namespace garden::client {

std::unique_ptr<Command> TokenizeCommand();
std::unique_ptr<Command> GenerateCommand();
std::unique_ptr<Command> UnmaskCommand();
std::unique_ptr<Command> LogitsCommand();
std::unique_ptr<Command> AttentionCommand();

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_LANGUAGE_MODEL_H_
