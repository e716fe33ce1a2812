// --max_transport_bytes on the real server: StreamUpdate clients that write
// as fast as they can and never read an answer cannot grow the server's
// memory past the quota (gRPC shrinks the flow-control windows, and at the
// quota closes connections), while a well-behaved client on its own
// connection goes on being answered, retrying UNAVAILABLE. And the flag's
// checks at start.
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;

constexpr int64_t kFeatures = 1000;
constexpr int64_t kMessageBytes = 4 << 20;
constexpr int64_t kQuotaBytes = 16 << 20;
constexpr int kFloodStreams = 16;

v1::ModelSpec LogisticSpec() {
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(kFeatures);
  return spec;
}

v1::PredictRequest Probe() {
  v1::PredictRequest request;
  request.set_model("m");
  v1::Features* instance = request.add_instances();
  instance->add_indices(7);
  instance->add_values(1.0f);
  return request;
}

// One example of 100 features: about 1 KB on the wire.
v1::UpdateRequest FloodRequest() {
  v1::UpdateRequest request;
  request.set_model("m");
  v1::Example* e = request.add_examples();
  for (int i = 0; i < 100; ++i) {
    e->mutable_features()->add_indices(i * 7);
    e->mutable_features()->add_values(0.5f);
  }
  e->set_label(1);
  return request;
}

// Starts a server with `transport_flag`, floods it for `seconds` from
// kFloodStreams StreamUpdate calls never read while a well-behaved client
// predicts; returns the server's peak RSS growth in MiB over the flood.
double FloodGrowthMib(const std::string& transport_flag, double seconds) {
  ServerProcess server(kServerPath);
  absl::Status started = server.Start(
      {"--data_dir=", absl::StrCat("--max_message_bytes=", kMessageBytes),
       transport_flag});
  EXPECT_TRUE(started.ok()) << started << server.err_text();
  if (!started.ok()) return -1;
  Client client(server.target(), ClientOptions{});
  EXPECT_TRUE(client.CreateModel("m", LogisticSpec()).ok());
  const int64_t rss_before = RssKib(server.pid());

  std::atomic<bool> stop{false};
  std::atomic<int64_t> written{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> flood;
  for (int i = 0; i < kFloodStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* context = contexts.back().get();
    flood.emplace_back([&, context, i] {
      // A channel of its own: one TCP connection per stream, as separate
      // clients would have.
      grpc::ChannelArguments args;
      args.SetInt("lepton.flood_channel", i);
      auto stub = v1::ModelService::NewStub(grpc::CreateCustomChannel(
          server.target(), grpc::InsecureChannelCredentials(), args));
      auto stream = stub->StreamUpdate(context);
      const v1::UpdateRequest request = FloodRequest();
      while (!stop.load() && stream->Write(request)) ++written;
      stream->Finish().ok();  // cancelled below: its status says nothing
    });
  }

  int64_t rss_peak = rss_before;
  int answered = 0, retried = 0;
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < end) {
    // At the quota gRPC takes memory back by closing a connection (GOAWAY),
    // which may be this one: UNAVAILABLE, retried as clients do.
    absl::Status predicted = client.Predict(Probe()).status();
    for (int retry = 0; absl::IsUnavailable(predicted) && retry < 3; ++retry) {
      ++retried;
      predicted = client.Predict(Probe()).status();
    }
    EXPECT_TRUE(predicted.ok())
        << "a well-behaved Predict failed under the flood: " << predicted;
    ++answered;
    rss_peak = std::max(rss_peak, RssKib(server.pid()));
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop = true;
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : flood) t.join();
  std::printf(
      "%s: %lld requests written; RSS %lld KiB before, %lld peak; "
      "%d well-behaved Predict calls answered, %d retries\n",
      transport_flag.c_str(), static_cast<long long>(written.load()),
      static_cast<long long>(rss_before), static_cast<long long>(rss_peak),
      answered, retried);
  EXPECT_GT(written.load(), 0);
  return static_cast<double>(rss_peak - rss_before) / 1024.0;
}

TEST(TransportQuotaTest, StreamsNeverReadStayWithinTheQuota) {
  const double growth_mib = FloodGrowthMib(
      absl::StrCat("--max_transport_bytes=", kQuotaBytes), /*seconds=*/8);
  // The quota, and beside it what the allocator keeps of freed buffers in
  // its per-thread arenas: 20 to 62 MiB of growth in all, in runs on a busy
  // machine. Without the quota the same flood grew the server by about 200
  // MiB, and on.
  EXPECT_LT(growth_mib, 6.0 * kQuotaBytes / (1 << 20));
}

TEST(TransportQuotaTest, TheFlagIsChecked) {
  for (const std::string& flag :
       {std::string("--max_transport_bytes=-2"),
        absl::StrCat("--max_transport_bytes=", 2 * kMessageBytes - 1)}) {
    const RunResult run = testing::Run(
        {kServerPath, "--listen=127.0.0.1:0", "--metrics_listen=",
         "--data_dir=", absl::StrCat("--max_message_bytes=", kMessageBytes),
         flag});
    EXPECT_NE(run.exit_code, 0) << flag;
    EXPECT_NE(run.err.find("max_transport_bytes"), std::string::npos)
        << flag << ": " << run.err;
  }
}

}  // namespace
}  // namespace lepton::testing
