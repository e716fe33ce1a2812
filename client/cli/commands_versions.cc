// rollback, export and import: the commands about a model's versions and its
// portable, checksummed file form (ExportModel / ImportModel blobs).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"

namespace lepton::client {
namespace {

// "PATH: what: strerror(errno)".
absl::Status ErrnoError(absl::string_view path, absl::string_view what) {
  const int error = errno;
  return absl::InternalError(
      absl::StrCat(path, ": ", what, ": ", std::strerror(error)));
}

// Writes all of `data` to `fd`, retrying short writes and EINTR.
bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads `fd` to its end, appending to `out`.
bool ReadAll(int fd, std::string* out) {
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    out->append(buffer, static_cast<size_t>(n));
  }
}

// A failed RPC of export or import: DescribeRpcError(), plus what to do about
// a blob larger than the message limit.
std::string DescribeBlobRpcError(const absl::Status& status,
                                 const GlobalOptions& global) {
  std::string message = DescribeRpcError(status, global);
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    absl::StrAppend(&message, "; a larger --max_message_bytes may help (the ",
                    "server's --max_message_bytes bounds it too)");
  }
  return message;
}

}  // namespace

absl::StatusOr<uint64_t> ParseVersionArgument(absl::string_view what,
                                              absl::string_view text) {
  uint64_t version = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9' ||
      !absl::SimpleAtoi(text, &version) || version == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": \"", text, "\" is not a positive integer"));
  }
  return version;
}

absl::Status WriteBlobFile(const std::string& path, absl::string_view data) {
  if (path == "-") {
    // Whatever stdio holds goes first; the blob bypasses its buffer.
    if (std::fflush(stdout) != 0 || !WriteAll(STDOUT_FILENO, data)) {
      return ErrnoError("-", "cannot write to stdout");
    }
    return absl::OkStatus();
  }
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(path, absl::StrCat("cannot create ", tmp));
  absl::Status status;
  if (!WriteAll(fd, data)) {
    status = ErrnoError(path, absl::StrCat("cannot write ", tmp));
  } else if (::fsync(fd) != 0) {
    status = ErrnoError(path, absl::StrCat("cannot flush ", tmp));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = ErrnoError(path, absl::StrCat("cannot close ", tmp));
  }
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(path, absl::StrCat("cannot rename ", tmp, " to it"));
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

absl::StatusOr<std::string> ReadBlobFile(const std::string& path) {
  std::string data;
  if (path == "-") {
    if (!ReadAll(STDIN_FILENO, &data)) {
      return ErrnoError("-", "cannot read stdin");
    }
    return data;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open");
  const bool read = ReadAll(fd, &data);
  absl::Status status =
      read ? absl::OkStatus() : ErrnoError(path, "cannot read");
  ::close(fd);
  if (!status.ok()) return status;
  return data;
}

int RunRollback(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "rollback";
  GlobalOptions global = defaults;
  FlagSet flags(
      "lepton_client rollback MODEL VERSION",
      "Publishes the state of MODEL's earlier VERSION (weights, optimizer "
      "state, counters) again, as the next version, and prints the model as "
      "`info` does. VERSION must be retained or checkpointed: `info` lists "
      "retained_versions and checkpointed_versions; any other is NOT_FOUND.");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 2, 2, &exit_code);
  if (!positional) return exit_code;
  absl::StatusOr<uint64_t> version =
      ParseVersionArgument("VERSION", (*positional)[1]);
  if (!version.ok()) {
    PrintError(kCommand, version.status().message());
    return kExitUsage;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<v1::ModelInfo> info =
      client->Rollback((*positional)[0], *version);
  if (!info.ok()) {
    PrintError(kCommand, DescribeRpcError(info.status(), global));
    return kExitFailure;
  }
  PrintModelInfo(*info);
  return kExitOk;
}

int RunAddClasses(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "add-classes";
  GlobalOptions global = defaults;
  std::string model;
  int64_t num_classes = 0;
  FlagSet flags(
      "lepton_client add-classes --model=NAME --num_classes=K",
      "Grows the softmax model NAME to K classes in all (not K more): the new "
      "classes are labels from its current number up to K - 1, usable by "
      "updates from then on. Every existing weight is kept; the new classes "
      "start at 0. Publishes a new version and prints the model as `info` "
      "does. K equal to the model's number of classes changes nothing (safe "
      "to retry). Older versions keep their classes, and cannot be rolled "
      "back to. The model may also be given as the one positional argument.");
  flags.String("model", &model, "the model (required)");
  flags.Int("num_classes", &num_classes,
            "K: the new total number of classes (required)");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 0, 1, &exit_code);
  if (!positional) return exit_code;
  if (!positional->empty()) {
    if (!model.empty() && model != (*positional)[0]) {
      PrintError(kCommand, "the model is given twice (MODEL and --model)");
      return kExitUsage;
    }
    model = (*positional)[0];
  }
  if (model.empty()) {
    PrintError(kCommand, "--model: required");
    return kExitUsage;
  }
  if (num_classes < 1 || num_classes > std::numeric_limits<int32_t>::max()) {
    PrintError(kCommand, absl::StrCat("--num_classes: required, a positive "
                                      "integer; got ",
                                      num_classes));
    return kExitUsage;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<v1::ModelInfo> info =
      client->AddClasses(model, static_cast<int32_t>(num_classes));
  if (!info.ok()) {
    PrintError(kCommand, DescribeRpcError(info.status(), global));
    return kExitFailure;
  }
  PrintModelInfo(*info);
  return kExitOk;
}

int RunExport(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "export";
  GlobalOptions global = defaults;
  int64_t version = 0;
  FlagSet flags(
      "lepton_client export MODEL FILE [--version=N]",
      "Saves MODEL (its spec, weights, optimizer state and counters) at its "
      "newest version, or --version, to FILE as a portable, checksummed "
      "binary that `import` reads, on this server or another. The file is "
      "written to FILE.tmp and renamed to FILE once complete, so FILE never "
      "holds a partial model. FILE \"-\" writes to stdout.\n"
      "Prints key: value lines: model, version (the one saved) and bytes; on "
      "stderr when FILE is \"-\".");
  flags.Int("version", &version,
            "the version to save, retained or checkpointed (see `info`); 0: "
            "the newest");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 2, 2, &exit_code);
  if (!positional) return exit_code;
  const std::string& model = (*positional)[0];
  const std::string& file = (*positional)[1];
  if (file.empty()) {
    PrintError(kCommand, "FILE must not be empty (\"-\": stdout)");
    return kExitUsage;
  }
  if (version < 0) {
    PrintError(kCommand, "--version: must be >= 0");
    return kExitUsage;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<v1::ExportModelResponse> exported =
      client->ExportModel(model, static_cast<uint64_t>(version));
  if (!exported.ok()) {
    PrintError(kCommand, DescribeBlobRpcError(exported.status(), global));
    return kExitFailure;
  }
  if (absl::Status s = WriteBlobFile(file, exported->model()); !s.ok()) {
    PrintError(kCommand, s.message());
    return kExitFailure;
  }
  const std::string out =
      absl::StrCat("model: ", model, "\n", "version: ", exported->version(),
                   "\n", "bytes: ", exported->model().size(), "\n");
  std::fputs(out.c_str(), file == "-" ? stderr : stdout);
  return kExitOk;
}

int RunImport(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "import";
  GlobalOptions global = defaults;
  FlagSet flags(
      "lepton_client import MODEL FILE",
      "Creates the model MODEL from FILE, a file `export` wrote (\"-\": "
      "stdin), at the version it holds, and prints it as `info` does. The "
      "file's checksum is verified: a corrupt or incompatible file is "
      "INVALID_ARGUMENT and creates nothing; a MODEL that exists is "
      "ALREADY_EXISTS.");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 2, 2, &exit_code);
  if (!positional) return exit_code;
  const std::string& model = (*positional)[0];
  const std::string& file = (*positional)[1];
  if (model.empty() || file.empty()) {
    PrintError(kCommand, model.empty()
                             ? "MODEL must not be empty"
                             : "FILE must not be empty (\"-\": stdin)");
    return kExitUsage;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<std::string> blob = ReadBlobFile(file);
  if (!blob.ok()) {
    PrintError(kCommand, blob.status().message());
    return kExitFailure;
  }
  absl::StatusOr<v1::ModelInfo> info =
      client->ImportModel(model, *std::move(blob));
  if (!info.ok()) {
    PrintError(kCommand, DescribeBlobRpcError(info.status(), global));
    return kExitFailure;
  }
  PrintModelInfo(*info);
  return kExitOk;
}

}  // namespace lepton::client
