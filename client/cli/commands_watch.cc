// watch: follow a model's events (WatchModel), one line each, as they come.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"

namespace lepton::client {

std::string FormatModelEvent(const v1::ModelEvent& event) {
  std::string line =
      absl::StrCat(v1::ModelEventKind_Name(event.kind()),
                   " version=", event.version(), " example=", event.example());
  if (event.skipped_versions() > 0) {
    absl::StrAppend(&line, " skipped_versions=", event.skipped_versions());
  }
  if (event.dropped_events() > 0) {
    absl::StrAppend(&line, " dropped_events=", event.dropped_events());
  }
  // Last: free text, to the end of the line.
  if (!event.detail().empty())
    absl::StrAppend(&line, " detail=", event.detail());
  return line;
}

int RunWatch(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "watch";
  GlobalOptions global = defaults;
  std::string model;
  int64_t interval_ms = 0;
  int64_t max_events = 0;
  FlagSet flags(
      "lepton_client watch --model=NAME [--min_version_interval_ms=N] "
      "[--max_events=N]",
      "Prints the events of model NAME from now on, one line each as they "
      "happen: KIND version=N example=N [skipped_versions=N] "
      "[dropped_events=N] [detail=TEXT]. New versions come at most one per "
      "--min_version_interval_ms (the newest; skipped_versions counts the "
      "others); drifts, challengers and refused updates always. Ends after "
      "--max_events, or when the model is deleted (MODEL_DELETED, exit 0); "
      "exit 1 if the stream fails (the server shutting down included).");
  flags.String("model", &model, "the model to watch (required)");
  flags.Int("min_version_interval_ms", &interval_ms,
            "at most one VERSION_PUBLISHED per this many ms; 0: the "
            "server's default, 1000");
  flags.Int("max_events", &max_events,
            "exit after this many events; 0: until the stream ends");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  if (!ParseCommandArgs(kCommand, &flags, args, 0, 0, &exit_code)) {
    return exit_code;
  }
  if (model.empty()) {
    PrintError(kCommand, "--model: required");
    return kExitUsage;
  }
  if (interval_ms < 0 || interval_ms > UINT32_MAX) {
    PrintError(kCommand, absl::StrCat("--min_version_interval_ms: ",
                                      interval_ms, " is out of range"));
    return kExitUsage;
  }
  if (max_events < 0) {
    PrintError(kCommand, "--max_events: must be >= 0");
    return kExitUsage;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  v1::WatchModelRequest request;
  request.set_name(model);
  request.set_min_version_interval_ms(static_cast<uint32_t>(interval_ms));
  int64_t seen = 0;
  const absl::Status status =
      client->WatchModel(request, [&](const v1::ModelEvent& event) {
        std::printf("%s\n", FormatModelEvent(event).c_str());
        // Each line as it comes, also into a pipe.
        std::fflush(stdout);
        return max_events == 0 || ++seen < max_events;
      });
  if (!status.ok()) {
    PrintError(kCommand, DescribeRpcError(status, global));
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace lepton::client
