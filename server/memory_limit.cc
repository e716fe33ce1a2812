#include "server/memory_limit.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lepton::server {
namespace {

// The whole of a small file; empty if it cannot be read.
std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Lowers `limit` to the value in `file` if it holds a smaller one ("max", or
// v1's huge "no limit", do not).
void Lower(const std::string& file, MemoryLimit* limit) {
  const std::string text = ReadSmallFile(file);
  int64_t bytes = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &bytes) ||
      bytes <= 0) {
    return;
  }
  if (limit->bytes == 0 || bytes < limit->bytes) {
    limit->bytes = bytes;
    limit->source = file;
  }
}

// Each cgroup from `mount` + `path` up to `mount`, reading `file` in each.
void LowerAlongPath(const std::string& mount, absl::string_view path,
                    const std::string& file, MemoryLimit* limit) {
  std::filesystem::path dir =
      std::filesystem::path(mount) / std::string(absl::StripPrefix(path, "/"));
  while (true) {
    Lower((dir / file).string(), limit);
    if (dir.lexically_normal() ==
            std::filesystem::path(mount).lexically_normal() ||
        !dir.has_parent_path() || dir.parent_path() == dir) {
      break;
    }
    dir = dir.parent_path();
  }
}

}  // namespace

MemoryLimit MemoryLimitOf(absl::string_view proc_self_cgroup,
                          absl::string_view proc_meminfo,
                          const std::string& sys_root) {
  MemoryLimit limit;
  for (absl::string_view line : absl::StrSplit(proc_meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib) && kib > 0) {
      limit.bytes = kib * 1024;
      limit.source = "/proc/meminfo";
    }
  }
  const std::string cgroup = sys_root + "/fs/cgroup";
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n')) {
    const std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      const std::string mount =
          std::filesystem::exists(cgroup + "/cgroup.controllers")
              ? cgroup
              : cgroup + "/unified";
      LowerAlongPath(mount, parts[2], "memory.max", &limit);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "memory") {
        LowerAlongPath(cgroup + "/memory", parts[2], "memory.limit_in_bytes",
                       &limit);
      }
    }
  }
  return limit;
}

MemoryLimit ProcessMemoryLimit() {
  return MemoryLimitOf(ReadSmallFile("/proc/self/cgroup"),
                       ReadSmallFile("/proc/meminfo"), "/sys");
}

}  // namespace lepton::server
