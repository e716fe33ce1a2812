// predict and eval: the commands that score instances with Predict.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/eval_metrics.h"
#include "client/cli/run_plot.h"
#include "client/example_prefetcher.h"
#include "client/feature_text.h"

namespace lepton::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxBatch = 1 << 20;

// --version and --batch of predict and eval; prints what is wrong.
bool VersionAndBatchAreValid(absl::string_view command, int64_t version,
                             int64_t batch) {
  if (version >= 0 && batch >= 1 && batch <= kMaxBatch) return true;
  PrintError(command, version < 0 ? "--version: must be >= 0"
                                  : "--batch: must be in [1, 2^20]");
  return false;
}

// One output line per instance (see RunPredict's help).
void AppendPrediction(v1::ModelType type, const v1::Prediction& p,
                      std::string* out) {
  if (p.prediction_id() != 0) absl::StrAppend(out, p.prediction_id(), "\t");
  switch (type) {
    case v1::SOFTMAX_REGRESSION:
      absl::StrAppend(out, p.label(), "\t", p.value(), "\t",
                      absl::StrJoin(p.probabilities(), ","), "\n");
      break;
    case v1::LOGISTIC_REGRESSION:
      absl::StrAppend(out, p.label(), "\t", p.value(), "\n");
      break;
    default:
      absl::StrAppend(out, p.value(), "\n");
      break;
  }
}

// Moves the features of `examples` into `request`'s instances (replacing
// what it held) and their labels into `labels`; clears `examples`.
void ToPredictRequest(google::protobuf::RepeatedPtrField<v1::Example>* examples,
                      v1::PredictRequest* request, std::vector<float>* labels) {
  request->clear_instances();
  labels->clear();
  for (v1::Example& e : *examples) {
    request->add_instances()->Swap(e.mutable_features());
    labels->push_back(e.label());
  }
  examples->Clear();
}

// A failed Predict on a batch from `file`: the server's "instances[i]" is
// turned into the file's line. `pinned` is the version this command pinned
// after the first batch (0 if none), for the case it was evicted since.
std::string DescribeBatchError(const absl::Status& status,
                               const GlobalOptions& global,
                               const std::string& file,
                               const std::vector<int64_t>& lines,
                               uint64_t pinned) {
  std::string message = DescribeRpcError(
      absl::Status(status.code(),
                   LocateError(status.message(), "instances", file, lines)),
      global);
  if (pinned != 0 && status.code() == absl::StatusCode::kNotFound) {
    absl::StrAppend(&message, "; version ", pinned,
                    " scored the file's first batch and was evicted since by "
                    "newer updates");
  }
  return message;
}

}  // namespace

int RunPredict(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "predict";
  GlobalOptions global = defaults;
  std::string dense;
  std::string sparse;
  std::string named;
  std::string file;
  int64_t version = 0;
  int64_t min_version = 0;
  int64_t batch = 256;
  FileFlags file_flags;
  FlagSet flags(
      "lepton_client predict MODEL (--dense=X,X,... | --sparse=I:X,I:X,... | "
      "--named='|NS NAME NAME:X ...' | --file=PATH) [flags]",
      "Scores instances with MODEL's newest version, or --version.\n"
      "Prints `version: N`, then one line per instance, fields separated by a "
      "tab:\n"
      "  softmax   label, its probability, the K probabilities (comma-"
      "separated)\n"
      "  logistic  label, the probability of 1\n"
      "  linear    the predicted value\n"
      "With --file (CSV, LIBSVM or VW; its labels are ignored), instances go "
      "in batches, all scored by the version that scored the first.\n"
      "With --return_ids, each line starts with the prediction's id and a "
      "tab: send its label later with `update MODEL "
      "--prediction_ids=ID:LABEL,...`.");
  flags.String("dense", &dense, "one dense instance: exactly D values");
  flags.String("sparse", &sparse,
               "one sparse instance: index:value pairs (0-based indices, "
               "unless --one_based)");
  flags.String("named", &named,
               "one instance of named features, Vowpal Wabbit style: "
               "'|user age:3 city=paris |ad id123' (the server hashes them)");
  flags.String("file", &file, "instances from a CSV, LIBSVM or VW file");
  flags.Int("version", &version, "the version to pin; 0: the newest");
  flags.Int("min_version", &min_version,
            "wait (up to --deadline) until the server has this version, "
            "then answer: read your own writes on another node of a cluster");
  flags.Int("batch", &batch, "--file: instances per Predict request");
  bool return_ids = false;
  flags.Bool("return_ids", &return_ids,
             "ask the server to keep each prediction for a delayed label and "
             "print its id first on its line");
  AddFileFlags(&flags, &file_flags);
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 1, &exit_code);
  if (!positional) return exit_code;
  const std::string& model = (*positional)[0];
  if (flags.IsSet("dense") + flags.IsSet("sparse") + flags.IsSet("named") +
          flags.IsSet("file") !=
      1) {
    PrintError(kCommand,
               "give exactly one of --dense, --sparse, --named, --file");
    return kExitUsage;
  }
  if (!VersionAndBatchAreValid(kCommand, version, batch)) return kExitUsage;
  if (min_version < 0) {
    PrintError(kCommand, "--min_version: must be >= 0");
    return kExitUsage;
  }

  v1::ModelInfo info;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  const v1::ModelType type = info.spec().type();
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(static_cast<uint64_t>(version));
  request.set_min_version(static_cast<uint64_t>(min_version));
  request.set_return_prediction_ids(return_ids);

  if (!flags.IsSet("file")) {
    v1::Features* features = request.add_instances();
    const char* flag = flags.IsSet("dense")    ? "--dense: "
                       : flags.IsSet("sparse") ? "--sparse: "
                                               : "--named: ";
    absl::Status parsed =
        flags.IsSet("dense") ? ParseDenseFeatures(dense, features)
        : flags.IsSet("sparse")
            ? ParseSparseFeatures(sparse, file_flags.one_based,
                                  info.spec().num_features(), features)
            : ParseNamedFeatures(named, features);
    if (!parsed.ok()) {
      PrintError(kCommand, absl::StrCat(flag, parsed.message()));
      return kExitUsage;
    }
    absl::StatusOr<v1::PredictResponse> response = client->Predict(request);
    if (!response.ok()) {
      PrintError(kCommand, DescribeRpcError(response.status(), global));
      return kExitFailure;
    }
    std::string out = absl::StrCat("version: ", response->version(), "\n");
    for (const v1::Prediction& p : response->predictions()) {
      AppendPrediction(type, p, &out);
    }
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  }

  std::unique_ptr<ExampleReader> reader =
      OpenExampleFileOrReport(kCommand, file_flags, file, info);
  if (reader == nullptr) return kExitFailure;
  google::protobuf::RepeatedPtrField<v1::Example> examples;
  std::vector<int64_t> lines;
  std::vector<float> labels;
  uint64_t pinned = 0;
  while (true) {
    lines.clear();
    absl::StatusOr<int> n =
        ReadExamples(reader.get(), static_cast<int>(batch), &examples, &lines);
    if (!n.ok()) {
      PrintError(kCommand, n.status().message());
      return kExitFailure;
    }
    if (*n == 0) break;
    ToPredictRequest(&examples, &request, &labels);
    absl::StatusOr<v1::PredictResponse> response = client->Predict(request);
    if (!response.ok()) {
      PrintError(kCommand, DescribeBatchError(response.status(), global, file,
                                              lines, pinned));
      return kExitFailure;
    }
    std::string out;
    if (pinned == 0) {
      pinned = response->version();
      request.set_version(pinned);
      out = absl::StrCat("version: ", pinned, "\n");
    }
    for (const v1::Prediction& p : response->predictions()) {
      AppendPrediction(type, p, &out);
    }
    std::fputs(out.c_str(), stdout);
  }
  if (pinned == 0) {
    PrintError(kCommand, absl::StrCat(file, ": no examples"));
    return kExitFailure;
  }
  return kExitOk;
}

int RunEval(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "eval";
  GlobalOptions global = defaults;
  int64_t version = 0;
  int64_t batch = 256;
  FileFlags file_flags;
  FlagSet flags(
      "lepton_client eval MODEL FILE [flags]",
      "Scores the labeled examples of FILE (CSV, LIBSVM or VW) with MODEL, "
      "through "
      "Predict in batches, all with one version (the newest when the first "
      "batch is scored, or --version). Prints key: value lines: the version, "
      "examples, accuracy and log_loss (classifiers; natural log) or rmse "
      "(linear regression), seconds and examples_per_second (reading the "
      "file included).\n"
      "--plot=FILE.svg draws the log loss and accuracy (squared error for a "
      "linear model) of each batch and their running mean over FILE, as one "
      "self-contained SVG file, and adds a final plot: line.");
  flags.Int("version", &version, "the version to pin; 0: the newest");
  std::string plot_path;
  flags.String("plot", &plot_path,
               "write an SVG plot of this evaluation to this file; empty: "
               "none");
  flags.Int("batch", &batch, "instances per Predict request");
  int64_t read_threads = kDefaultReadThreads;
  AddReadThreadsFlag(&flags, &read_threads);
  AddFileFlags(&flags, &file_flags);
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 2, 2, &exit_code);
  if (!positional) return exit_code;
  const std::string& model = (*positional)[0];
  const std::string& file = (*positional)[1];
  if (!VersionAndBatchAreValid(kCommand, version, batch) ||
      !ReadThreadsAreValid(kCommand, read_threads)) {
    return kExitUsage;
  }
  if (flags.IsSet("plot")) {
    if (absl::Status s = CheckPlotPath(plot_path); !s.ok()) {
      PrintError(kCommand, absl::StrCat("--plot: ", s.message()));
      return kExitUsage;
    }
  }

  v1::ModelInfo info;
  std::unique_ptr<Client> client =
      ConnectToModel(kCommand, global, model, &info, &exit_code);
  if (client == nullptr) return exit_code;
  std::unique_ptr<ExampleReader> reader =
      OpenExampleFileOrReport(kCommand, file_flags, file, info);
  if (reader == nullptr) return kExitFailure;
  EvalMetrics metrics(info.spec().type(), info.spec().num_classes());
  std::unique_ptr<RunPlot> plot;
  if (!plot_path.empty()) {
    plot = std::make_unique<RunPlot>(RunPlot::Options{
        .title = absl::StrCat("model ", model, ": eval ", file),
        .subtitle = "Each batch scored by Predict, all by one version.",
        .x_label = absl::StrCat("examples of ", file),
        .classifier = metrics.is_classifier(),
        .loss_name = metrics.is_classifier() ? "log loss" : "squared error",
        .progressive = false,
        .running_label = "running mean over the file",
        .markers = false});
  }
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(static_cast<uint64_t>(version));
  std::vector<float> labels;
  uint64_t pinned = 0;
  const std::string vw_labels = VwLabelsLine(*reader);
  const Clock::time_point start = Clock::now();
  // The file is read and parsed on the prefetcher's thread while this one
  // waits for Predict.
  ExamplePrefetcher prefetcher(std::move(reader),
                               {.batch_size = static_cast<int>(batch),
                                .threads = static_cast<int>(read_threads)});
  while (true) {
    absl::StatusOr<ExampleBatch*> next = prefetcher.Next();
    if (!next.ok()) {
      PrintError(kCommand, next.status().message());
      return kExitFailure;
    }
    if (*next == nullptr) break;
    google::protobuf::RepeatedPtrField<v1::Example>& examples =
        (*next)->examples;
    const std::vector<int64_t>& lines = (*next)->lines;
    const int n = examples.size();
    // Labels are checked before the call, where the line is still known.
    for (int i = 0; i < n; ++i) {
      if (absl::Status s = metrics.CheckLabel(examples[i].label()); !s.ok()) {
        PrintError(
            kCommand,
            absl::StrCat(file, ":", lines[i], ": ", s.message(), " for a ",
                         v1::ModelType_Name(info.spec().type()), " model"));
        return kExitFailure;
      }
    }
    ToPredictRequest(&examples, &request, &labels);
    absl::StatusOr<v1::PredictResponse> response = client->Predict(request);
    if (!response.ok()) {
      PrintError(kCommand, DescribeBatchError(response.status(), global, file,
                                              lines, pinned));
      return kExitFailure;
    }
    if (response->predictions_size() != n) {
      PrintError(kCommand, absl::StrCat("the server answered ",
                                        response->predictions_size(),
                                        " predictions for ", n, " instances"));
      return kExitFailure;
    }
    if (pinned == 0) {
      pinned = response->version();
      request.set_version(pinned);
    }
    const int64_t count_before = metrics.count();
    const double loss_before = metrics.is_classifier()
                                   ? metrics.loss_sum()
                                   : metrics.squared_error_sum();
    const int64_t correct_before = metrics.correct();
    for (int i = 0; i < n; ++i) {
      if (absl::Status s = metrics.Add(labels[i], response->predictions(i));
          !s.ok()) {
        PrintError(kCommand, s.message());
        return kExitFailure;
      }
    }
    if (plot != nullptr) {
      const double loss_after = metrics.is_classifier()
                                    ? metrics.loss_sum()
                                    : metrics.squared_error_sum();
      plot->AddInterval(
          static_cast<double>(count_before),
          static_cast<double>(metrics.count()),
          static_cast<double>(metrics.count() - count_before),
          loss_after - loss_before,
          static_cast<double>(metrics.correct() - correct_before));
    }
  }
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (metrics.count() == 0) {
    PrintError(kCommand, absl::StrCat(file, ": no examples"));
    return kExitFailure;
  }
  std::string out;
  absl::StrAppend(&out, "model: ", model, "\n", "version: ", pinned, "\n",
                  "examples: ", metrics.count(), "\n");
  if (metrics.is_classifier()) {
    absl::StrAppendFormat(&out, "accuracy: %.4f\nlog_loss: %.4f\n",
                          metrics.accuracy(), metrics.log_loss());
  } else {
    absl::StrAppendFormat(&out, "rmse: %.6g\n", metrics.rmse());
  }
  absl::StrAppendFormat(&out, "seconds: %.3f\nexamples_per_second: %.0f\n",
                        seconds, metrics.count() / seconds);
  absl::StrAppend(&out, vw_labels);
  if (plot != nullptr) {
    plot->AddNote(absl::StrFormat("%d examples by version %d, %.1f s.",
                                  metrics.count(), pinned, seconds));
    if (absl::Status s = plot->Write(plot_path); !s.ok()) {
      PrintError(kCommand, absl::StrCat("--plot: ", s.message()));
      return kExitFailure;
    }
    absl::StrAppend(&out, "plot: ", plot_path, "\n");
  }
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace lepton::client
