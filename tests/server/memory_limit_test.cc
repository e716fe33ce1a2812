// The memory limit behind --max_memory_bytes's default (server/
// memory_limit.h): the machine's memory, lowered by cgroup v1 and v2 limits
// on the process's path and its parents, read from a fake /sys.
#include "server/memory_limit.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::server {
namespace {

constexpr char kMeminfo[] =
    "MemTotal:       24683772 kB\nMemFree:         1000 kB\n";
constexpr int64_t kMachine = int64_t{24683772} * 1024;

class MemoryLimitTest : public testing::ScratchDirTest {
 protected:
  // Writes `text` to root_/fs/cgroup/`path`, making its directories.
  void Write(const std::string& path, const std::string& text) {
    const std::filesystem::path file =
        std::filesystem::path(root_) / "fs/cgroup" / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  std::string Cgroup(const std::string& path) const {
    return root_ + "/fs/cgroup/" + path;
  }
};

TEST_F(MemoryLimitTest, WithoutCgroupLimitsTheMachinesMemory) {
  const MemoryLimit limit = MemoryLimitOf("0::/\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, kMachine);
  EXPECT_EQ(limit.source, "/proc/meminfo");
  EXPECT_EQ(MemoryLimitOf("", "", root_).bytes, 0);
}

TEST_F(MemoryLimitTest, CgroupV2TakesTheSmallestLimitOnThePath) {
  Write("cgroup.controllers", "memory\n");
  Write("memory.max", "max\n");
  Write("a/memory.max", "1073741824\n");
  Write("a/b/memory.max", "max\n");
  const MemoryLimit limit = MemoryLimitOf("0::/a/b\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, int64_t{1} << 30);
  EXPECT_EQ(limit.source, Cgroup("a/memory.max"));
}

TEST_F(MemoryLimitTest, CgroupV2OnAHybridHostIsUnderUnified) {
  Write("unified/svc/memory.max", "536870912\n");
  const MemoryLimit limit = MemoryLimitOf("0::/svc\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, int64_t{512} << 20);
}

TEST_F(MemoryLimitTest, CgroupV1ReadsTheMemoryHierarchy) {
  // v1's "no limit" is a huge number, above the machine's memory.
  Write("memory/memory.limit_in_bytes", "9223372036854771712\n");
  Write("memory/job/memory.limit_in_bytes", "268435456\n");
  const MemoryLimit limit = MemoryLimitOf(
      "5:cpu,cpuacct:/job\n4:memory:/job\n0::/\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, int64_t{256} << 20);
  EXPECT_EQ(limit.source, Cgroup("memory/job/memory.limit_in_bytes"));
}

TEST_F(MemoryLimitTest, APathMissingUnderTheMountFallsBackToItsRoot) {
  // A container without its own cgroup namespace sees the host's path.
  Write("memory/memory.limit_in_bytes", "134217728\n");
  const MemoryLimit limit =
      MemoryLimitOf("4:memory:/docker/0123abcd\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, int64_t{128} << 20);
}

TEST_F(MemoryLimitTest, ALimitAboveTheMachinesMemoryOrUnreadableIsIgnored) {
  Write("cgroup.controllers", "memory\n");
  Write("big/memory.max", "99999999999999\n");
  Write("big/odd/memory.max", "a lot\n");
  const MemoryLimit limit = MemoryLimitOf("0::/big/odd\n", kMeminfo, root_);
  EXPECT_EQ(limit.bytes, kMachine);
  EXPECT_EQ(limit.source, "/proc/meminfo");
}

}  // namespace
}  // namespace lepton::server
