// The lepton_client commands. Each takes the arguments that follow its name
// on the command line and the global options given before it (which the
// command's own flags may override), and returns the process's exit status
// (cli_common.h: 0 success, 1 failure, 2 usage error).
//
//   commands_models.cc  create, list, info, delete, health
//   commands_predict.cc predict, eval
//   commands_learn.cc   update, train
//   commands_versions.cc rollback, add-classes, export, import
//   commands_watch.cc   watch
//
// Thread safety: each command runs on the calling thread and writes to stdout
// and stderr; run one at a time.
#ifndef LEPTON_CLIENT_CLI_COMMANDS_H_
#define LEPTON_CLIENT_CLI_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/cli_common.h"
#include "lepton/v1/lepton.pb.h"

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
int RunRollback(const CommandArgs& args, const GlobalOptions& global);
int RunAddClasses(const CommandArgs& args, const GlobalOptions& global);
int RunExport(const CommandArgs& args, const GlobalOptions& global);
int RunImport(const CommandArgs& args, const GlobalOptions& global);
int RunWatch(const CommandArgs& args, const GlobalOptions& global);

// What `info` prints, as key: value lines on stdout (also the output of
// create, rollback, add-classes and import).
void PrintModelInfo(const v1::ModelInfo& info);

// The line `watch` prints for an event: "KIND version=N example=N", then
// " skipped_versions=N" and " dropped_events=N" when not 0, then
// " detail=TEXT" when there is one.
std::string FormatModelEvent(const v1::ModelEvent& event);

// The longest UpdateRequest.update_id the server accepts, in bytes.
inline constexpr size_t kMaxUpdateIdBytes = 128;

// `update --prediction_ids`: "ID:LABEL[:WEIGHT],..." (delayed labels for
// predictions made with `predict --return_ids`) appended to *examples as
// {prediction_id, label, weight} examples without features.
// INVALID_ARGUMENT naming the bad item otherwise.
absl::Status ParsePredictionLabels(
    absl::string_view text,
    google::protobuf::RepeatedPtrField<v1::Example>* examples);

// `update` and `train --holdout_fraction=F`: the example at position i of
// FILE (from 0) is sent as a holdout example iff period > 0 and
// i % period == 0, period = round(1/F), or 0 (none) for F = 0. Deterministic,
// so the same file and F always hold out the same examples.
// INVALID_ARGUMENT unless F is in [0, 1].
absl::StatusOr<int64_t> HoldoutPeriod(double fraction);

// Parts of rollback, export and import, exposed for tests.
//
// A model version given as a positional argument: a positive integer.
// INVALID_ARGUMENT otherwise, naming `what` ("VERSION: ...").
absl::StatusOr<uint64_t> ParseVersionArgument(absl::string_view what,
                                              absl::string_view text);
// Writes `data` to `path` ("-": stdout) as bytes. A file is written to
// "PATH.tmp", flushed to disk, then renamed over `path`, so `path` never holds
// a partial blob; on failure the .tmp file is removed and `path` is left as
// it was. The error message starts with the path.
absl::Status WriteBlobFile(const std::string& path, absl::string_view data);
// The whole content of `path` ("-": stdin), as bytes. The error message starts
// with the path.
absl::StatusOr<std::string> ReadBlobFile(const std::string& path);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLI_COMMANDS_H_
