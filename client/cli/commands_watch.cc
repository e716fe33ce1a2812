// watch: follow a model's events (WatchModel), one line each, as they come;
// with --plot, also a plot of the model's progressive metrics, rewritten as
// it learns.
#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cli/commands.h"
#include "client/cli/run_plot.h"

namespace lepton::client {
namespace {

// Set by SIGINT and SIGTERM while `watch --plot` runs, so that it writes the
// plot once more before it exits.
volatile std::sig_atomic_t stop_signal = 0;

void OnStopSignal(int signal) { stop_signal = signal; }

// watch --plot: the events go to stdout as without it, and to a plot; the
// plot is rewritten (at most once a second, when it changed) while the
// caller's thread waits for the watch to end, and once more at the end.
int WatchWithPlot(const GlobalOptions& global, const std::string& model,
                  const v1::WatchModelRequest& request, int64_t max_events,
                  const std::string& plot_path) {
  constexpr char kCommand[] = "watch";
  v1::ModelInfo info;
  int exit_code = kExitOk;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  const bool classifier = info.spec().type() != v1::LINEAR_REGRESSION;
  RunPlot plot({.title = absl::StrCat("model ", model, ": watch"),
                .subtitle = "Progressive validation: each example's loss and "
                            "accuracy under the model before it learned from "
                            "it.",
                .x_label = "the model's examples seen",
                .classifier = classifier,
                .loss_name = classifier ? "log loss" : "squared loss",
                .running_label = "running mean since the watch began"});
  std::atomic<int64_t> seen{0};
  std::atomic<bool> enough{false};
  std::unique_ptr<ModelWatch> watch =
      client->StartWatch(request, [&](const v1::ModelEvent& event) {
        if (enough.load()) return;
        std::printf("%s\n", FormatModelEvent(event).c_str());
        std::fflush(stdout);
        plot.AddEvent(event);
        if (event.kind() == v1::VERSION_PUBLISHED ||
            event.kind() == v1::CLASSES_ADDED) {
          // A GetModel per version event, at most one per
          // --min_version_interval_ms; one that fails costs one point.
          absl::StatusOr<v1::ModelInfo> now = client->GetModel(model);
          if (now.ok()) plot.AddModelInfo(*now);
        }
        if (max_events > 0 && ++seen >= max_events) enough = true;
      });
  plot.AddNote(absl::StrCat("From GetModel at each new version, since ",
                            absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                             absl::Now(), absl::UTCTimeZone()),
                            "."));
  absl::Status status = watch->WaitSubscribed();
  if (status.ok()) {
    // The first point starts here: the model's totals after subscribing.
    absl::StatusOr<v1::ModelInfo> now = client->GetModel(model);
    if (now.ok()) plot.AddModelInfo(*now);
  }
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int = {};
  struct sigaction old_term = {};
  stop_signal = 0;
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  absl::Status write_status = plot.Write(plot_path);
  uint64_t written = plot.generation();
  absl::Time last_write = absl::Now();
  while (status.ok() && write_status.ok() &&
         !watch->WaitEnded(absl::Milliseconds(100)) && stop_signal == 0 &&
         !enough.load()) {
    if (plot.generation() != written &&
        absl::Now() - last_write >= absl::Seconds(1)) {
      written = plot.generation();
      last_write = absl::Now();
      write_status = plot.Write(plot_path);
    }
  }
  const absl::Status watch_status = watch->Stop();
  if (status.ok()) status = watch_status;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (write_status.ok()) write_status = plot.Write(plot_path);
  if (!write_status.ok()) {
    PrintError(kCommand, absl::StrCat("--plot: ", write_status.message()));
    return kExitFailure;
  }
  if (!status.ok()) {
    PrintError(kCommand, DescribeRpcError(status, global));
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

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
      "exit 1 if the stream fails (the server shutting down included).\n"
      "--plot=FILE.svg also draws the model's progressive loss and accuracy "
      "over its examples from now on (from GetModel at each new version) "
      "with a marker per drift, drift warning, policy action and refused or "
      "quarantined update, as one self-contained SVG file, rewritten at most "
      "once a second as the model learns (through FILE.svg.tmp and a rename) "
      "and at the end; SIGINT and SIGTERM then end the watch with exit 0.");
  flags.String("model", &model, "the model to watch (required)");
  flags.Int("min_version_interval_ms", &interval_ms,
            "at most one VERSION_PUBLISHED per this many ms; 0: the "
            "server's default, 1000");
  flags.Int("max_events", &max_events,
            "exit after this many events; 0: until the stream ends");
  std::string plot_path;
  flags.String("plot", &plot_path,
               "keep an SVG plot of the model's progress in this file; "
               "empty: none");
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
  if (flags.IsSet("plot")) {
    if (absl::Status s = CheckPlotPath(plot_path); !s.ok()) {
      PrintError(kCommand, absl::StrCat("--plot: ", s.message()));
      return kExitUsage;
    }
  }
  v1::WatchModelRequest request;
  request.set_name(model);
  request.set_min_version_interval_ms(static_cast<uint32_t>(interval_ms));
  if (!plot_path.empty()) {
    return WatchWithPlot(global, model, request, max_events, plot_path);
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
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
