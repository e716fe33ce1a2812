// Damaged files at start-up, on the real server: a bit flip in every
// checkpoint of one model, or a checkpoint that cannot be read. That model is
// refused (DATA_LOSS naming the file and why), the others are served, and
// the start-up log says why in exactly one line.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;

constexpr int kD = 16;

v1::UpdateRequest UpdateOf(const std::string& model, int i) {
  v1::UpdateRequest request;
  request.set_model(model);
  for (int e = 0; e < 4; ++e) {
    v1::Features* features = request.add_examples()->mutable_features();
    features->add_indices((i + e) % kD);
    features->add_values(1.0f);
    request.mutable_examples(e)->set_label(e % 2);
  }
  return request;
}

v1::PredictRequest PredictOne(const std::string& model) {
  v1::PredictRequest request;
  request.set_model(model);
  v1::Features* features = request.add_instances();
  features->add_indices(3);
  features->add_values(1.0f);
  return request;
}

// The checkpoint files of `model` in `data_dir`, newest first.
std::vector<std::string> Checkpoints(const std::string& data_dir,
                                     const std::string& model) {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(data_dir) / "models" / model)) {
    if (entry.path().extension() == ".ckpt") paths.push_back(entry.path());
  }
  std::sort(paths.rbegin(), paths.rend());
  return paths;
}

void FlipByte(const std::string& path, long offset) {
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fseek(f, offset, SEEK_SET), 0);
  const int c = std::fgetc(f);
  ASSERT_NE(c, EOF);
  ASSERT_EQ(std::fseek(f, offset, SEEK_SET), 0);
  std::fputc(c ^ 0x10, f);
  std::fclose(f);
}

// The lines of `text` that contain `needle`.
std::vector<std::string> LinesWith(const std::string& text,
                                   absl::string_view needle) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) lines.emplace_back(line);
  }
  return lines;
}

// Starts a durable server with models "a" and "b", trains both, and stops
// it cleanly (each then has checkpoints of versions 1 and 3).
void MakeTwoModels(ServerProcess& server) {
  ASSERT_TRUE(server.Start({"--fsync=always"}).ok()) << server.err_text();
  Client client(server.target(), ClientOptions{});
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(kD);
  for (const std::string model : {"a", "b"}) {
    ASSERT_TRUE(client.CreateModel(model, spec).ok());
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(client.Update(UpdateOf(model, i)).ok());
    }
  }
  absl::StatusOr<int> exit = server.Terminate(absl::Seconds(30));
  ASSERT_TRUE(exit.ok() && *exit == 0) << server.err_text();
  ASSERT_EQ(Checkpoints(server.data_dir(), "a").size(), 2u);
}

// Restarts `server` and checks that "a" is refused with `why`, in one
// start-up line and in every call's DATA_LOSS, while "b" is served.
void ExpectOnlyARefused(ServerProcess& server, absl::string_view why) {
  ASSERT_TRUE(server.Start({"--fsync=always"}).ok()) << server.err_text();
  const std::string err = server.err_text();
  const std::vector<std::string> lines = LinesWith(err, "model_not_recovered");
  ASSERT_EQ(lines.size(), 1u) << err;
  EXPECT_TRUE(absl::StrContains(lines[0], "level=error")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "model=a")) << lines[0];
  const std::string newest = Checkpoints(server.data_dir(), "a").front();
  EXPECT_TRUE(absl::StrContains(lines[0], newest)) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], why)) << lines[0];
  // The file is named once per reason, not twice.
  EXPECT_FALSE(absl::StrContains(lines[0], absl::StrCat(newest, ": ", newest)))
      << lines[0];
  EXPECT_EQ(LinesWith(err, "recovered=1 failed=1").size(), 1u) << err;

  Client client(server.target(), ClientOptions{});
  absl::StatusOr<v1::PredictResponse> a = client.Predict(PredictOne("a"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), why)) << a.status();
  absl::StatusOr<v1::PredictResponse> b = client.Predict(PredictOne("b"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->version(), 3u);
  EXPECT_TRUE(client.Update(UpdateOf("b", 7)).ok());
}

TEST(DamagedCheckpointTest, BitFlipInEveryCheckpointIsOneLineAndOthersServe) {
  ServerProcess server(kServerPath);
  ASSERT_NO_FATAL_FAILURE(MakeTwoModels(server));
  for (const std::string& path : Checkpoints(server.data_dir(), "a")) {
    ASSERT_NO_FATAL_FAILURE(
        FlipByte(path, std::filesystem::file_size(path) / 2));
  }
  ExpectOnlyARefused(server, "checksum mismatch");
}

TEST(DamagedCheckpointTest, UnreadableCheckpointIsOneLineAndOthersServe) {
  ServerProcess server(kServerPath);
  ASSERT_NO_FATAL_FAILURE(MakeTwoModels(server));
  // A directory where the newest checkpoint belongs: open succeeds and
  // read(2) fails (EISDIR), as a read error from a failing disk would. The
  // older checkpoint is intact, but the log it would need is gone.
  const std::string newest = Checkpoints(server.data_dir(), "a").front();
  ASSERT_TRUE(std::filesystem::remove(newest));
  ASSERT_TRUE(std::filesystem::create_directory(newest));
  ExpectOnlyARefused(server, "read: Is a directory");
}

}  // namespace
}  // namespace lepton::testing
