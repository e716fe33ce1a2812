// The lepton_client commands. Each takes the arguments that follow its name
// on the command line and the global options given before it (which the
// command's own flags may override), and returns the process's exit status
// (cli_common.h: 0 success, 1 failure, 2 usage error).
//
//   commands_models.cc  create, list, info, delete, health
//   commands_predict.cc predict, eval
//   commands_learn.cc   update, train
//
// Thread safety: each command runs on the calling thread and writes to stdout
// and stderr; run one at a time.
#ifndef LEPTON_CLIENT_COMMANDS_H_
#define LEPTON_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "client/cli_common.h"

namespace lepton::client {

using CommandArgs = std::vector<std::string>;

int RunCreate(const CommandArgs& args, const GlobalOptions& global);
int RunList(const CommandArgs& args, const GlobalOptions& global);
int RunInfo(const CommandArgs& args, const GlobalOptions& global);
int RunDelete(const CommandArgs& args, const GlobalOptions& global);
int RunHealth(const CommandArgs& args, const GlobalOptions& global);
int RunPredict(const CommandArgs& args, const GlobalOptions& global);
int RunEval(const CommandArgs& args, const GlobalOptions& global);
int RunUpdate(const CommandArgs& args, const GlobalOptions& global);
int RunTrain(const CommandArgs& args, const GlobalOptions& global);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_COMMANDS_H_
