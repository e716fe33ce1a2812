#include "server/config_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lepton::server {
namespace {

constexpr size_t kMaxConfigFileBytes = size_t{1} << 20;

absl::Status FileError(int error, const std::string& path,
                       absl::string_view what) {
  const std::string message =
      absl::StrCat("cannot read ", what, " file ", path, ": ", strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::UnknownError(message);
  }
}

}  // namespace

absl::StatusOr<std::string> ReadConfigFile(const std::string& path,
                                           absl::string_view what) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return FileError(errno, path, what);
  std::string contents;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    contents.append(buffer, n);
    if (contents.size() > kMaxConfigFileBytes) {
      std::fclose(file);
      return absl::FailedPreconditionError(
          absl::StrCat(what, " file ", path, ": larger than 1 MiB"));
    }
  }
  const bool failed = std::ferror(file);
  const int error = errno;
  std::fclose(file);
  if (failed) return FileError(error, path, what);
  return contents;
}

}  // namespace lepton::server
