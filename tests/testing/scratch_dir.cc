#include "tests/testing/scratch_dir.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lepton::testing {

std::string TempRoot() {
  for (const char* name : {"TEST_TMPDIR", "TMPDIR"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    std::string root = value;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    return root;
  }
  return "/tmp";
}

absl::StatusOr<ScratchDir> ScratchDir::Create(absl::string_view prefix) {
  std::string name(prefix);
  std::replace(name.begin(), name.end(), '/', '_');
  std::string pattern = absl::StrCat(TempRoot(), "/", name, "-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp(", pattern, "): ", std::strerror(errno)));
  }
  ScratchDir dir;
  dir.path_ = std::move(pattern);
  return dir;
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())),
      keep_(std::exchange(other.keep_, false)) {}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
    keep_ = std::exchange(other.keep_, false);
  }
  return *this;
}

ScratchDir::~ScratchDir() { Remove(); }

std::string ScratchDir::Path(absl::string_view name) const {
  return absl::StrCat(path_, "/", name);
}

void ScratchDir::Remove() {
  if (path_.empty() || keep_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace lepton::testing
