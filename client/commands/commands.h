// Every garden subcommand, by the family (and the file,
// client/commands/<family>.cc) that defines it:
//   catalog         what the server holds
//     models          suites, sizes, variants and steps
//     tensors         the tensors of one checkpoint
//     datasets        the evaluation datasets
//   distribution    a tensor's distribution over training
//     hist            histograms and moments at each step (--plot: the
//                     density heatmap, --branches: with the modes)
//     bifurcation     bimodality at each step and the onset
//   values          the matrices themselves
//     matrix          a rectangle of a tensor at one or more steps (--plot:
//                     its image, Figure 1 B)
//     layers          every matrix's statistics and spectrum at each step
//   dynamics        how a tensor moves over training, and whether the steps
//                   can be trusted
//     msd             mean square displacement per step (--plot: the curve)
//     audit           identical steps, discontinuities and missing steps
//     envelope        a metric's band across a model's training runs, and
//                     each run's bifurcation onset (--plot: the band)
//   evaluation      how well a model predicts over training
//     ppl             LAMBADA-style perplexity and accuracy per step on a
//                     dataset the server registered (--plot: the curves)
//     prune           perplexity with the smallest weights zeroed, per fraction
//                     and step (--plot: against the fraction)
//   language_model  a checkpoint used as a language model
//     tokenize        token ids and pieces of a text
//     generate        continue a prompt, streamed token by token
//     unmask          causal unmasking over steps and prefix lengths
//     logits          mean next-token logits of a text
//     attention       attention matrix of one layer
//   service         the server itself and access to it
//     health          the standard health service's answer (exit 0 when
//                     SERVING)
//     token new       a fresh access token and its --auth-tokens line
//   ui              the browser dashboard
//     ui              a local web page over gardend (client/ui)
#ifndef GARDEN_CLIENT_COMMANDS_COMMANDS_H_
#define GARDEN_CLIENT_COMMANDS_COMMANDS_H_

#include <memory>
#include <vector>

#include "client/commands/command.h"

namespace garden::client {

using Commands = std::vector<std::unique_ptr<Command>>;

// Every command, in the order `garden --help` lists them.
Commands AllCommands();

// Each family's commands (defined in its file).
Commands CatalogCommands();
Commands DistributionCommands();
Commands ValuesCommands();
Commands DynamicsCommands();
Commands EvaluationCommands();
Commands LanguageModelCommands();
Commands ServiceCommands();
Commands UiCommands();

// One new instance of each of the command classes `Each`, in that order.
template <typename... Each>
Commands MakeCommands() {
  Commands commands;
  (commands.push_back(std::make_unique<Each>()), ...);
  return commands;
}

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_COMMANDS_H_
