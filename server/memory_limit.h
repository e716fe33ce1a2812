// The memory this process may use: the smaller of the machine's memory and
// the limits of the cgroups it runs in (a container's), for the default of
// --max_memory_bytes.
//
// cgroup v2 (`0::PATH` in /proc/self/cgroup) reads memory.max of PATH and of
// each parent under SYS_ROOT/fs/cgroup (or SYS_ROOT/fs/cgroup/unified on a
// hybrid host); cgroup v1 (a `memory` hierarchy) reads memory.limit_in_bytes
// under SYS_ROOT/fs/cgroup/memory. Inside a container with its own cgroup
// namespace PATH is "/", and the container's limit is the root's. A path
// that does not exist under the mount (a container without its own cgroup
// namespace) is skipped; the mount's root is read in any case.
//
// Thread safety: pure functions of the files they read.
#ifndef LEPTON_SERVER_MEMORY_LIMIT_H_
#define LEPTON_SERVER_MEMORY_LIMIT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace lepton::server {

struct MemoryLimit {
  int64_t bytes = 0;   // 0: unknown
  std::string source;  // the file it came from, e.g. "/proc/meminfo"
};

// From /proc/self/cgroup, /proc/meminfo and /sys.
MemoryLimit ProcessMemoryLimit();

// The same from the given texts and a root standing for /sys (tests).
MemoryLimit MemoryLimitOf(absl::string_view proc_self_cgroup,
                          absl::string_view proc_meminfo,
                          const std::string& sys_root);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_MEMORY_LIMIT_H_
