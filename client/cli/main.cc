// lepton_client: the sample command-line client of a Lepton server. Parses
// the global flags and hands the rest to one command (commands.h).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"

namespace {

using lepton::client::CommandArgs;
using lepton::client::GlobalOptions;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const CommandArgs& args, const GlobalOptions& global);
};

constexpr Command kCommands[] = {
    {"create", "create a model", lepton::client::RunCreate},
    {"list", "list the models", lepton::client::RunList},
    {"info", "describe a model (key: value lines)", lepton::client::RunInfo},
    {"delete", "delete a model", lepton::client::RunDelete},
    {"predict", "score instances from the command line or a file",
     lepton::client::RunPredict},
    {"update", "learn from a file, as one request", lepton::client::RunUpdate},
    {"train", "stream a file into a model, in batches",
     lepton::client::RunTrain},
    {"eval", "accuracy and log loss, or RMSE, on a labeled file",
     lepton::client::RunEval},
    {"rollback", "publish an earlier version again as the newest",
     lepton::client::RunRollback},
    {"add-classes", "grow a softmax model to more classes",
     lepton::client::RunAddClasses},
    {"export", "save a model version to a file", lepton::client::RunExport},
    {"import", "create a model from an exported file",
     lepton::client::RunImport},
    {"watch", "print a model's events as they happen",
     lepton::client::RunWatch},
    {"health", "exit 0 if and only if the server is SERVING",
     lepton::client::RunHealth},
};

std::string Description() {
  std::string text = "A client of a Lepton model server. Commands:\n";
  size_t width = 0;  // the summaries line up after the longest name
  for (const Command& c : kCommands) {
    width = std::max(width, std::string(c.name).size() + 1);
  }
  for (const Command& c : kCommands) {
    absl::StrAppend(&text, "  ", c.name,
                    std::string(width - std::string(c.name).size(), ' '),
                    c.summary, "\n");
  }
  absl::StrAppend(
      &text,
      "`lepton_client COMMAND --help` describes a command and its flags.\n"
      "Files: CSV (label,x0,...,x{D-1}) or LIBSVM (label idx:val ...).\n"
      "Exit status: 0 success, 1 failure (reported on stderr), 2 bad usage.");
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lepton::client;
  GlobalOptions global;
  FlagSet flags("lepton_client [--target=host:port] COMMAND [args] [flags]",
                Description());
  AddGlobalFlags(&flags, &global);
  absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse(std::vector<std::string>(argv + 1, argv + argc),
                  /*stop_at_positional=*/true);
  if (flags.help()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return kExitOk;
  }
  if (!rest.ok()) {
    std::fprintf(stderr, "lepton_client: %s\n",
                 std::string(rest.status().message()).c_str());
    return kExitUsage;
  }
  if (rest->empty()) {
    std::fputs(flags.Usage().c_str(), stderr);
    return kExitUsage;
  }
  std::string name = rest->front();
  CommandArgs args(rest->begin() + 1, rest->end());
  // "help COMMAND" is "COMMAND --help".
  if (name == "help") {
    if (args.empty()) {
      std::fputs(flags.Usage().c_str(), stdout);
      return kExitOk;
    }
    name = args.front();
    args = {"--help"};
  }
  for (const Command& c : kCommands) {
    if (name == c.name) return c.run(args, global);
  }
  std::fprintf(stderr, "lepton_client: unknown command \"%s\" (see --help)\n",
               name.c_str());
  return kExitUsage;
}
