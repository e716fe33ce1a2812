// FileSystem: the few file operations durable storage needs, behind an
// interface so that tests can inject a failed write, a failed fsync or a full
// disk (tests/core/fault_file_system.h) and check that nothing is half-applied.
//
// PosixFileSystem() is the real one. Paths are plain strings; every error is
// an absl::Status whose message names the path and the system's reason
// ("lepton-data/models/ctr/wal-...log: write: No space left on device").
//
// Thread safety: FileSystem methods may be called from any thread. A
// WritableFile's Append() and Truncate() calls must be serialized by its
// owner; Sync() may run concurrently with them (it makes durable at least
// what was appended before it began).
#ifndef LEPTON_CORE_UTIL_FILE_SYSTEM_H_
#define LEPTON_CORE_UTIL_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lepton {

class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends `data` at the end of the file (all of it, or an error).
  virtual absl::Status Append(absl::string_view data) = 0;
  // Makes what was appended durable (fdatasync).
  virtual absl::Status Sync() = 0;
  // Cuts the file to `size` bytes: undoes a failed or partial append.
  virtual absl::Status Truncate(uint64_t size) = 0;
  // Closes the file; later calls fail. The destructor closes it too.
  virtual absl::Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for appending, creating it (mode 0644) if missing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) = 0;
  // The whole content of `path`; NOT_FOUND if it does not exist, and
  // FAILED_PRECONDITION, before anything is allocated for it, if it holds
  // more than `max_bytes` (each caller's limit for its kind of file, so that
  // a huge or sparse file where a small one belongs costs no memory).
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path,
                                               uint64_t max_bytes) = 0;
  // Names of the entries of `dir` (not "." or ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) = 0;
  // Creates `path` and its missing parents; OK if it exists.
  virtual absl::Status CreateDirectories(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Removes `path` and everything under it; OK if it does not exist.
  virtual absl::Status RemoveAll(const std::string& path) = 0;
  // Makes the entries of `dir` (creations, renames, removals) durable.
  virtual absl::Status SyncDirectory(const std::string& dir) = 0;
};

// The real file system. Never null; lives for the whole process.
FileSystem* PosixFileSystem();

// Writes `data` to `path` so that a crash leaves either the old file or the
// complete new one: writes `path`.tmp, syncs it, renames it over `path`, and
// syncs the directory.
absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 absl::string_view data);

// "dir/name".
std::string JoinPath(absl::string_view dir, absl::string_view name);

}  // namespace lepton

#endif  // LEPTON_CORE_UTIL_FILE_SYSTEM_H_
