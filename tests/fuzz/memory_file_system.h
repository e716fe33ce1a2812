// MemoryFileSystem: a FileSystem (core/util/file_system.h) held in memory,
// so that a fuzz target can lay out a whole data directory per input and
// open a store on it without touching the disk (tens of thousands of inputs
// a second). Paths are plain strings; a directory exists once created (or
// once a file is put under it with Put()). Nothing can fail but a missing
// file or directory, and ReadFile's size limit.
//
// Thread safety: every method may be called from any thread.
#ifndef LEPTON_TESTS_FUZZ_MEMORY_FILE_SYSTEM_H_
#define LEPTON_TESTS_FUZZ_MEMORY_FILE_SYSTEM_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton::fuzz {

class MemoryFileSystem final : public FileSystem {
 public:
  // Writes `path` (creating its parent directories).
  void Put(const std::string& path, std::string content) {
    MutexLock lock(&mu_);
    AddParentsLocked(path);
    files_[path] = std::make_shared<std::string>(std::move(content));
  }
  // Every file, by path.
  std::map<std::string, std::string> Files() const {
    MutexLock lock(&mu_);
    std::map<std::string, std::string> files;
    for (const auto& [path, content] : files_) files[path] = *content;
    return files;
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) override {
    MutexLock lock(&mu_);
    std::shared_ptr<std::string>& content = files_[path];
    if (content == nullptr) content = std::make_shared<std::string>();
    return std::unique_ptr<WritableFile>(new File(this, content));
  }
  absl::StatusOr<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes) override {
    MutexLock lock(&mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return absl::NotFoundError(path);
    if (it->second->size() > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": over the limit of ", max_bytes));
    }
    return *it->second;
  }
  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override {
    MutexLock lock(&mu_);
    if (!dirs_.contains(dir)) return absl::NotFoundError(dir);
    const std::string prefix = dir + "/";
    std::set<std::string> names;
    const auto add = [&](const std::string& path) {
      if (!absl::StartsWith(path, prefix)) return;
      const std::string rest = path.substr(prefix.size());
      if (!rest.empty() && rest.find('/') == std::string::npos) {
        names.insert(rest);
      }
    };
    for (const auto& [path, content] : files_) add(path);
    for (const std::string& d : dirs_) add(d);
    return std::vector<std::string>(names.begin(), names.end());
  }
  absl::Status CreateDirectories(const std::string& path) override {
    MutexLock lock(&mu_);
    AddParentsLocked(path + "/");
    return absl::OkStatus();
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    MutexLock lock(&mu_);
    if (auto it = files_.find(from); it != files_.end()) {
      files_[to] = it->second;
      files_.erase(from);
      return absl::OkStatus();
    }
    if (!dirs_.contains(from)) return absl::NotFoundError(from);
    // A directory: everything under it moves.
    const std::string prefix = from + "/";
    std::map<std::string, std::shared_ptr<std::string>> moved;
    for (auto it = files_.begin(); it != files_.end();) {
      if (absl::StartsWith(it->first, prefix)) {
        moved[to + "/" + it->first.substr(prefix.size())] = it->second;
        it = files_.erase(it);
      } else {
        ++it;
      }
    }
    std::set<std::string> dirs;
    for (const std::string& d : dirs_) {
      if (d == from) {
        dirs.insert(to);
      } else if (absl::StartsWith(d, prefix)) {
        dirs.insert(to + "/" + d.substr(prefix.size()));
      } else {
        dirs.insert(d);
      }
    }
    dirs_ = std::move(dirs);
    files_.merge(moved);
    return absl::OkStatus();
  }
  absl::Status RemoveFile(const std::string& path) override {
    MutexLock lock(&mu_);
    if (files_.erase(path) == 0) return absl::NotFoundError(path);
    return absl::OkStatus();
  }
  absl::Status RemoveAll(const std::string& path) override {
    MutexLock lock(&mu_);
    const std::string prefix = path + "/";
    files_.erase(path);
    dirs_.erase(path);
    std::erase_if(files_, [&](const auto& f) {
      return absl::StartsWith(f.first, prefix);
    });
    std::erase_if(dirs_, [&](const std::string& d) {
      return absl::StartsWith(d, prefix);
    });
    return absl::OkStatus();
  }
  absl::Status SyncDirectory(const std::string& dir) override {
    MutexLock lock(&mu_);
    if (!dirs_.contains(dir)) return absl::NotFoundError(dir);
    return absl::OkStatus();
  }

 private:
  class File final : public WritableFile {
   public:
    File(MemoryFileSystem* fs, std::shared_ptr<std::string> content)
        : fs_(fs), content_(std::move(content)) {}
    absl::Status Append(absl::string_view data) override {
      MutexLock lock(&fs_->mu_);
      content_->append(data.data(), data.size());
      return absl::OkStatus();
    }
    absl::Status Sync() override { return absl::OkStatus(); }
    absl::Status Truncate(uint64_t size) override {
      MutexLock lock(&fs_->mu_);
      if (size < content_->size()) content_->resize(size);
      return absl::OkStatus();
    }
    absl::Status Close() override { return absl::OkStatus(); }

   private:
    MemoryFileSystem* const fs_;
    const std::shared_ptr<std::string> content_;
  };

  // Every directory above `path` ("/a/b/c" adds "/a" and "/a/b").
  void AddParentsLocked(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      dirs_.insert(path.substr(0, slash));
    }
  }

  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<std::string>> files_
      ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton::fuzz

#endif  // LEPTON_TESTS_FUZZ_MEMORY_FILE_SYSTEM_H_
