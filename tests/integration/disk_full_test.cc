// A real full disk: the server's data directory on a 16 MB tmpfs that the
// test fills. Updates are refused with RESOURCE_EXHAUSTED naming the disk
// and counted on /metrics, predictions go on, the next update after space is
// freed applies without a restart, and after a kill -9 nothing acknowledged
// is lost. Mounting needs root (CAP_SYS_ADMIN): elsewhere the test is
// skipped with a message.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;

constexpr int kD = 64;

// A tmpfs of `megabytes` mounted on `dir` for the test's life.
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, int megabytes) : dir_(dir) {
    const std::string options = absl::StrCat("size=", megabytes, "m");
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  const std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` until the file system is full; true if it filled.
bool FillDisk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const std::vector<char> block(64 * 1024, 'x');
  bool full = false;
  for (int i = 0; i < 100000 && !full; ++i) {
    if (std::fwrite(block.data(), 1, block.size(), f) != block.size() ||
        std::fflush(f) != 0) {
      full = errno == ENOSPC;
    }
  }
  std::fclose(f);
  return full;
}

v1::UpdateRequest UpdateOf(int i) {
  v1::UpdateRequest request;
  request.set_model("m");
  request.set_update_id(absl::StrCat("u", i));
  for (int e = 0; e < 8; ++e) {
    v1::Example* example = request.add_examples();
    v1::Features* features = example->mutable_features();
    const int feature = (i * 7 + e * 3) % kD;
    features->add_indices(feature);
    features->add_values(1.0f);
    example->set_label(feature % 2);
  }
  return request;
}

v1::PredictRequest PredictAll() {
  v1::PredictRequest request;
  request.set_model("m");
  for (int f = 0; f < kD; ++f) {
    v1::Features* features = request.add_instances();
    features->add_indices(f);
    features->add_values(1.0f);
  }
  return request;
}

double Scraped(const ServerProcess& server, absl::string_view series) {
  return MetricValue(ScrapeMetrics(server), series);
}

TEST(DiskFullTest, RefusesWhileFullThenAppliesAndLosesNothing) {
  TestScratchDir scratch("lepton-disk-full-test");
  ASSERT_FALSE(scratch.path().empty());
  const std::string mount_dir = scratch.path() + "/tmpfs";
  std::filesystem::create_directories(mount_dir);
  Tmpfs tmpfs(mount_dir, 16);
  if (!tmpfs.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << mount_dir << " ("
                 << tmpfs.error() << "; needs root): skipped";
  }
  const std::string data = mount_dir + "/data";
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server
                  .Start({absl::StrCat("--data_dir=", data), "--fsync=always",
                          "--checkpoint_every_updates=1000000"})
                  .ok())
      << server.err_text();
  Client client(server.target(), ClientOptions{});
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(kD);
  ASSERT_TRUE(client.CreateModel("m", spec).ok());
  int next = 0;
  uint64_t acked = 0;
  for (; next < 20; ++next) {
    absl::StatusOr<v1::UpdateResponse> r = client.Update(UpdateOf(next));
    ASSERT_TRUE(r.ok()) << r.status();
    acked = r->version();
  }

  ASSERT_TRUE(FillDisk(mount_dir + "/filler"));
  // The log segment may still have room for a few records: send until one
  // is refused.
  absl::Status refused;
  for (int tries = 0; tries < 2000 && refused.ok(); ++tries, ++next) {
    absl::StatusOr<v1::UpdateResponse> r = client.Update(UpdateOf(next));
    if (r.ok()) {
      acked = r->version();
    } else {
      refused = r.status();
    }
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled";
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "No space left on device"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "disk")) << refused;
  EXPECT_GE(
      Scraped(server, "lepton_model_disk_full_refusals_total{model=\"m\"}"), 1);

  // Predictions go on, from the acknowledged version.
  absl::StatusOr<v1::PredictResponse> during = client.Predict(PredictAll());
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->version(), acked);

  // Space is freed: the refused update (same id) applies, no restart.
  ASSERT_TRUE(std::filesystem::remove(mount_dir + "/filler"));
  const int retried = next - 1;
  absl::StatusOr<v1::UpdateResponse> after = client.Update(UpdateOf(retried));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version(), acked + 1);
  acked = after->version();
  absl::StatusOr<v1::PredictResponse> before_kill =
      client.Predict(PredictAll());
  ASSERT_TRUE(before_kill.ok()) << before_kill.status();

  // The disk fills again and the server stops (SIGTERM): its final
  // checkpoint cannot be written, which must leave the earlier checkpoint
  // and the log as they were.
  ASSERT_TRUE(FillDisk(mount_dir + "/filler"));
  ASSERT_TRUE(server.Terminate(absl::Seconds(30)).ok());
  const std::string stderr_text = server.err_text();
  EXPECT_TRUE(
      absl::StrContains(stderr_text, "checkpoint of model \"m\" failed"))
      << stderr_text;
  EXPECT_TRUE(absl::StrContains(stderr_text, "No space left on device"))
      << stderr_text;
  ASSERT_TRUE(std::filesystem::remove(mount_dir + "/filler"));
  const std::vector<std::string> flags = {absl::StrCat("--data_dir=", data),
                                          "--fsync=always",
                                          "--checkpoint_every_updates=1000000"};
  ASSERT_TRUE(server.Start(flags).ok()) << server.err_text();
  // Then a kill -9 and a restart on the same disk. Each time every
  // acknowledged update is there, and the model answers exactly as before.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "after SIGTERM on a full disk" : "after kill -9");
    Client again(server.target(), ClientOptions{});
    absl::StatusOr<v1::PredictResponse> recovered = again.Predict(PredictAll());
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_EQ(recovered->version(), acked);
    ASSERT_EQ(recovered->predictions_size(), before_kill->predictions_size());
    for (int i = 0; i < recovered->predictions_size(); ++i) {
      EXPECT_EQ(recovered->predictions(i).value(),
                before_kill->predictions(i).value())
          << i;
    }
    if (round == 0) {
      server.Kill();
      ASSERT_TRUE(server.Start(flags).ok()) << server.err_text();
    }
  }
  ASSERT_TRUE(server.Terminate(absl::Seconds(30)).ok());
}

}  // namespace
}  // namespace lepton::testing
