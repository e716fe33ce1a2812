// update and train: the commands that send labeled examples.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/cli/commands.h"
#include "client/cli/run_plot.h"
#include "client/example_prefetcher.h"

namespace lepton::client {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The learning-rate and epochs flags shared by update and train.
struct LearnFlags {
  int64_t epochs = 0;
  double learning_rate = 0;
};

void AddLearnFlags(FlagSet* flags, LearnFlags* learn) {
  flags->Int("epochs", &learn->epochs,
             "passes over each request's examples; 0: 1");
  flags->Double("learning_rate", &learn->learning_rate,
                "overrides the model's base learning rate for these updates; "
                "0: the model's own");
}

// Copies the flags into `request`, or returns false after a usage error.
bool ApplyLearnFlags(absl::string_view command, const LearnFlags& learn,
                     v1::UpdateRequest* request) {
  if (learn.epochs < 0 || learn.epochs > std::numeric_limits<int32_t>::max()) {
    PrintError(command, "--epochs: out of range");
    return false;
  }
  request->set_epochs(static_cast<int32_t>(learn.epochs));
  request->set_learning_rate(static_cast<float>(learn.learning_rate));
  return true;
}

// --holdout_fraction and --holdout_file, shared by update and train.
struct HoldoutFlags {
  double fraction = 0;
  std::string file;
};

void AddHoldoutFlags(FlagSet* flags, HoldoutFlags* holdout) {
  flags->Double("holdout_fraction", &holdout->fraction,
                "in [0, 1]: FILE's examples at positions 0, k, 2k, ... "
                "(counted from 0 over the whole file, k = round(1/F)) are "
                "sent as holdout examples: kept in the model's validation "
                "set, never trained on; 0: none");
  flags->String("holdout_file", &holdout->file,
                "a file (same format flags) whose every example is sent as "
                "a holdout example; empty: none");
}

// Marks the example at `position` of its file as holdout when the
// --holdout_fraction rule picks it.
void MarkHoldout(int64_t period, int64_t position, v1::Example* example) {
  if (period > 0 && position % period == 0) example->set_holdout(true);
}

// Where the examples of a request came from, in order: the error about
// examples[i] names the file and line of item i. An empty `file` (delayed
// labels) leaves the message alone.
struct Source {
  std::string file;
  std::vector<int64_t> lines;
};

std::string LocateInSources(absl::string_view message,
                            const std::vector<Source>& sources) {
  std::optional<int64_t> index = ItemIndexOfError(message, "examples");
  if (!index.has_value()) return std::string(message);
  int64_t i = *index;
  for (const Source& source : sources) {
    const int64_t n = static_cast<int64_t>(source.lines.size());
    if (i < n) {
      return source.file.empty()
                 ? std::string(message)
                 : LocateError(message, "examples", source.file, source.lines);
    }
    i -= n;
  }
  return std::string(message);
}

// This run's progressive validation, from the responses: each batch's mean
// loss (and accuracy) before the model learned from it, weighted by the
// examples it trained on (holdout examples are not trained on, nor scored
// there). The files carry no example weights, so that is the server's own
// weighting.
struct RunTotals {
  int64_t examples = 0;
  int64_t holdout = 0;
  int64_t requests = 0;
  double loss_sum = 0;
  double accuracy_sum = 0;
  bool has_accuracy = false;
  uint64_t version = 0;
  int64_t quarantined = 0;  // requests a QUARANTINE guardrail held back

  // `holdout`: how many of the request's examples were holdout ones.
  void Add(const v1::UpdateResponse& r, int64_t holdout_in_request) {
    examples += r.examples();
    holdout += holdout_in_request;
    ++requests;
    const int64_t trained = r.examples() - holdout_in_request;
    loss_sum += r.loss_before() * trained;
    if (r.has_accuracy_before()) {
      has_accuracy = true;
      accuracy_sum += r.accuracy_before() * trained;
    }
    version = r.version();
    if (r.quarantined()) ++quarantined;
  }
  int64_t trained() const { return examples - holdout; }
  double loss() const { return trained() <= 0 ? 0 : loss_sum / trained(); }
  double accuracy() const {
    return trained() <= 0 ? 0 : accuracy_sum / trained();
  }
};

// The progress line on stderr: rewritten in place on a terminal, otherwise
// one line per interval (so that logs stay readable).
class Progress {
 public:
  explicit Progress(absl::Duration interval)
      : interval_(absl::ToDoubleSeconds(interval)),
        tty_(isatty(STDERR_FILENO) == 1),
        start_(Clock::now()) {}

  void Update(const RunTotals& totals) {
    if (interval_ <= 0) return;
    const double now = SecondsSince(start_);
    if (now - last_ < interval_) return;
    last_ = now;
    std::string line = absl::StrFormat(
        "train: %d examples, %.0f examples/s, progressive loss %.4f",
        totals.examples, totals.examples / now, totals.loss());
    if (totals.has_accuracy) {
      absl::StrAppendFormat(&line, ", accuracy %.4f", totals.accuracy());
    }
    std::fprintf(stderr, tty_ ? "\r%s\x1b[K" : "%s\n", line.c_str());
    printed_ = true;
  }

  // Ends a line left open on a terminal.
  void Done() {
    if (tty_ && printed_) std::fputc('\n', stderr);
  }

 private:
  const double interval_;
  const bool tty_;
  const Clock::time_point start_;
  double last_ = 0;
  bool printed_ = false;
};

// train --plot's markers: the model's events during the run, from a
// WatchModel call subscribed before the first request. A failed watch costs
// the plot its markers (a note says why), not the run.
class TrainWatch {
 public:
  TrainWatch(Client* client, const std::string& model, RunPlot* plot)
      : plot_(plot) {
    v1::WatchModelRequest request;
    request.set_name(model);
    // Each version's event comes within 0.1 s, so Finish() waits little.
    request.set_min_version_interval_ms(100);
    watch_ = client->StartWatch(request, [this](const v1::ModelEvent& e) {
      plot_->AddEvent(e);
      absl::MutexLock lock(&mu_);
      if (e.kind() == v1::VERSION_PUBLISHED) {
        newest_version_ = std::max(newest_version_, e.version());
      }
      if (e.kind() == v1::UPDATE_REFUSED) refused_ = true;
    });
    absl::Status status = watch_->WaitSubscribed();
    // Markers sit at the run's examples: the model's count when an event
    // happened minus its count now, after subscribing.
    absl::StatusOr<v1::ModelInfo> info =
        status.ok() ? client->GetModel(model) : status;
    if (info.ok()) {
      plot_->SetEventOrigin(static_cast<int64_t>(info->examples_seen()));
    } else {
      Failed(info.status());
    }
  }

  // After the run: waits (at most 2 s) until the events of its last version
  // `version` (0: none published), and of its refusal if `refused`, have
  // arrived, since the server sends them after the update's response; then
  // ends the call.
  void Finish(uint64_t version, bool refused) {
    if (watch_ == nullptr) return;
    {
      absl::MutexLock lock(&mu_);
      auto arrived = [&]() {
        mu_.AssertReaderHeld();
        return newest_version_ >= version && (refused_ || !refused);
      };
      mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(2));
    }
    absl::Status status = watch_->Stop();
    watch_.reset();
    if (!status.ok()) Failed(status);
  }

 private:
  void Failed(const absl::Status& status) {
    std::fprintf(stderr,
                 "lepton_client: train: --plot: no event markers: "
                 "WatchModel: %s (%s)\n",
                 std::string(status.message()).c_str(),
                 absl::StatusCodeToString(status.code()).c_str());
    plot_->AddNote(absl::StrCat("No event markers: WatchModel failed: ",
                                status.message()));
    if (watch_ != nullptr) (void)watch_->Stop();
    watch_.reset();
  }

  RunPlot* const plot_;
  absl::Mutex mu_;
  uint64_t newest_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool refused_ ABSL_GUARDED_BY(mu_) = false;
  // Last: stopped before the members its callback uses are destroyed.
  std::unique_ptr<ModelWatch> watch_;
};

}  // namespace

absl::StatusOr<int64_t> HoldoutPeriod(double fraction) {
  if (!(fraction >= 0 && fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be in [0, 1], got ", fraction));
  }
  if (fraction == 0) return 0;
  // At least 1; a tiny fraction gives a huge period (almost no holdout).
  const double period = std::round(1.0 / fraction);
  return period >= static_cast<double>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(period);
}

absl::Status ParsePredictionLabels(
    absl::string_view text,
    google::protobuf::RepeatedPtrField<v1::Example>* examples) {
  if (text.empty()) return absl::InvalidArgumentError("empty");
  int i = 0;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    uint64_t id = 0;
    float label = 0;
    float weight = 1;
    if (parts.size() < 2 || parts.size() > 3 ||
        !absl::SimpleAtoi(parts[0], &id) || id == 0 ||
        !absl::SimpleAtof(parts[1], &label) ||
        (parts.size() == 3 && !absl::SimpleAtof(parts[2], &weight))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "item ", i, " \"", item,
          "\": expected ID:LABEL or ID:LABEL:WEIGHT, ID a nonzero integer"));
    }
    v1::Example* e = examples->Add();
    e->set_prediction_id(id);
    e->set_label(label);
    if (parts.size() == 3) e->set_weight(weight);
    ++i;
  }
  return absl::OkStatus();
}

int RunUpdate(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "update";
  GlobalOptions global = defaults;
  LearnFlags learn;
  FileFlags file_flags;
  std::string update_id;
  FlagSet flags(
      "lepton_client update MODEL (FILE | --prediction_ids=ID:LABEL,... | "
      "--holdout_file=FILE) [flags]",
      "Sends every example of FILE (CSV, LIBSVM or VW) to MODEL as one Update "
      "request: applied all or nothing, at most the server's --max_batch "
      "examples. Or, with --prediction_ids, the delayed labels of "
      "predictions made with `predict --return_ids`: the server learns from "
      "the features it kept, and scores each by the prediction it served; "
      "an id is usable once, until the server's --prediction_ttl, and not "
      "after a server restart (NOT_FOUND). Prints key: value lines: version "
      "(the one it published), "
      "examples, loss_before and accuracy_before (classifiers): the batch's "
      "progressive metrics under the previous version.\n"
      "Idempotent retries: with --update_id, running the same command again "
      "(after a timeout or a lost connection, say) is safe. If the model "
      "remembers the id (its newest --remembered_update_ids, across server "
      "restarts), the server applies nothing and this prints the original "
      "update's answer, its version included.\n"
      "Holdout examples: --holdout_fraction sends some of FILE's examples, "
      "and --holdout_file (after FILE's, in the same request, or alone) "
      "every example of another file, as holdout examples: the model keeps "
      "them as its validation set and never trains on them (`info` shows "
      "holdout_examples and validation_loss). Then this also prints "
      "holdout: N. A model created with --guardrail=reject refuses an update "
      "that would raise its validation loss (FAILED_PRECONDITION, nothing "
      "applied, exit status 1).");
  flags.String("update_id", &update_id,
               "an id of this update, at most 128 bytes (a UUID, say), that "
               "makes a retry apply it at most once; empty: none");
  std::string prediction_labels;
  flags.String("prediction_ids", &prediction_labels,
               "ID:LABEL[:WEIGHT],... labels for earlier predictions, instead "
               "of FILE");
  HoldoutFlags holdout;
  AddHoldoutFlags(&flags, &holdout);
  AddLearnFlags(&flags, &learn);
  AddFileFlags(&flags, &file_flags);
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 2, &exit_code);
  if (!positional) return exit_code;
  const bool by_id = flags.IsSet("prediction_ids");
  const bool has_file = positional->size() == 2;
  const bool holdout_only = !by_id && !has_file && !holdout.file.empty();
  if (by_id == has_file && !holdout_only) {
    PrintError(kCommand,
               "give exactly one of FILE, --prediction_ids (or only "
               "--holdout_file)");
    return kExitUsage;
  }
  absl::StatusOr<int64_t> period = HoldoutPeriod(holdout.fraction);
  if (!period.ok()) {
    PrintError(kCommand,
               absl::StrCat("--holdout_fraction: ", period.status().message()));
    return kExitUsage;
  }
  if (*period > 0 && !has_file) {
    PrintError(kCommand, "--holdout_fraction: needs FILE");
    return kExitUsage;
  }
  const std::string& model = (*positional)[0];
  const std::string file = has_file ? (*positional)[1] : std::string();
  v1::UpdateRequest request;
  request.set_model(model);
  if (by_id) {
    if (absl::Status s = ParsePredictionLabels(prediction_labels,
                                               request.mutable_examples());
        !s.ok()) {
      PrintError(kCommand, absl::StrCat("--prediction_ids: ", s.message()));
      return kExitUsage;
    }
  }
  if (!ApplyLearnFlags(kCommand, learn, &request)) return kExitUsage;
  if (update_id.size() > kMaxUpdateIdBytes) {
    PrintError(kCommand,
               absl::StrCat("--update_id: at most ", kMaxUpdateIdBytes,
                            " bytes, got ", update_id.size()));
    return kExitUsage;
  }
  request.set_update_id(update_id);

  v1::ModelInfo info;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  // The request's examples in order: FILE's (or the delayed labels), then
  // --holdout_file's.
  std::vector<Source> sources;
  if (by_id) {
    sources.push_back({"", std::vector<int64_t>(request.examples_size(), 0)});
  }
  std::string vw_labels;  // FILE's, if it maps VW labels
  auto read_file = [&](const std::string& path, bool all_holdout) {
    std::unique_ptr<ExampleReader> reader =
        OpenExampleFileOrReport(kCommand, file_flags, path, info);
    if (reader == nullptr) return false;
    if (!all_holdout) vw_labels = VwLabelsLine(*reader);
    const int first = request.examples_size();
    Source source{path, {}};
    absl::StatusOr<int> n =
        ReadExamples(reader.get(), std::numeric_limits<int>::max(),
                     request.mutable_examples(), &source.lines);
    if (!n.ok() || *n == 0) {
      PrintError(kCommand, !n.ok() ? std::string(n.status().message())
                                   : absl::StrCat(path, ": no examples"));
      return false;
    }
    for (int i = first; i < request.examples_size(); ++i) {
      v1::Example* e = request.mutable_examples(i);
      if (all_holdout) {
        e->set_holdout(true);
      } else {
        MarkHoldout(*period, i - first, e);
      }
    }
    sources.push_back(std::move(source));
    return true;
  };
  if (has_file && !read_file(file, /*all_holdout=*/false)) {
    return kExitFailure;
  }
  if (!holdout.file.empty() && !read_file(holdout.file, /*all_holdout=*/true)) {
    return kExitFailure;
  }
  int64_t holdout_count = 0;
  for (const v1::Example& e : request.examples()) holdout_count += e.holdout();
  absl::StatusOr<v1::UpdateResponse> response = client->Update(request);
  if (!response.ok()) {
    const absl::Status& s = response.status();
    PrintError(
        kCommand,
        DescribeRpcError(
            absl::Status(s.code(), LocateInSources(s.message(), sources)),
            global));
    return kExitFailure;
  }
  std::string out = absl::StrCat("version: ", response->version(), "\n",
                                 "examples: ", response->examples(), "\n");
  absl::StrAppendFormat(&out, "loss_before: %.6f\n", response->loss_before());
  if (response->has_accuracy_before()) {
    absl::StrAppendFormat(&out, "accuracy_before: %.6f\n",
                          response->accuracy_before());
  }
  // Only with holdout examples, so that other updates print as before.
  if (holdout_count > 0)
    absl::StrAppend(&out, "holdout: ", holdout_count, "\n");
  // Only under a QUARANTINE guardrail's action, likewise.
  if (response->quarantined()) absl::StrAppend(&out, "quarantined: true\n");
  if (response->quarantine_released() > 0) {
    absl::StrAppend(
        &out, "quarantine_released: ", response->quarantine_released(), "\n");
  }
  if (response->quarantine_dropped() > 0) {
    absl::StrAppend(
        &out, "quarantine_dropped: ", response->quarantine_dropped(), "\n");
  }
  absl::StrAppend(&out, vw_labels);
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int RunTrain(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "train";
  GlobalOptions global = defaults;
  int64_t batch = 256;
  int64_t in_flight = 4;
  absl::Duration progress_interval = absl::Seconds(1);
  LearnFlags learn;
  FileFlags file_flags;
  FlagSet flags(
      "lepton_client train MODEL FILE [flags]",
      "Streams the examples of FILE (CSV, LIBSVM or VW) into MODEL over one "
      "StreamUpdate call, --batch examples per request, with up to "
      "--in_flight requests awaiting their answers. A thread of its own reads "
      "and parses FILE a few batches ahead (bounded memory), so that the "
      "file is read while requests are sent and the server learns.\n"
      "On stderr, a progress line shows examples/s and this run's running "
      "progressive loss and accuracy (each example scored by the model before "
      "it learned from it). At the end, prints key: value lines: examples, "
      "requests, seconds, examples_per_second (reading the file included), "
      "version (the model's after the last request), progressive_loss and "
      "progressive_accuracy (classifiers) of this run, and vw_labels when "
      "FILE's Vowpal Wabbit labels were mapped (see --vw_labels).\n"
      "If the server rejects a request, the error names its line in FILE; "
      "every request before it stays applied, none after it.\n"
      "Holdout examples: --holdout_file's examples are streamed first, all "
      "as holdout examples (so that a --guardrail=reject model has its "
      "validation set before it learns), then FILE's, of which "
      "--holdout_fraction picks some as holdout. The model keeps them as its "
      "validation set and never trains on them: they count in examples and "
      "the final holdout: N line, not in progressive_loss. A guardrail "
      "refusal (FAILED_PRECONDITION) ends the run like any rejected "
      "request, exit status 1.\n"
      "--plot=FILE.svg draws this run's progressive loss and accuracy over "
      "its examples, with a marker for each of the model's drifts, drift "
      "warnings, policy actions and refused or quarantined updates during "
      "the run (from a WatchModel call), as one self-contained SVG file, "
      "written at the end (also when the run fails, with the error) and, "
      "after a run that succeeded, named by a final plot: line.");
  flags.Int("batch", &batch, "examples per request");
  std::string plot_path;
  flags.String("plot", &plot_path,
               "write an SVG plot of this run to this file; empty: none");
  flags.Int("in_flight", &in_flight,
            "requests sent but not yet answered, at most");
  int64_t read_threads = kDefaultReadThreads;
  AddReadThreadsFlag(&flags, &read_threads);
  flags.Duration("progress", &progress_interval,
                 "how often to print the progress line; 0: never");
  HoldoutFlags holdout;
  AddHoldoutFlags(&flags, &holdout);
  AddLearnFlags(&flags, &learn);
  AddFileFlags(&flags, &file_flags);
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 2, 2, &exit_code);
  if (!positional) return exit_code;
  const std::string& model = (*positional)[0];
  const std::string& file = (*positional)[1];
  if (batch < 1 || batch > (1 << 20) || in_flight < 1 || in_flight > 1024) {
    PrintError(kCommand, batch < 1 || batch > (1 << 20)
                             ? "--batch: must be in [1, 2^20]"
                             : "--in_flight: must be in [1, 1024]");
    return kExitUsage;
  }
  absl::StatusOr<int64_t> period = HoldoutPeriod(holdout.fraction);
  if (!period.ok()) {
    PrintError(kCommand,
               absl::StrCat("--holdout_fraction: ", period.status().message()));
    return kExitUsage;
  }
  if (!ReadThreadsAreValid(kCommand, read_threads)) return kExitUsage;
  if (flags.IsSet("plot")) {
    if (absl::Status s = CheckPlotPath(plot_path); !s.ok()) {
      PrintError(kCommand, absl::StrCat("--plot: ", s.message()));
      return kExitUsage;
    }
  }
  v1::UpdateRequest request;
  request.set_model(model);
  if (!ApplyLearnFlags(kCommand, learn, &request)) return kExitUsage;

  v1::ModelInfo info;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  // Opened up front, so that a missing file is found before anything is
  // sent.
  std::unique_ptr<ExampleReader> holdout_reader;
  if (!holdout.file.empty()) {
    holdout_reader =
        OpenExampleFileOrReport(kCommand, file_flags, holdout.file, info);
    if (holdout_reader == nullptr) return kExitFailure;
  }
  std::unique_ptr<ExampleReader> reader =
      OpenExampleFileOrReport(kCommand, file_flags, file, info);
  if (reader == nullptr) return kExitFailure;
  std::unique_ptr<RunPlot> plot;
  std::unique_ptr<TrainWatch> watch;
  if (!plot_path.empty()) {
    const bool classifier = info.spec().type() != v1::LINEAR_REGRESSION;
    plot = std::make_unique<RunPlot>(RunPlot::Options{
        .title = absl::StrCat("model ", model, ": train ", file),
        .subtitle = "Progressive validation: each example's loss and "
                    "accuracy under the model before it learned from it.",
        .x_label = "examples trained on in this run",
        .classifier = classifier,
        .loss_name = classifier ? "log loss" : "squared loss",
        .running_label = "running mean over the run"});
    watch = std::make_unique<TrainWatch>(client.get(), model, plot.get());
  }

  RunTotals totals;
  Progress progress(progress_interval);
  // Each request sent and not yet answered, oldest first: its file and lines
  // and how many holdout examples it carries. When the server rejects one,
  // it is the front.
  struct Pending {
    const std::string* file;
    std::vector<int64_t> lines;
    int64_t holdout;
  };
  std::deque<Pending> pending;
  UpdateStreamOptions stream_options;
  stream_options.max_in_flight = static_cast<int>(in_flight);
  stream_options.on_response = [&](int64_t, const v1::UpdateResponse& r) {
    const int64_t trained_before = totals.trained();
    totals.Add(r, pending.front().holdout);
    if (plot != nullptr) {
      const int64_t trained = totals.trained() - trained_before;
      plot->AddInterval(
          static_cast<double>(trained_before),
          static_cast<double>(totals.trained()), static_cast<double>(trained),
          r.loss_before() * trained,
          r.has_accuracy_before()
              ? std::optional<double>(r.accuracy_before() * trained)
              : std::nullopt);
    }
    pending.pop_front();
    progress.Update(totals);
  };
  const Clock::time_point start = Clock::now();
  std::unique_ptr<UpdateStream> stream =
      client->StartUpdateStream(stream_options);
  absl::Status read_status;
  // Streams one file; false once the run must stop (a bad line, which sets
  // read_status, or a failed stream, which Finish() explains). The file is
  // read and parsed on the prefetcher's thread, a few batches ahead, while
  // this thread sends.
  auto stream_file = [&](std::unique_ptr<ExampleReader> from,
                         const std::string& path, bool all_holdout) {
    ExamplePrefetcher prefetcher(std::move(from),
                                 {.batch_size = static_cast<int>(batch),
                                  .depth = 4,
                                  .threads = static_cast<int>(read_threads)});
    int64_t position = 0;
    while (true) {
      absl::StatusOr<ExampleBatch*> next = prefetcher.Next();
      if (!next.ok()) {
        read_status = next.status();
        return false;
      }
      ExampleBatch* examples = *next;
      if (examples == nullptr) return true;
      int64_t holdout_in_request = 0;
      for (v1::Example& e : examples->examples) {
        if (all_holdout) {
          e.set_holdout(true);
        } else {
          MarkHoldout(*period, position, &e);
        }
        ++position;
        holdout_in_request += e.holdout();
      }
      pending.push_back({&path, examples->lines, holdout_in_request});
      // The batch's examples go into the request and back without a copy:
      // Send() serializes them before it returns.
      request.mutable_examples()->Swap(&examples->examples);
      const bool sent = stream->Send(request).ok();
      request.mutable_examples()->Swap(&examples->examples);
      if (!sent) return false;
    }
  };
  const std::string vw_labels = VwLabelsLine(*reader);
  if (holdout_reader == nullptr ||
      stream_file(std::move(holdout_reader), holdout.file,
                  /*all_holdout=*/true)) {
    stream_file(std::move(reader), file, /*all_holdout=*/false);
  }
  // Even after a bad line, what was sent is being applied: wait for it, so
  // that the report below says how far the model got.
  const absl::Status stream_status = stream->Finish();
  const double seconds = SecondsSince(start);
  progress.Done();
  if (plot != nullptr) {
    watch->Finish(totals.version, absl::IsFailedPrecondition(stream_status));
    plot->AddNote(absl::StrFormat(
        "%d examples in %d requests (%d trained on, %d holdout), %.1f s; "
        "the model's version after the run: %d.",
        totals.examples, totals.requests, totals.trained(), totals.holdout,
        seconds, totals.version));
    const absl::Status& ended =
        !stream_status.ok() ? stream_status : read_status;
    if (!ended.ok()) {
      plot->AddNote(absl::StrCat("The run stopped: ", ended.message(), " (",
                                 absl::StatusCodeToString(ended.code()), ")"));
    }
    if (absl::Status s = plot->Write(plot_path); !s.ok()) {
      PrintError(kCommand, absl::StrCat("--plot: ", s.message()));
      return kExitFailure;
    }
  }

  const std::string applied =
      totals.examples == 0
          ? std::string()
          : absl::StrCat("; ", totals.examples,
                         " examples were applied before it (version ",
                         totals.version, ")");
  if (!stream_status.ok()) {
    std::string message(stream_status.message());
    if (!pending.empty()) {
      message = LocateError(message, "examples", *pending.front().file,
                            pending.front().lines);
    }
    PrintError(
        kCommand,
        absl::StrCat(DescribeRpcError(
                         absl::Status(stream_status.code(), message), global),
                     applied));
    return kExitFailure;
  }
  if (!read_status.ok()) {
    PrintError(kCommand, absl::StrCat(read_status.message(), applied));
    return kExitFailure;
  }
  if (totals.examples == 0) {
    PrintError(kCommand, absl::StrCat(file, ": no examples"));
    return kExitFailure;
  }
  std::string out;
  absl::StrAppend(&out, "model: ", model, "\n", "examples: ", totals.examples,
                  "\n", "requests: ", totals.requests, "\n");
  absl::StrAppendFormat(&out, "seconds: %.3f\nexamples_per_second: %.0f\n",
                        seconds, totals.examples / seconds);
  absl::StrAppend(&out, "version: ", totals.version, "\n");
  absl::StrAppendFormat(&out, "progressive_loss: %.4f\n", totals.loss());
  if (totals.has_accuracy) {
    absl::StrAppendFormat(&out, "progressive_accuracy: %.4f\n",
                          totals.accuracy());
  }
  // Only with holdout examples, so that other runs print as before.
  if (totals.holdout > 0)
    absl::StrAppend(&out, "holdout: ", totals.holdout, "\n");
  if (totals.quarantined > 0)
    absl::StrAppend(&out, "quarantined_requests: ", totals.quarantined, "\n");
  absl::StrAppend(&out, vw_labels);
  if (plot != nullptr) absl::StrAppend(&out, "plot: ", plot_path, "\n");
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace lepton::client
