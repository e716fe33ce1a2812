// update and train: the commands that send labeled examples.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"

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

// This run's progressive validation, from the responses: each batch's mean
// loss (and accuracy) before the model learned from it, weighted by its
// size. The files carry no example weights, so that is the server's own
// weighting.
struct RunTotals {
  int64_t examples = 0;
  int64_t requests = 0;
  double loss_sum = 0;
  double accuracy_sum = 0;
  bool has_accuracy = false;
  uint64_t version = 0;

  void Add(const v1::UpdateResponse& r) {
    examples += r.examples();
    ++requests;
    loss_sum += r.loss_before() * r.examples();
    if (r.has_accuracy_before()) {
      has_accuracy = true;
      accuracy_sum += r.accuracy_before() * r.examples();
    }
    version = r.version();
  }
  double loss() const { return examples == 0 ? 0 : loss_sum / examples; }
  double accuracy() const {
    return examples == 0 ? 0 : accuracy_sum / examples;
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

}  // namespace

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
      "lepton_client update MODEL (FILE | --prediction_ids=ID:LABEL,...) "
      "[flags]",
      "Sends every example of FILE (CSV or LIBSVM) to MODEL as one Update "
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
      "update's answer, its version included.");
  flags.String("update_id", &update_id,
               "an id of this update, at most 128 bytes (a UUID, say), that "
               "makes a retry apply it at most once; empty: none");
  std::string prediction_labels;
  flags.String("prediction_ids", &prediction_labels,
               "ID:LABEL[:WEIGHT],... labels for earlier predictions, instead "
               "of FILE");
  AddLearnFlags(&flags, &learn);
  AddFileFlags(&flags, &file_flags);
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 2, &exit_code);
  if (!positional) return exit_code;
  const bool by_id = flags.IsSet("prediction_ids");
  if (by_id == (positional->size() == 2)) {
    PrintError(kCommand, "give exactly one of FILE, --prediction_ids");
    return kExitUsage;
  }
  const std::string& model = (*positional)[0];
  const std::string file = by_id ? "--prediction_ids" : (*positional)[1];
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
  std::vector<int64_t> lines;
  if (!by_id) {
    std::unique_ptr<ExampleReader> reader =
        OpenExampleFileOrReport(kCommand, file_flags, file, info);
    if (reader == nullptr) return kExitFailure;
    absl::StatusOr<int> n =
        ReadExamples(reader.get(), std::numeric_limits<int>::max(),
                     request.mutable_examples(), &lines);
    if (!n.ok() || *n == 0) {
      PrintError(kCommand, !n.ok() ? std::string(n.status().message())
                                   : absl::StrCat(file, ": no examples"));
      return kExitFailure;
    }
  }
  absl::StatusOr<v1::UpdateResponse> response = client->Update(request);
  if (!response.ok()) {
    const absl::Status& s = response.status();
    PrintError(
        kCommand,
        DescribeRpcError(
            by_id ? s
                  : absl::Status(s.code(), LocateError(s.message(), "examples",
                                                       file, lines)),
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
      "Streams the examples of FILE (CSV or LIBSVM) into MODEL over one "
      "StreamUpdate call, --batch examples per request, with up to "
      "--in_flight requests awaiting their answers so that the file is read "
      "while the server learns.\n"
      "On stderr, a progress line shows examples/s and this run's running "
      "progressive loss and accuracy (each example scored by the model before "
      "it learned from it). At the end, prints key: value lines: examples, "
      "requests, seconds, examples_per_second (reading the file included), "
      "version (the model's after the last request), progressive_loss and "
      "progressive_accuracy (classifiers) of this run.\n"
      "If the server rejects a request, the error names its line in FILE; "
      "every request before it stays applied, none after it.");
  flags.Int("batch", &batch, "examples per request");
  flags.Int("in_flight", &in_flight,
            "requests sent but not yet answered, at most");
  flags.Duration("progress", &progress_interval,
                 "how often to print the progress line; 0: never");
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
  v1::UpdateRequest request;
  request.set_model(model);
  if (!ApplyLearnFlags(kCommand, learn, &request)) return kExitUsage;

  v1::ModelInfo info;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  std::unique_ptr<ExampleReader> reader =
      OpenExampleFileOrReport(kCommand, file_flags, file, info);
  if (reader == nullptr) return kExitFailure;

  RunTotals totals;
  Progress progress(progress_interval);
  // The file lines of each request sent and not yet answered, oldest first:
  // when the server rejects one, it is the front.
  std::deque<std::vector<int64_t>> pending_lines;
  UpdateStreamOptions stream_options;
  stream_options.max_in_flight = static_cast<int>(in_flight);
  stream_options.on_response = [&](int64_t, const v1::UpdateResponse& r) {
    totals.Add(r);
    pending_lines.pop_front();
    progress.Update(totals);
  };
  const Clock::time_point start = Clock::now();
  std::unique_ptr<UpdateStream> stream =
      client->StartUpdateStream(stream_options);
  absl::Status read_status;
  std::vector<int64_t> lines;
  while (true) {
    request.mutable_examples()->Clear();
    lines.clear();
    absl::StatusOr<int> n = ReadExamples(reader.get(), static_cast<int>(batch),
                                         request.mutable_examples(), &lines);
    if (!n.ok()) {
      read_status = n.status();
      break;
    }
    if (*n == 0) break;
    pending_lines.push_back(lines);
    if (!stream->Send(request).ok()) break;  // Finish() says why
  }
  // Even after a bad line, what was sent is being applied: wait for it, so
  // that the report below says how far the model got.
  const absl::Status stream_status = stream->Finish();
  const double seconds = SecondsSince(start);
  progress.Done();

  const std::string applied =
      totals.examples == 0
          ? std::string()
          : absl::StrCat("; ", totals.examples,
                         " examples were applied before it (version ",
                         totals.version, ")");
  if (!stream_status.ok()) {
    std::string message(stream_status.message());
    if (!pending_lines.empty()) {
      message = LocateError(message, "examples", file, pending_lines.front());
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
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace lepton::client
