#include "core/util/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

absl::Status PosixError(absl::string_view path, absl::string_view op,
                        int error) {
  return absl::ErrnoToStatus(error, absl::StrCat(path, ": ", op));
}

absl::Status TooLarge(absl::string_view path, uint64_t size,
                      uint64_t max_bytes) {
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": ", size, " bytes or more, over the limit of ",
                   max_bytes, " for this file"));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { Close().IgnoreError(); }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError(path_, "write", errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fdatasync(fd_) != 0) return PosixError(path_, "fdatasync", errno);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return PosixError(path_, "ftruncate", errno);
    }
    // O_APPEND writes go to the new end; no seek needed.
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return PosixError(path_, "close", errno);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class Posix final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) override {
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError(path, "open", errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path,
                                       uint64_t max_bytes) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError(path, "open", errno);
    std::string content;
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      if (static_cast<uint64_t>(st.st_size) > max_bytes) {
        ::close(fd);
        return TooLarge(path, static_cast<uint64_t>(st.st_size), max_bytes);
      }
      content.reserve(static_cast<size_t>(st.st_size));
    }
    char buffer[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0) {
        if (errno == EINTR) continue;
        const int error = errno;
        ::close(fd);
        return PosixError(path, "read", error);
      }
      if (n == 0) break;
      // A file that grows while it is read (or that fstat misjudged).
      if (static_cast<uint64_t>(n) > max_bytes - content.size()) {
        ::close(fd);
        return TooLarge(path, content.size() + static_cast<uint64_t>(n),
                        max_bytes);
      }
      content.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    return content;
  }

  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError(dir, "opendir", errno);
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const absl::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status CreateDirectories(const std::string& path) override {
    std::error_code error;
    std::filesystem::create_directories(path, error);
    if (error) return PosixError(path, "mkdir", error.value());
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError(absl::StrCat(from, " -> ", to), "rename", errno);
    }
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError(path, "unlink", errno);
    return absl::OkStatus();
  }

  absl::Status RemoveAll(const std::string& path) override {
    std::error_code error;
    std::filesystem::remove_all(path, error);
    if (error) return PosixError(path, "remove", error.value());
    return absl::OkStatus();
  }

  absl::Status SyncDirectory(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError(dir, "open", errno);
    const int rc = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) return PosixError(dir, "fsync", error);
    return absl::OkStatus();
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static Posix* const fs = new Posix;
  return fs;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path,
                                 absl::string_view data) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = fs.OpenForAppend(tmp);
    if (!file.ok()) return file.status();
    absl::Status s = (*file)->Truncate(0);  // a stale .tmp from a crash
    if (s.ok()) s = (*file)->Append(data);
    if (s.ok()) s = (*file)->Sync();
    if (absl::Status c = (*file)->Close(); s.ok()) s = c;
    if (!s.ok()) {
      fs.RemoveFile(tmp).IgnoreError();
      return s;
    }
  }
  if (absl::Status s = fs.Rename(tmp, path); !s.ok()) {
    fs.RemoveFile(tmp).IgnoreError();
    return s;
  }
  const size_t slash = path.rfind('/');
  return fs.SyncDirectory(slash == std::string::npos ? "."
                                                     : path.substr(0, slash));
}

}  // namespace lepton
