// FaultFileSystem: a FileSystem (core/util/file_system.h) over the real one
// that injects the failures durable storage must survive: a full disk or a
// write cut short in Append, a failed fsync (optionally dropping what it did
// not make durable, as a kernel does with the dirty pages of a failed fsync), a
// failed ftruncate, rename, unlink, directory fsync or open. It also counts
// what it did, e.g. the fsyncs performed.
//
//   FaultFileSystem fault;
//   StoreOptions options{.data_dir = dir, .fs = &fault};
//   fault.FailAppends("/wal-", 1, /*partial_bytes=*/10);  // full disk
//
// A fault applies to the next `count` calls of its kind on a path that
// contains `path_substring` (for Rename: the source or the target), then it
// is spent. Errors look like PosixFileSystem()'s ("<path>: write: No space
// left on device"), with the code absl::ErrnoToStatus gives the errno.
//
// Thread safety: every method may be called from any thread; the files it
// opens follow the WritableFile contract (file_system.h).
#ifndef LEPTON_TESTS_CORE_FAULT_FILE_SYSTEM_H_
#define LEPTON_TESTS_CORE_FAULT_FILE_SYSTEM_H_

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton {

class FaultFileSystem : public FileSystem {
 public:
  enum class Op {
    kOpen,
    kAppend,
    kSync,
    kTruncate,
    kRename,
    kRemoveFile,
    kSyncDirectory,
  };

  // What a spent fault told the caller.
  struct Fault {
    Op op = Op::kAppend;
    std::string path_substring;
    int remaining = 0;
    int error_number = EIO;
    size_t partial_bytes = 0;    // kAppend: written before failing
    bool drop_unsynced = false;  // kSync: cut the file to its synced size
  };

  explicit FaultFileSystem(FileSystem* base = PosixFileSystem())
      : base_(base) {}
  FaultFileSystem(const FaultFileSystem&) = delete;
  FaultFileSystem& operator=(const FaultFileSystem&) = delete;

  // The next `count` appends fail with `error_number` (ENOSPC: "No space left
  // on device") after writing the first `partial_bytes` bytes of their data.
  void FailAppends(std::string path_substring, int count = 1,
                   size_t partial_bytes = 0, int error_number = ENOSPC) {
    Add({Op::kAppend, std::move(path_substring), count, error_number,
         partial_bytes, false});
  }
  // The next `count` fdatasyncs fail (EIO). With `drop_unsynced`, the file
  // also loses everything appended since its last successful sync.
  void FailSyncs(std::string path_substring, int count = 1,
                 bool drop_unsynced = false, int error_number = EIO) {
    Add({Op::kSync, std::move(path_substring), count, error_number, 0,
         drop_unsynced});
  }
  void FailTruncates(std::string path_substring, int count = 1,
                     int error_number = EIO) {
    Add({Op::kTruncate, std::move(path_substring), count, error_number});
  }
  void FailRenames(std::string path_substring, int count = 1,
                   int error_number = EIO) {
    Add({Op::kRename, std::move(path_substring), count, error_number});
  }
  void FailRemoveFiles(std::string path_substring, int count = 1,
                       int error_number = EIO) {
    Add({Op::kRemoveFile, std::move(path_substring), count, error_number});
  }
  void FailSyncDirectories(std::string path_substring, int count = 1,
                           int error_number = EIO) {
    Add({Op::kSyncDirectory, std::move(path_substring), count, error_number});
  }
  void FailOpens(std::string path_substring, int count = 1,
                 int error_number = ENOSPC) {
    Add({Op::kOpen, std::move(path_substring), count, error_number});
  }
  // Forgets every fault not yet spent.
  void ClearFaults() {
    MutexLock lock(&mu_);
    faults_.clear();
  }

  // Successful WritableFile::Sync calls.
  int64_t syncs() const {
    MutexLock lock(&mu_);
    return syncs_;
  }
  // Successful SyncDirectory calls.
  int64_t directory_syncs() const {
    MutexLock lock(&mu_);
    return directory_syncs_;
  }
  // Successful WritableFile::Append calls.
  int64_t appends() const {
    MutexLock lock(&mu_);
    return appends_;
  }
  // Faults injected so far (all kinds).
  int64_t injected() const {
    MutexLock lock(&mu_);
    return injected_;
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) override {
    if (std::optional<Fault> f = Take(Op::kOpen, path)) {
      return Error(path, "open", f->error_number);
    }
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        base_->OpenForAppend(path);
    if (!file.ok()) return file.status();
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    return std::unique_ptr<WritableFile>(
        new File(this, path, *std::move(file), ec ? 0 : size));
  }
  absl::StatusOr<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes) override {
    return base_->ReadFile(path, max_bytes);
  }
  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override {
    return base_->ListDirectory(dir);
  }
  absl::Status CreateDirectories(const std::string& path) override {
    return base_->CreateDirectories(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (std::optional<Fault> f = Take(Op::kRename, from, to)) {
      return Error(absl::StrCat(from, " -> ", to), "rename", f->error_number);
    }
    return base_->Rename(from, to);
  }
  absl::Status RemoveFile(const std::string& path) override {
    if (std::optional<Fault> f = Take(Op::kRemoveFile, path)) {
      return Error(path, "unlink", f->error_number);
    }
    return base_->RemoveFile(path);
  }
  absl::Status RemoveAll(const std::string& path) override {
    return base_->RemoveAll(path);
  }
  absl::Status SyncDirectory(const std::string& dir) override {
    if (std::optional<Fault> f = Take(Op::kSyncDirectory, dir)) {
      return Error(dir, "fsync", f->error_number);
    }
    absl::Status s = base_->SyncDirectory(dir);
    if (s.ok()) {
      MutexLock lock(&mu_);
      ++directory_syncs_;
    }
    return s;
  }

 private:
  // Delegates to the real file; consults the faults first.
  class File final : public WritableFile {
   public:
    File(FaultFileSystem* fs, std::string path,
         std::unique_ptr<WritableFile> file, uint64_t size)
        : fs_(fs),
          path_(std::move(path)),
          file_(std::move(file)),
          size_(size),
          synced_size_(size) {}

    absl::Status Append(absl::string_view data) override {
      MutexLock lock(&mu_);
      if (std::optional<Fault> f = fs_->Take(Op::kAppend, path_)) {
        const size_t k = std::min(f->partial_bytes, data.size());
        if (k > 0 && file_->Append(data.substr(0, k)).ok()) size_ += k;
        return Error(path_, "write", f->error_number);
      }
      absl::Status s = file_->Append(data);
      if (s.ok()) {
        size_ += data.size();
        fs_->CountAppend();
      }
      return s;
    }

    absl::Status Sync() override {
      uint64_t covered;
      {
        MutexLock lock(&mu_);
        covered = size_;
      }
      if (std::optional<Fault> f = fs_->Take(Op::kSync, path_)) {
        if (f->drop_unsynced) {
          // What the kernel may do to the dirty pages of a failed fsync.
          MutexLock lock(&mu_);
          if (file_->Truncate(synced_size_).ok()) size_ = synced_size_;
        }
        return Error(path_, "fdatasync", f->error_number);
      }
      absl::Status s = file_->Sync();
      if (s.ok()) {
        MutexLock lock(&mu_);
        synced_size_ = std::max(synced_size_, std::min(covered, size_));
        fs_->CountSync();
      }
      return s;
    }

    absl::Status Truncate(uint64_t size) override {
      MutexLock lock(&mu_);
      if (std::optional<Fault> f = fs_->Take(Op::kTruncate, path_)) {
        return Error(path_, "ftruncate", f->error_number);
      }
      absl::Status s = file_->Truncate(size);
      if (s.ok()) {
        size_ = size;
        synced_size_ = std::min(synced_size_, size);
      }
      return s;
    }

    absl::Status Close() override { return file_->Close(); }

   private:
    FaultFileSystem* const fs_;
    const std::string path_;
    const std::unique_ptr<WritableFile> file_;
    Mutex mu_;
    uint64_t size_ ABSL_GUARDED_BY(mu_);         // bytes in the file
    uint64_t synced_size_ ABSL_GUARDED_BY(mu_);  // of them, made durable
  };

  static absl::Status Error(absl::string_view path, absl::string_view op,
                            int error_number) {
    return absl::ErrnoToStatus(error_number, absl::StrCat(path, ": ", op));
  }

  void Add(Fault fault) {
    MutexLock lock(&mu_);
    faults_.push_back(std::move(fault));
  }

  // The first live fault of kind `op` whose substring is in `path` (or
  // `other_path`), spent once.
  std::optional<Fault> Take(Op op, absl::string_view path,
                            absl::string_view other_path = "") {
    MutexLock lock(&mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (it->op != op || it->remaining <= 0) continue;
      if (!absl::StrContains(path, it->path_substring) &&
          (other_path.empty() ||
           !absl::StrContains(other_path, it->path_substring))) {
        continue;
      }
      Fault fault = *it;
      if (--it->remaining == 0) faults_.erase(it);
      ++injected_;
      return fault;
    }
    return std::nullopt;
  }

  void CountAppend() {
    MutexLock lock(&mu_);
    ++appends_;
  }
  void CountSync() {
    MutexLock lock(&mu_);
    ++syncs_;
  }

  FileSystem* const base_;
  mutable Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t directory_syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t appends_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_FAULT_FILE_SYSTEM_H_
