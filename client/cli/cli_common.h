// What the lepton_client commands share: the global flags, the flags that
// describe an example file, error reporting, and mapping a server error about
// "examples[i]" back to the line of the file it came from.
//
// Conventions of every command: results on stdout (key: value lines where
// cheap), one-line errors on stderr as "lepton_client: COMMAND: message",
// exit status 0 on success, 1 on failure, 2 on a usage error.
//
// Thread safety: free functions and plain structs.
#ifndef LEPTON_CLIENT_CLI_CLI_COMMON_H_
#define LEPTON_CLIENT_CLI_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli/cli_flags.h"
#include "client/client.h"
#include "client/example_file.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Flags accepted before the command and by every command.
struct GlobalOptions {
  std::string target = "localhost:50051";
  absl::Duration deadline = absl::Seconds(30);
  int64_t max_message_bytes = 64 << 20;
  // TLS (file names): --tls_ca turns TLS on; --tls_cert and --tls_key add a
  // client certificate (mutual TLS) and turn it on too.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  // The bearer token, or a file holding it (first line); at most one.
  std::string token;
  std::string token_file;
};
void AddGlobalFlags(FlagSet* flags, GlobalOptions* options);
// INVALID_ARGUMENT for options out of range or contradictory; a TLS or token
// file that cannot be read is an error naming it.
absl::StatusOr<ClientOptions> ToClientOptions(const GlobalOptions& options);

// A client of `options.target`. On options out of range prints the error,
// sets *exit_code to 2 (1 for a TLS or token file that cannot be read) and
// returns null.
std::unique_ptr<Client> MakeClient(absl::string_view command,
                                   const GlobalOptions& options,
                                   int* exit_code);

// A client of `options.target` and the description of `model` (which tells
// how to read files for it). On failure prints the error, sets *exit_code
// (2 for options out of range, 1 for a failed GetModel) and returns null.
std::unique_ptr<Client> ConnectToModel(absl::string_view command,
                                       const GlobalOptions& options,
                                       const std::string& model,
                                       v1::ModelInfo* info, int* exit_code);

// Prints "lepton_client: COMMAND: message" on stderr.
void PrintError(absl::string_view command, absl::string_view message);

// A failed RPC, worded for a person: UNAVAILABLE and DEADLINE_EXCEEDED name
// the target ("server at localhost:50051 unavailable: failed to connect ...
// (UNAVAILABLE)"); other codes are "message (CODE)".
std::string DescribeRpcError(const absl::Status& status,
                             const GlobalOptions& options);

// Parses a command's arguments. On --help, prints the usage on stdout and
// sets *exit_code to 0; on a usage error (including a count of positional
// arguments outside [min_args, max_args]) prints it and sets *exit_code to 2.
// Either way returns nullopt; otherwise the positional arguments.
std::optional<std::vector<std::string>> ParseCommandArgs(
    absl::string_view command, FlagSet* flags,
    const std::vector<std::string>& args, size_t min_args, size_t max_args,
    int* exit_code);

// How to read an example file: --format, --one_based, --header,
// --vw_labels.
struct FileFlags {
  std::string format = "auto";
  bool one_based = false;
  bool header = false;
  bool vw_labels = false;
};
void AddFileFlags(FlagSet* flags, FileFlags* file_flags);
// Reader options for `path` and a model of `num_features` features (VW
// labels as written; OpenExampleFile decides about mapping them).
absl::StatusOr<ExampleFileOptions> ToFileOptions(const FileFlags& file_flags,
                                                 absl::string_view path,
                                                 int64_t num_features);

// Opens `path` for the model `info` describes (its num_features, and its
// type and num_classes for VW labels). A .vw file's labels are mapped from
// VW's conventions (vw_labels.h) with --vw_labels, or when the file shows
// them (DetectVwLabels reads it until a label decides); *note, when given,
// then says so in a line for the user ("clicks.vw: VW labels, -1/1 -> 0/1:
// line 3 has label -1"), and stays empty otherwise.
absl::StatusOr<std::unique_ptr<ExampleReader>> OpenExampleFile(
    const FileFlags& file_flags, const std::string& path,
    const v1::ModelInfo& info, std::string* note = nullptr);

// OpenExampleFile(), printing its note (as "lepton_client: COMMAND: note")
// and returning the reader, or printing the error and returning null.
std::unique_ptr<ExampleReader> OpenExampleFileOrReport(
    absl::string_view command, const FileFlags& file_flags,
    const std::string& path, const v1::ModelInfo& info);

// --read_threads, of train and eval: how many threads parse the file
// (example_prefetcher.h), in [1, 64].
inline constexpr int64_t kDefaultReadThreads = 1;
void AddReadThreadsFlag(FlagSet* flags, int64_t* read_threads);
bool ReadThreadsAreValid(absl::string_view command, int64_t read_threads);

// "vw_labels: -1/1 -> 0/1\n" when `reader` maps VW labels, else "": the
// line the commands add to their results.
std::string VwLabelsLine(const ExampleReader& reader);

// Reads up to `max` examples from `reader`, appending them to `examples` and
// the line of each to `lines`. Returns how many (0 at the end of the file).
absl::StatusOr<int> ReadExamples(
    ExampleReader* reader, int max,
    google::protobuf::RepeatedPtrField<v1::Example>* examples,
    std::vector<int64_t>* lines);

// "softmax", "logistic", "linear", or an enum name such as
// "SOFTMAX_REGRESSION".
absl::StatusOr<v1::ModelType> ParseModelType(absl::string_view text);
// "adagrad" or "sgd" (or the enum names).
absl::StatusOr<v1::OptimizerKind> ParseOptimizerKind(absl::string_view text);
// "adwin", "page_hinkley" or "none" (or the enum names).
absl::StatusOr<v1::DriftDetectorKind> ParseDriftDetector(
    absl::string_view text);
// "alert", "boost" or "challenger" (or the enum names).
absl::StatusOr<v1::DriftPolicy> ParseDriftPolicy(absl::string_view text);
// "off" or "reject" (or the enum names).
absl::StatusOr<v1::GuardrailPolicy> ParseGuardrailPolicy(
    absl::string_view text);

// i, if `message` starts with "<field>[i]" (the server's path of a bad item,
// "examples[7].label: ..."); nullopt otherwise.
std::optional<int64_t> ItemIndexOfError(absl::string_view message,
                                        absl::string_view field);

// Where a rejected request's error points in the file: "FILE:LINE: message"
// when the message names item i of `field` and lines[i] exists (the line of
// each item of the request); the message alone otherwise.
std::string LocateError(absl::string_view message, absl::string_view field,
                        absl::string_view file,
                        const std::vector<int64_t>& lines);

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLI_CLI_COMMON_H_
