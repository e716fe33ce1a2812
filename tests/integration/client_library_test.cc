// The real lepton_server binary driven by the client library over loopback:
// the health check, a model's life cycle with pinned predictions, and a
// SIGTERM that arrives while a client is streaming updates.
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

v1::ModelSpec LogisticSpec(int64_t num_features) {
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(num_features);
  return spec;
}

// y = 1 iff x0 > x1, dense, D = 2.
v1::UpdateRequest Batch(const std::string& model, int n, int seed) {
  v1::UpdateRequest request;
  request.set_model(model);
  for (int i = 0; i < n; ++i) {
    const float a = static_cast<float>((i * 7 + seed * 13) % 17) / 17.0f;
    const float b = static_cast<float>((i * 11 + seed * 5) % 19) / 19.0f;
    v1::Example* e = request.add_examples();
    e->mutable_features()->add_dense(a);
    e->mutable_features()->add_dense(b);
    e->set_label(a > b ? 1.0f : 0.0f);
  }
  return request;
}

v1::PredictRequest Probe(const std::string& model, uint64_t version) {
  v1::PredictRequest request;
  request.set_model(model);
  request.set_version(version);
  for (float a : {0.1f, 0.5f, 0.9f}) {
    v1::Features* f = request.add_instances();
    f->add_dense(a);
    f->add_dense(1.0f - a);
  }
  return request;
}

TEST(ClientLibraryTest, HealthAndModelLifeCycle) {
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start({"--retained_versions=3"}).ok());
  Client client(server.target(), ClientOptions{});

  absl::StatusOr<HealthStatus::ServingStatus> health = client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::SERVING);
  health = client.Health("lepton.v1.ModelService");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::SERVING);

  absl::StatusOr<v1::ModelInfo> info =
      client.CreateModel("itest", LogisticSpec(2));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 1u);

  ASSERT_TRUE(client.Update(Batch("itest", 64, 1)).ok());
  absl::StatusOr<v1::PredictResponse> at2 = client.Predict(Probe("itest", 0));
  ASSERT_TRUE(at2.ok()) << at2.status();
  EXPECT_EQ(at2->version(), 2u);
  ASSERT_EQ(at2->predictions_size(), 3);
  // Learned: x0 > x1 is the likelier class 1.
  EXPECT_GT(at2->predictions(2).value(), at2->predictions(0).value());

  absl::StatusOr<v1::UpdateResponse> update =
      client.Update(Batch("itest", 64, 2));
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->version(), 3u);
  EXPECT_EQ(update->examples(), 64);
  EXPECT_TRUE(update->has_accuracy_before());

  // Pinned: version 2 answers as it did before version 3 existed.
  absl::StatusOr<v1::PredictResponse> pinned =
      client.Predict(Probe("itest", 2));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->version(), 2u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pinned->predictions(i).value(), at2->predictions(i).value());
  }
  absl::StatusOr<v1::PredictResponse> latest =
      client.Predict(Probe("itest", 0));
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version(), 3u);
  EXPECT_NE(latest->predictions(0).value(), at2->predictions(0).value());

  // Versions 4 and 5 evict 2 from a window of 3.
  ASSERT_TRUE(client.Update(Batch("itest", 8, 3)).ok());
  ASSERT_TRUE(client.Update(Batch("itest", 8, 4)).ok());
  EXPECT_EQ(client.Predict(Probe("itest", 2)).status().code(),
            absl::StatusCode::kNotFound);

  // A rejected update over the wire names the field and changes nothing.
  v1::UpdateRequest bad = Batch("itest", 4, 5);
  bad.mutable_examples(3)->set_label(2);
  absl::Status rejected = client.Update(bad).status();
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected.message().substr(0, 18), "examples[3].label:");
  info = client.GetModel("itest");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 5u);
  EXPECT_EQ(info->examples_seen(), 64u + 64u + 8u + 8u);

  ASSERT_TRUE(client.DeleteModel("itest").ok());
  EXPECT_EQ(client.GetModel("itest").status().code(),
            absl::StatusCode::kNotFound);

  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(absl::Seconds(30)), std::optional<int>(0));
}

TEST(ClientLibraryTest, SigtermDuringAStreamEndsCleanly) {
  ServerProcess server(kServerPath);
  // A long grace: the server must end the stream itself, not wait it out.
  ASSERT_TRUE(server.Start({"--drain_seconds=60"}).ok());
  Client client(server.target(), ClientOptions{});
  ASSERT_TRUE(client.CreateModel("stream", LogisticSpec(2)).ok());

  std::atomic<int64_t> acknowledged{0};
  absl::Status stream_status;
  int64_t sent = 0;
  std::thread streamer([&] {
    client::UpdateStreamOptions options;
    options.on_response = [&](int64_t, const v1::UpdateResponse&) {
      acknowledged.fetch_add(1);
    };
    std::unique_ptr<client::UpdateStream> stream =
        client.StartUpdateStream(options);
    for (int i = 0;; ++i) {
      if (!stream->Send(Batch("stream", 32, i)).ok()) break;
    }
    stream_status = stream->Finish();
    sent = stream->sent();
  });
  // Signal only once the stream is demonstrably flowing.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (acknowledged.load() < 20 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(acknowledged.load(), 20);
  const absl::Time signalled = absl::Now();
  server.process().Signal(SIGTERM);
  const std::optional<int> exit_code = server.process().Wait(absl::Seconds(30));
  streamer.join();
  EXPECT_EQ(exit_code, std::optional<int>(0));
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(20))
      << "the server waited for the stream instead of ending it";
  // The stream ended with the server's shutdown error after acknowledging
  // what it had applied; the client had sent more than was acknowledged or
  // exactly that much, never less.
  EXPECT_EQ(stream_status.code(), absl::StatusCode::kUnavailable)
      << stream_status;
  EXPECT_GE(sent, acknowledged.load());
}

}  // namespace
}  // namespace lepton::testing
