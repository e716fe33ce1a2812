#include "client/cli/cli_common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lepton::client {

void AddGlobalFlags(FlagSet* flags, GlobalOptions* options) {
  flags->String("target", &options->target,
                "the server, host:port (or any gRPC target URI)");
  flags->Duration("deadline", &options->deadline,
                  "deadline of each call except a train stream; inf: none");
  flags->Int("max_message_bytes", &options->max_message_bytes,
             "largest request or response, in bytes (the server has its own "
             "limit)");
  flags->String("tls_ca", &options->tls_ca,
                "PEM CA certificate(s) to verify the server with; turns on "
                "TLS");
  flags->String("tls_cert", &options->tls_cert,
                "PEM client certificate, for servers that require one (mutual "
                "TLS); needs --tls_key");
  flags->String("tls_key", &options->tls_key, "PEM private key of --tls_cert");
  flags->String("tls_server_name", &options->tls_server_name,
                "the name to expect in the server's certificate, instead of "
                "the --target host");
  flags->String("token", &options->token,
                "bearer token sent as 'authorization: Bearer ...' (visible "
                "to other local users in ps; prefer --token_file)");
  flags->String("token_file", &options->token_file,
                "file whose first line is the bearer token");
}

namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          absl::string_view flag) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read ", path,
                                            ": ", std::strerror(errno)));
  }
  std::string contents;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    contents.append(buffer, n);
  }
  const bool failed = std::ferror(file);
  std::fclose(file);
  if (failed) {
    return absl::DataLossError(
        absl::StrCat("--", flag, ": error reading ", path));
  }
  return contents;
}

absl::Status SetSecurity(const GlobalOptions& options, ClientOptions* client) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key: both or neither");
  }
  client->tls.enabled = !options.tls_ca.empty() || !options.tls_cert.empty();
  if (!options.tls_server_name.empty() && !client->tls.enabled) {
    return absl::InvalidArgumentError(
        "--tls_server_name: needs --tls_ca (or --tls_cert)");
  }
  client->tls.server_name = options.tls_server_name;
  if (!options.tls_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadWholeFile(options.tls_ca, "tls_ca");
    if (!ca.ok()) return ca.status();
    client->tls.root_certs = *std::move(ca);
  }
  if (!options.tls_cert.empty()) {
    absl::StatusOr<std::string> cert =
        ReadWholeFile(options.tls_cert, "tls_cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadWholeFile(options.tls_key, "tls_key");
    if (!key.ok()) return key.status();
    client->tls.cert_chain = *std::move(cert);
    client->tls.private_key = *std::move(key);
  }
  if (!options.token.empty() && !options.token_file.empty()) {
    return absl::InvalidArgumentError("--token and --token_file: at most one");
  }
  std::string token = options.token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> text =
        ReadWholeFile(options.token_file, "token_file");
    if (!text.ok()) return text.status();
    const absl::string_view first =
        absl::string_view(*text).substr(0, text->find('\n'));
    token = std::string(absl::StripAsciiWhitespace(first));
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--token_file: ", options.token_file, ": first line is empty"));
    }
  }
  for (char c : token) {
    // What a header value can carry; never echoed (it is a secret).
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "--token: must be printable ASCII without spaces");
    }
  }
  client->token = std::move(token);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClientOptions> ToClientOptions(const GlobalOptions& options) {
  if (options.max_message_bytes < 1024 ||
      options.max_message_bytes > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes: must be in [1024, 2^31), got ",
                     options.max_message_bytes));
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--deadline: must be positive");
  }
  ClientOptions client;
  client.max_message_bytes = static_cast<int32_t>(options.max_message_bytes);
  client.deadline = options.deadline;
  if (absl::Status s = SetSecurity(options, &client); !s.ok()) return s;
  return client;
}

std::unique_ptr<Client> MakeClient(absl::string_view command,
                                   const GlobalOptions& options,
                                   int* exit_code) {
  absl::StatusOr<ClientOptions> client_options = ToClientOptions(options);
  if (!client_options.ok()) {
    PrintError(command, client_options.status().message());
    // A TLS or token file that cannot be read is a failure, not bad usage.
    *exit_code = absl::IsInvalidArgument(client_options.status())
                     ? kExitUsage
                     : kExitFailure;
    return nullptr;
  }
  return std::make_unique<Client>(options.target, *client_options);
}

std::unique_ptr<Client> ConnectToModel(absl::string_view command,
                                       const GlobalOptions& options,
                                       const std::string& model,
                                       v1::ModelInfo* info, int* exit_code) {
  std::unique_ptr<Client> client = MakeClient(command, options, exit_code);
  if (client == nullptr) return nullptr;
  absl::StatusOr<v1::ModelInfo> got = client->GetModel(model);
  if (!got.ok()) {
    PrintError(command, DescribeRpcError(got.status(), options));
    *exit_code = kExitFailure;
    return nullptr;
  }
  *info = *std::move(got);
  return client;
}

void PrintError(absl::string_view command, absl::string_view message) {
  std::fprintf(stderr, "lepton_client: %s: %s\n", std::string(command).c_str(),
               std::string(message).c_str());
}

std::string DescribeRpcError(const absl::Status& status,
                             const GlobalOptions& options) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::StrCat("server at ", options.target,
                          " unavailable: ", status.message(), " (UNAVAILABLE)");
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat(
          "no answer from the server at ", options.target,
          " within --deadline=", absl::FormatDuration(options.deadline), ": ",
          status.message(), " (DEADLINE_EXCEEDED)");
    default:
      return absl::StrCat(status.message(), " (",
                          absl::StatusCodeToString(status.code()), ")");
  }
}

std::optional<std::vector<std::string>> ParseCommandArgs(
    absl::string_view command, FlagSet* flags,
    const std::vector<std::string>& args, size_t min_args, size_t max_args,
    int* exit_code) {
  absl::StatusOr<std::vector<std::string>> positional = flags->Parse(args);
  if (flags->help()) {
    std::fputs(flags->Usage().c_str(), stdout);
    *exit_code = kExitOk;
    return std::nullopt;
  }
  if (!positional.ok()) {
    PrintError(command, positional.status().message());
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (positional->size() < min_args || positional->size() > max_args) {
    PrintError(command,
               absl::StrCat("expected ",
                            min_args == max_args
                                ? absl::StrCat(min_args)
                                : absl::StrCat(min_args, " to ", max_args),
                            " argument(s), got ", positional->size(),
                            " (see --help)"));
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  return *std::move(positional);
}

void AddFileFlags(FlagSet* flags, FileFlags* file_flags) {
  flags->String("format", &file_flags->format,
                "csv (label,x0,x1,...: exactly 1 + D fields), libsvm (label "
                "idx:val ...), vw (label |ns name name:val ...: named "
                "features), or auto: from the extension (.csv, .libsvm, "
                ".svm, .vw)");
  flags->Bool("one_based", &file_flags->one_based,
              "libsvm: indices start at 1 (libsvm's tools), not 0");
  flags->Bool("header", &file_flags->header,
              "csv: the first line is a header; skip it");
  flags->Bool("vw_labels", &file_flags->vw_labels,
              "vw: the labels are Vowpal Wabbit's (-1/1 for a logistic "
              "model, 1..K for a softmax one) and are mapped to Lepton's "
              "(0/1, 0..K-1); without it they are mapped only when the file "
              "has a label that only VW's convention explains (-1, or K), "
              "which is then said on stderr");
}

absl::StatusOr<ExampleFileOptions> ToFileOptions(const FileFlags& file_flags,
                                                 absl::string_view path,
                                                 int64_t num_features) {
  ExampleFileOptions options;
  absl::StatusOr<FileFormat> format = file_flags.format == "auto"
                                          ? FileFormatOfPath(path)
                                          : ParseFileFormat(file_flags.format);
  if (!format.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(format.status().message(),
                     file_flags.format == "auto" ? " with --format" : ""));
  }
  options.format = *format;
  if (file_flags.vw_labels && options.format != FileFormat::kVw) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vw_labels: only for the vw format, and ", path, " is read as ",
        options.format == FileFormat::kCsv ? "csv" : "libsvm"));
  }
  options.num_features = num_features;
  options.one_based = file_flags.one_based;
  options.header = file_flags.header;
  return options;
}

namespace {

// Decides whether `path`'s VW labels are mapped (see OpenExampleFile).
absl::Status DecideVwLabels(const FileFlags& file_flags,
                            const std::string& path, const v1::ModelSpec& spec,
                            ExampleFileOptions* options, std::string* note) {
  const VwLabels vw = VwLabelsFor(spec.type());
  if (vw == VwLabels::kAsIs) return absl::OkStatus();  // linear: the same
  const std::string mapping = DescribeVwLabels(vw, spec.num_classes());
  if (file_flags.vw_labels) {
    options->vw_labels = vw;
    *note = absl::StrCat(path, ": VW labels, ", mapping, " (--vw_labels)");
    return absl::OkStatus();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  absl::StatusOr<VwLabelScan> scan =
      DetectVwLabels(&in, spec.type(), spec.num_classes());
  if (!scan.ok()) {
    return absl::Status(scan.status().code(),
                        absl::StrCat(path, ":", scan.status().message()));
  }
  if (scan->labels != VwLabels::kAsIs) {
    options->vw_labels = scan->labels;
    *note = absl::StrCat(path, ": VW labels, ", mapping, ": line ", scan->line,
                         " has label ", scan->label,
                         ", which only VW's convention has");
  } else if (scan->ambiguous) {
    *note =
        absl::StrCat(path, ": every label is in 1..", spec.num_classes() - 1,
                     ": read as Lepton's classes; if they are VW's 1..",
                     spec.num_classes(), ", pass --vw_labels");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExampleReader>> OpenExampleFile(
    const FileFlags& file_flags, const std::string& path,
    const v1::ModelInfo& info, std::string* note) {
  absl::StatusOr<ExampleFileOptions> options =
      ToFileOptions(file_flags, path, info.spec().num_features());
  if (!options.ok()) return options.status();
  options->num_classes = info.spec().num_classes();
  std::string vw_note;
  if (options->format == FileFormat::kVw) {
    if (absl::Status s =
            DecideVwLabels(file_flags, path, info.spec(), &*options, &vw_note);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
      ExampleReader::Open(path, *options);
  if (reader.ok() && note != nullptr) *note = std::move(vw_note);
  return reader;
}

std::unique_ptr<ExampleReader> OpenExampleFileOrReport(
    absl::string_view command, const FileFlags& file_flags,
    const std::string& path, const v1::ModelInfo& info) {
  std::string note;
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
      OpenExampleFile(file_flags, path, info, &note);
  if (!reader.ok()) {
    PrintError(command, reader.status().message());
    return nullptr;
  }
  if (!note.empty()) PrintError(command, note);
  return *std::move(reader);
}

void AddReadThreadsFlag(FlagSet* flags, int64_t* read_threads) {
  flags->Int("read_threads", read_threads,
             "threads that parse FILE, a few batches ahead of the requests "
             "(with more than 1, one more cuts the file into batches); more "
             "help when the server runs on other cores");
}

bool ReadThreadsAreValid(absl::string_view command, int64_t read_threads) {
  if (read_threads >= 1 && read_threads <= 64) return true;
  PrintError(command, "--read_threads: must be in [1, 64]");
  return false;
}

std::string VwLabelsLine(const ExampleReader& reader) {
  const ExampleFileOptions& options = reader.options();
  if (options.format != FileFormat::kVw ||
      options.vw_labels == VwLabels::kAsIs) {
    return "";
  }
  return absl::StrCat(
      "vw_labels: ", DescribeVwLabels(options.vw_labels, options.num_classes),
      "\n");
}

absl::StatusOr<int> ReadExamples(
    ExampleReader* reader, int max,
    google::protobuf::RepeatedPtrField<v1::Example>* examples,
    std::vector<int64_t>* lines) {
  int n = 0;
  v1::Example example;
  while (n < max) {
    absl::StatusOr<bool> more = reader->Next(&example);
    if (!more.ok()) return more.status();
    if (!*more) break;
    // Swapping hands over the arrays without copying, and gives `example`
    // the recycled ones of a cleared element to fill next.
    examples->Add()->Swap(&example);
    lines->push_back(reader->line());
    ++n;
  }
  return n;
}

absl::StatusOr<v1::ModelType> ParseModelType(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "linear" || lower == "linear_regression") {
    return v1::LINEAR_REGRESSION;
  }
  if (lower == "logistic" || lower == "logistic_regression") {
    return v1::LOGISTIC_REGRESSION;
  }
  if (lower == "softmax" || lower == "softmax_regression") {
    return v1::SOFTMAX_REGRESSION;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown model type \"", text, "\" (linear, logistic or softmax)"));
}

absl::StatusOr<v1::OptimizerKind> ParseOptimizerKind(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "adagrad") return v1::ADAGRAD;
  if (lower == "sgd") return v1::SGD;
  if (lower == "ftrl") return v1::FTRL;
  if (lower == "adam") return v1::ADAM;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown optimizer \"", text, "\" (adagrad, sgd, ftrl or adam)"));
}

absl::StatusOr<v1::DriftDetectorKind> ParseDriftDetector(
    absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "adwin") return v1::ADWIN;
  if (lower == "page_hinkley") return v1::PAGE_HINKLEY;
  if (lower == "none" || lower == "no_drift_detector") {
    return v1::NO_DRIFT_DETECTOR;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown drift detector \"", text, "\" (adwin, page_hinkley or none)"));
}

absl::StatusOr<v1::DriftPolicy> ParseDriftPolicy(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "alert") return v1::ALERT;
  if (lower == "boost") return v1::BOOST;
  if (lower == "challenger") return v1::CHALLENGER;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown drift policy \"", text, "\" (alert, boost or challenger)"));
}

absl::StatusOr<v1::GuardrailPolicy> ParseGuardrailPolicy(
    absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "off" || lower == "guardrail_off") return v1::GUARDRAIL_OFF;
  if (lower == "reject" || lower == "guardrail_reject") {
    return v1::GUARDRAIL_REJECT;
  }
  if (lower == "quarantine" || lower == "guardrail_quarantine") {
    return v1::GUARDRAIL_QUARANTINE;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown guardrail \"", text, "\" (off, reject or quarantine)"));
}

std::optional<int64_t> ItemIndexOfError(absl::string_view message,
                                        absl::string_view field) {
  if (!absl::ConsumePrefix(&message, field) ||
      !absl::ConsumePrefix(&message, "[")) {
    return std::nullopt;
  }
  const size_t close = message.find(']');
  int64_t index = 0;
  if (close == absl::string_view::npos ||
      !absl::SimpleAtoi(message.substr(0, close), &index) || index < 0) {
    return std::nullopt;
  }
  return index;
}

std::string LocateError(absl::string_view message, absl::string_view field,
                        absl::string_view file,
                        const std::vector<int64_t>& lines) {
  const std::optional<int64_t> index = ItemIndexOfError(message, field);
  if (!index.has_value() || *index >= static_cast<int64_t>(lines.size())) {
    return std::string(message);
  }
  return absl::StrCat(file, ":", lines[*index], ": ", message);
}

}  // namespace lepton::client
