// The memory budget on the real server. In a cgroup of its own with a 512 MiB
// memory limit (a container's, as the kernel sees it), the server's default
// budget is 80% of that limit; models are created, and trained, until the
// budget refuses them with RESOURCE_EXHAUSTED, and the server is never
// killed by the kernel's OOM killer. Making a cgroup needs root and a
// writable cgroup file system: elsewhere that test is skipped with a message.
// With --max_memory_bytes given, the same refusals anywhere.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;

constexpr int64_t kLimit = int64_t{512} << 20;
// A sparse model of 2^21 features reserves about 59 MB (memory_budget.h).
constexpr int64_t kFeatures = int64_t{1} << 21;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

// A memory cgroup (v1, or v2 with the memory controller) made under this
// process's own, with a limit; removed when it dies (the processes in it
// must have exited).
class MemoryCgroup {
 public:
  explicit MemoryCgroup(int64_t limit) {
    const std::string name = absl::StrCat("lepton-budget-test-", getpid());
    for (absl::string_view line :
         absl::StrSplit(ReadFile("/proc/self/cgroup"), '\n')) {
      const std::vector<absl::string_view> parts =
          absl::StrSplit(line, absl::MaxSplits(':', 2));
      if (parts.size() != 3) continue;
      std::string mount, file;
      if (absl::StrContains(absl::StrCat(",", parts[1], ","), ",memory,")) {
        mount = "/sys/fs/cgroup/memory";
        file = "memory.limit_in_bytes";
      } else if (parts[0] == "0" && parts[1].empty() &&
                 std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
        mount = "/sys/fs/cgroup";
        file = "memory.max";
      } else {
        continue;
      }
      const std::string dir =
          absl::StrCat(mount, absl::StripSuffix(parts[2], "/"), "/", name);
      std::error_code error;
      if (!std::filesystem::create_directory(dir, error)) {
        why_ = absl::StrCat("cannot make ", dir, ": ", error.message());
        continue;
      }
      dir_ = dir;
      if (WriteFile(absl::StrCat(dir, "/", file), absl::StrCat(limit))) {
        limit_file_ = absl::StrCat(dir, "/", file);
        return;
      }
      why_ = absl::StrCat("cannot set ", dir, "/", file);
      return;
    }
    if (why_.empty()) why_ = "no memory cgroup in /proc/self/cgroup";
  }
  ~MemoryCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  bool made() const { return !limit_file_.empty(); }
  const std::string& why_not() const { return why_; }
  const std::string& dir() const { return dir_; }
  const std::string& limit_file() const { return limit_file_; }

 private:
  std::string dir_;
  std::string limit_file_;
  std::string why_;
};

v1::ModelSpec SparseSpec() {
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(kFeatures);
  return spec;
}

v1::UpdateRequest SparseUpdate(const std::string& model, int examples,
                               int seed) {
  v1::UpdateRequest request;
  request.set_model(model);
  for (int e = 0; e < examples; ++e) {
    v1::Example* example = request.add_examples();
    for (int j = 0; j < 40; ++j) {
      example->mutable_features()->add_indices(
          static_cast<uint32_t>(j * (kFeatures / 40) +
                                (seed * 7919 + e * 104729) % (kFeatures / 40)));
      example->mutable_features()->add_values(1.0f);
    }
    example->set_label(e % 2);
  }
  return request;
}

// Creates sparse models m0, m1, ... until one is refused; the refusal.
absl::Status CreateUntilRefused(Client& client, int* created) {
  for (*created = 0; *created < 100; ++*created) {
    absl::StatusOr<v1::ModelInfo> info =
        client.CreateModel(absl::StrCat("m", *created), SparseSpec());
    if (!info.ok()) return info.status();
  }
  return absl::OkStatus();
}

TEST(MemoryBudgetServerTest,
     InACgroupTheDefaultBudgetRefusesBeforeTheOomKiller) {
  TestScratchDir scratch("lepton-memory-budget-test");
  ASSERT_FALSE(scratch.path().empty());
  MemoryCgroup cgroup(kLimit);
  if (!cgroup.made()) {
    GTEST_SKIP() << "cannot make a memory cgroup (" << cgroup.why_not()
                 << "; needs root and a writable cgroup file system): skipped";
  }
  // The server enters the cgroup before it starts, as in a container.
  const std::string wrapper = scratch.Path("in-cgroup.sh");
  ASSERT_TRUE(
      WriteFile(wrapper, absl::StrCat("#!/bin/sh\necho $$ > ", cgroup.dir(),
                                      "/cgroup.procs || exit 1\nexec ",
                                      kServerPath, " \"$@\"\n")));
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  {
    ServerProcess server(wrapper);
    ASSERT_TRUE(server.Start({"--data_dir="}).ok()) << server.err_text();
    const int64_t budget = kLimit / 5 * 4;
    // gRPC's quota: 10% of the limit, but at least twice the default
    // --max_message_bytes (64 MiB).
    const int64_t transport = std::max(kLimit / 10, int64_t{128} << 20);
    EXPECT_TRUE(absl::StrContains(
        server.err_text(),
        absl::StrCat("event=memory_budget max_memory_bytes=", budget,
                     " max_transport_bytes=", transport, " memory_limit_bytes=",
                     kLimit, " from=", cgroup.limit_file())))
        << server.err_text();

    Client client(server.target(), ClientOptions{});
    int created = 0;
    const absl::Status refused = CreateUntilRefused(client, &created);
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), "memory budget"))
        << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), absl::StrCat(budget)))
        << refused;
    EXPECT_GE(created, 2);

    // Large updates fill the models' retained versions with deltas until
    // the budget refuses one; the server answers throughout.
    int applied = 0;
    absl::Status update_refused;
    for (int round = 0; round < 200 && update_refused.ok(); ++round) {
      absl::StatusOr<v1::UpdateResponse> r = client.Update(
          SparseUpdate(absl::StrCat("m", round % created), 4096, round));
      if (r.ok()) {
        ++applied;
      } else {
        update_refused = r.status();
      }
    }
    EXPECT_GT(applied, 0);
    EXPECT_EQ(update_refused.code(), absl::StatusCode::kResourceExhausted)
        << update_refused << " after " << applied << " updates\n"
        << server.err_text();
    EXPECT_TRUE(
        absl::StrContains(update_refused.message(), "this update of model"))
        << update_refused;

    const std::string metrics = ScrapeMetrics(server);
    EXPECT_EQ(MetricValue(metrics, "lepton_memory_budget_bytes"),
              static_cast<double>(budget));
    const double used = MetricValue(metrics, "lepton_memory_used_bytes");
    EXPECT_GT(used, 0);
    EXPECT_LE(used, static_cast<double>(budget));
    absl::StatusOr<std::vector<v1::ModelInfo>> models = client.ListModels();
    ASSERT_TRUE(models.ok()) << models.status();
    EXPECT_EQ(static_cast<int>(models->size()), created);

    // The cgroup's peak (v1 keeps one): how close the kernel came.
    const std::string peak =
        ReadFile(absl::StrCat(cgroup.dir(), "/memory.max_usage_in_bytes"));
    std::printf(
        "%d models, %d updates applied; charged %.0f of the budget's %lld "
        "bytes; the cgroup's peak usage %s of its limit %lld\n",
        created, applied, used, static_cast<long long>(budget),
        peak.empty() ? "unknown"
                     : std::string(absl::StripAsciiWhitespace(peak)).c_str(),
        static_cast<long long>(kLimit));
    // Alive, never OOM-killed, and it stops cleanly.
    absl::StatusOr<int> exit = server.Terminate(absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0) << server.err_text();
  }
}

TEST(MemoryBudgetServerTest, AGivenBudgetRefusesCreateAndImport) {
  ServerProcess server(kServerPath);
  // Room for two of these models, not three.
  ASSERT_TRUE(server.Start({"--max_memory_bytes=150000000"}).ok())
      << server.err_text();
  Client client(server.target(), ClientOptions{});
  int created = 0;
  const absl::Status refused = CreateUntilRefused(client, &created);
  EXPECT_EQ(created, 2);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "creating model \"m2\""))
      << refused;
  absl::StatusOr<v1::ExportModelResponse> exported =
      client.ExportModel("m0", 0);
  ASSERT_TRUE(exported.ok()) << exported.status();
  const std::string& blob = exported->model();
  absl::StatusOr<v1::ModelInfo> imported = client.ImportModel("copy", blob);
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kResourceExhausted)
      << imported.status();
  // Deleting a model makes room.
  ASSERT_TRUE(client.DeleteModel("m1").ok());
  imported = client.ImportModel("copy", blob);
  EXPECT_TRUE(imported.ok()) << imported.status();
}

}  // namespace
}  // namespace lepton::testing
