#include "server/access_control.h"

#include <openssl/sha.h>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/config_file.h"

namespace lepton::server {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenLength = 512;
constexpr absl::string_view kBearer = "Bearer ";

// Printable ASCII without space: what an HTTP/2 header value may carry
// unescaped, and what the file's whitespace-separated syntax can hold.
bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f; }

}  // namespace

Role RequiredRole(Method method) {
  // The one table of who may call what. A new RPC added to the enum and not
  // here fails to compile with -Werror=switch (and defaults to admin).
  switch (method) {
    case Method::kPredict:
    case Method::kGetModel:
    case Method::kListModels:
    case Method::kWatchModel:
    case Method::kServerMetadata:
    case Method::kModelMetadata:
    case Method::kModelReady:
    case Method::kModelInfer:
      return Role::kReader;
    case Method::kUpdate:
    case Method::kStreamUpdate:
    case Method::kModelInferLearn:  // learns: an Update by another name
      return Role::kWriter;
    case Method::kCreateModel:
    case Method::kDeleteModel:
    case Method::kRollback:
    // Export hands out a whole model (its weights): an admin's business,
    // not a reader's, as the table says.
    case Method::kExportModel:
    case Method::kImportModel:
    case Method::kAddClasses:  // changes a model's shape: like Create
      return Role::kAdmin;
  }
  return Role::kAdmin;
}

absl::string_view MethodName(Method method) {
  switch (method) {
    case Method::kCreateModel:
      return "lepton.v1.ModelService/CreateModel";
    case Method::kGetModel:
      return "lepton.v1.ModelService/GetModel";
    case Method::kListModels:
      return "lepton.v1.ModelService/ListModels";
    case Method::kDeleteModel:
      return "lepton.v1.ModelService/DeleteModel";
    case Method::kPredict:
      return "lepton.v1.ModelService/Predict";
    case Method::kUpdate:
      return "lepton.v1.ModelService/Update";
    case Method::kStreamUpdate:
      return "lepton.v1.ModelService/StreamUpdate";
    case Method::kRollback:
      return "lepton.v1.ModelService/Rollback";
    case Method::kExportModel:
      return "lepton.v1.ModelService/ExportModel";
    case Method::kImportModel:
      return "lepton.v1.ModelService/ImportModel";
    case Method::kWatchModel:
      return "lepton.v1.ModelService/WatchModel";
    case Method::kAddClasses:
      return "lepton.v1.ModelService/AddClasses";
    case Method::kServerMetadata:
      return "inference.GRPCInferenceService/ServerMetadata";
    case Method::kModelMetadata:
      return "inference.GRPCInferenceService/ModelMetadata";
    case Method::kModelReady:
      return "inference.GRPCInferenceService/ModelReady";
    case Method::kModelInfer:
      return "inference.GRPCInferenceService/ModelInfer";
    case Method::kModelInferLearn:
      return "inference.GRPCInferenceService/ModelInfer with a label input "
             "(online_learning)";
  }
  return "lepton.v1.ModelService/?";
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "none";
}

Role ParseRole(absl::string_view text) {
  if (text == "reader") return Role::kReader;
  if (text == "writer") return Role::kWriter;
  if (text == "admin") return Role::kAdmin;
  return Role::kNone;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;  // sizes are not secret here
  // OR of every byte's difference: no early exit, so the time does not say
  // where the first difference is.
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

TokenDigest DigestToken(absl::string_view token) {
  TokenDigest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest.data());
  return digest;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view contents,
                                             absl::string_view file_name) {
  TokenTable table;
  // Digest -> line, only to report a token listed twice.
  absl::flat_hash_map<std::string, int> first_line;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);  // also a CRLF file's '\r'
    if (line.empty() || line.front() == '#') continue;
    // Errors name the file and the line, never the token, nor the second
    // field: in a line written the wrong way round it would be the token.
    const std::string where = absl::StrCat(file_name, ":", line_number, ": ");
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected \"<token> <role>\", got ",
                       fields.size(), " fields"));
    }
    const absl::string_view token = fields[0];
    const Role role = ParseRole(fields[1]);
    if (role == Role::kNone) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "role: must be reader, writer or admin"));
    }
    if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "token: must be ", kMinTokenLength, " to ",
                       kMaxTokenLength, " characters, got ", token.size()));
    }
    for (char c : token) {
      if (!IsTokenChar(c)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "token: must be printable ASCII without spaces"));
      }
    }
    const TokenDigest digest = DigestToken(token);
    auto [it, inserted] = first_line.emplace(
        std::string(digest.begin(), digest.end()), line_number);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "token: listed before, on line ", it->second));
    }
    table.entries_.emplace_back(digest, role);
  }
  if (table.entries_.empty()) {
    // Most likely the wrong file; it would lock every client out.
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": no tokens (\"<token> <role>\" lines)"));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::ReadFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadConfigFile(path, "--auth_tokens");
  if (!contents.ok()) return contents.status();
  return Parse(*contents, path);
}

Role TokenTable::Lookup(absl::string_view token) const {
  const TokenDigest digest = DigestToken(token);
  const absl::string_view presented(
      reinterpret_cast<const char*>(digest.data()), digest.size());
  // Every entry is compared, match or not; the role is selected with a mask
  // rather than a branch. Tokens are unique (Parse()), so at most one entry
  // contributes.
  uint8_t role = 0;
  for (const auto& [known, known_role] : entries_) {
    const bool equal = ConstantTimeEquals(
        presented,
        absl::string_view(reinterpret_cast<const char*>(known.data()),
                          known.size()));
    const uint8_t mask = static_cast<uint8_t>(-static_cast<int>(equal));
    role |= mask & static_cast<uint8_t>(known_role);
  }
  return static_cast<Role>(role);
}

absl::StatusOr<std::unique_ptr<AccessControl>> AccessControl::FromFile(
    std::string path) {
  absl::StatusOr<TokenTable> table = TokenTable::ReadFile(path);
  if (!table.ok()) return table.status();
  return std::unique_ptr<AccessControl>(new AccessControl(
      std::move(path), std::make_shared<const TokenTable>(*std::move(table))));
}

absl::Status AccessControl::Reload() {
  // Read and parse outside the lock: calls keep being authorized with the
  // old table meanwhile.
  absl::StatusOr<TokenTable> table = TokenTable::ReadFile(path_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const TokenTable>(*std::move(table));
  MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return absl::OkStatus();
}

size_t AccessControl::size() const { return table()->size(); }

std::shared_ptr<const TokenTable> AccessControl::table() const {
  ReaderMutexLock lock(&mu_);
  return table_;
}

absl::Status AccessControl::Authorize(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    Method method) const {
  auto [begin, end] = metadata.equal_range("authorization");
  if (begin == end) {
    return absl::UnauthenticatedError(
        "missing credentials: send the metadata \"authorization: Bearer "
        "<token>\"");
  }
  if (std::next(begin) != end) {
    return absl::UnauthenticatedError(
        "malformed credentials: more than one authorization header");
  }
  absl::string_view value(begin->second.data(), begin->second.size());
  // The scheme is case-insensitive (RFC 7235); the token is what follows.
  if (value.size() <= kBearer.size() ||
      !absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError(
        "malformed credentials: the authorization header must be \"Bearer "
        "<token>\"");
  }
  value.remove_prefix(kBearer.size());
  value = absl::StripAsciiWhitespace(value);
  const Role role = table()->Lookup(value);
  if (role == Role::kNone) {
    return absl::UnauthenticatedError("unknown bearer token");
  }
  const Role needed = RequiredRole(method);
  if (role < needed) {
    return absl::PermissionDeniedError(absl::StrCat(
        MethodName(method), ": needs role ", RoleName(needed),
        " or higher; the caller's token has role ", RoleName(role)));
  }
  return absl::OkStatus();
}

}  // namespace lepton::server
