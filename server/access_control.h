// Access control for lepton.v1.ModelService and the Open Inference Protocol's
// inference.GRPCInferenceService (inference_service.h): bearer tokens, each
// with a role, read from a file (--auth_tokens), and the one table of which
// role each RPC needs.
//
// Token file: one `<token> <role>` per line, role reader, writer or admin;
// blank lines and lines starting with `#` are skipped. A token is 16 to 512
// printable ASCII characters without spaces (what fits an HTTP/2 header
// value). A malformed line fails the whole file, with an error that names
// the file and the line but never the token.
//
// Roles nest: reader < writer < admin (RequiredRole() below). Clients send
// the metadata `authorization: Bearer <token>`. Authorize() says:
//   - UNAUTHENTICATED for no authorization header, a malformed one (not
//     "Bearer <token>", or several) or an unknown token;
//   - PERMISSION_DENIED, naming the method and the role it needs, for a
//     known token whose role is too low;
//   - OK otherwise.
// Its messages never contain a token. Tokens are not kept in memory as
// sent: the table holds their SHA-256 digests, and a lookup compares the
// presented token's digest with every known digest in constant time, without
// stopping at the first match, so that timing tells nothing about how much of
// a guessed token was right.
//
// Thread safety: TokenTable is immutable once built. AccessControl may be
// used from any thread: Authorize() runs concurrently with Reload(), which
// publishes a whole new table at once (a call sees the old or the new table,
// never a mix).
#ifndef LEPTON_SERVER_ACCESS_CONTROL_H_
#define LEPTON_SERVER_ACCESS_CONTROL_H_

#include <grpcpp/support/string_ref.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/mutex.h"

namespace lepton::server {

// Ordered: a role may do everything a lower one may.
enum class Role : uint8_t { kNone = 0, kReader = 1, kWriter = 2, kAdmin = 3 };

// The RPCs of lepton.v1.ModelService, then those of
// inference.GRPCInferenceService that need a token (ServerLive and ServerReady
// are probes, open like the health service).
enum class Method {
  kCreateModel,
  kGetModel,
  kListModels,
  kDeleteModel,
  kPredict,
  kUpdate,
  kStreamUpdate,
  kRollback,
  kExportModel,
  kImportModel,
  kWatchModel,
  kAddClasses,
  kServerMetadata,
  kModelMetadata,
  kModelReady,
  kModelInfer,
  // ModelInfer with a "label" input: the online_learning extension, which
  // learns (an update).
  kModelInferLearn,
};

// The role `method` needs: THE role table.
Role RequiredRole(Method method);
// "lepton.v1.ModelService/Update", "inference.GRPCInferenceService/ModelInfer".
absl::string_view MethodName(Method method);
// "reader", "writer", "admin" ("none" for kNone).
absl::string_view RoleName(Role role);
// The inverse of RoleName() for the three real roles; kNone for anything
// else.
Role ParseRole(absl::string_view text);

// Whether a == b, in time that depends only on the sizes (which, for the
// digests compared here, are always 32): every byte is looked at.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

using TokenDigest = std::array<uint8_t, 32>;  // SHA-256
TokenDigest DigestToken(absl::string_view token);

// The tokens of one file, as digests with their roles. Immutable.
class TokenTable {
 public:
  // Parses a file's contents; `file_name` only names it in errors
  // ("tokens.txt:7: unknown role \"root\" (reader, writer or admin)").
  // INVALID_ARGUMENT for a malformed line or a token listed twice.
  static absl::StatusOr<TokenTable> Parse(absl::string_view contents,
                                          absl::string_view file_name);
  // Reads and parses `path`; a file that cannot be read is an error naming
  // it (server/config_file.h).
  static absl::StatusOr<TokenTable> ReadFile(const std::string& path);

  // The role of `token`, kNone if it is not in the table. Constant time in
  // the token's contents (see the file comment).
  Role Lookup(absl::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<TokenDigest, Role>> entries_;
};

class AccessControl {
 public:
  // Reads `path` (the --auth_tokens file); its errors as TokenTable's.
  static absl::StatusOr<std::unique_ptr<AccessControl>> FromFile(
      std::string path);

  // Re-reads the file. On error the current tokens stay in force and the
  // error is returned. On success returns OK and the new table serves every
  // call that starts from now on.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }
  // How many tokens are in force.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

  // Whether the call whose client metadata is `metadata` may run `method`
  // (see the file comment for the statuses).
  absl::Status Authorize(
      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
      Method method) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  AccessControl(std::string path, std::shared_ptr<const TokenTable> table)
      : path_(std::move(path)), table_(std::move(table)) {}
  std::shared_ptr<const TokenTable> table() const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string path_;
  mutable Mutex mu_;
  // Swapped whole by Reload(); a call keeps its own reference while it looks
  // up, so a reload never waits for lookups nor they for the file read.
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_ACCESS_CONTROL_H_
