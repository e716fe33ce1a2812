// Operations of the real lepton_server binary: its Prometheus endpoint
// scraped with curl (names present, request counts and model gauges move),
// and the graceful drain on SIGTERM: health turns NOT_SERVING first, the
// calls in flight (one learning, more queued) all finish, a final
// checkpoint is written, the exit status is 0, and the log says each step
// in order.
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kCurl[] = "/usr/bin/curl";

std::string MetricsUrl(const ServerProcess& server, absl::string_view path) {
  return absl::StrCat("http://127.0.0.1:", server.metrics_port(), path);
}

// GET /metrics with curl; the body, or "" (with a test failure).
std::string Scrape(const ServerProcess& server) {
  std::string text = ScrapeMetrics(server);
  EXPECT_FALSE(text.empty()) << "GET /metrics failed";
  return text;
}

double Value(const std::string& text, absl::string_view series) {
  return MetricValue(text, series);
}

v1::ModelSpec LogisticSpec(int64_t num_features) {
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(num_features);
  return spec;
}

// Labeled by the sign of the first two features, dense, D features.
v1::UpdateRequest Batch(const std::string& model, int64_t d, int n, int seed,
                        int epochs = 1) {
  v1::UpdateRequest request;
  request.set_model(model);
  request.set_epochs(epochs);
  for (int i = 0; i < n; ++i) {
    v1::Example* e = request.add_examples();
    for (int64_t j = 0; j < d; ++j) {
      e->mutable_features()->add_dense(
          static_cast<float>((i * 7 + j * 3 + seed * 13) % 17) / 17.0f - 0.5f);
    }
    e->set_label(e->features().dense(0) > e->features().dense(1) ? 1 : 0);
  }
  return request;
}

v1::PredictRequest Probe(const std::string& model, int64_t d) {
  v1::PredictRequest request;
  request.set_model(model);
  v1::Features* f = request.add_instances();
  for (int64_t j = 0; j < d; ++j) f->add_dense(0.1f * static_cast<float>(j));
  return request;
}

TEST(OperationsTest, MetricsScrapedWithCurlMoveWithCalls) {
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_GT(server.metrics_port(), 0);
  Client client(server.target(), ClientOptions{});

  // The endpoint: the text format's content type; beside it only the
  // dashboard's paths (docs/dashboard.md).
  RunResult type = lepton::testing::Run({kCurl, "-sS", "-o", "/dev/null", "-w",
                                         "%{http_code} %{content_type}",
                                         MetricsUrl(server, "/metrics")});
  EXPECT_EQ(type.out, "200 text/plain; version=0.0.4; charset=utf-8");
  RunResult other =
      lepton::testing::Run({kCurl, "-sS", "-o", "/dev/null", "-w",
                            "%{http_code}", MetricsUrl(server, "/nothing")});
  EXPECT_EQ(other.out, "404");

  std::string text = Scrape(server);
  for (const char* name :
       {"lepton_requests_total", "lepton_request_duration_seconds",
        "lepton_models", "lepton_update_queue_depth",
        "process_resident_memory_bytes", "lepton_model_version",
        "lepton_model_examples_seen_total", "lepton_model_progressive_loss",
        "lepton_model_seconds_since_update", "lepton_model_drift_state",
        "lepton_model_drifts_total", "lepton_model_guardrail_refusals_total",
        "lepton_model_holdout_examples"}) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("# TYPE ", name, " ")))
        << name;
  }
  EXPECT_EQ(Value(text, "lepton_models"), 0);
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_EQ(
      Value(text, "lepton_requests_total{code=\"OK\",method=\"Predict\"}"), -1);

  constexpr int64_t kD = 2;
  ASSERT_TRUE(client.CreateModel("ops", LogisticSpec(kD)).ok());
  ASSERT_TRUE(client.Predict(Probe("ops", kD)).ok());
  text = Scrape(server);
  EXPECT_EQ(
      Value(text, "lepton_requests_total{code=\"OK\",method=\"Predict\"}"), 1);
  EXPECT_EQ(
      Value(text, "lepton_requests_total{code=\"OK\",method=\"CreateModel\"}"),
      1);
  EXPECT_EQ(Value(text,
                  "lepton_request_duration_seconds_count{method="
                  "\"Predict\"}"),
            1);
  EXPECT_EQ(Value(text, "lepton_models"), 1);
  EXPECT_EQ(Value(text, "lepton_model_version{model=\"ops\"}"), 1);
  EXPECT_EQ(Value(text, "lepton_model_examples_seen_total{model=\"ops\"}"), 0);

  // A bad call: three features for a model of two.
  EXPECT_EQ(client.Predict(Probe("ops", kD + 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client.Predict(Probe("ops", kD)).ok());
  ASSERT_TRUE(client.Update(Batch("ops", kD, 32, 1)).ok());
  ASSERT_TRUE(client.Update(Batch("ops", kD, 32, 2)).ok());
  text = Scrape(server);
  EXPECT_EQ(
      Value(text, "lepton_requests_total{code=\"OK\",method=\"Predict\"}"), 2);
  EXPECT_EQ(Value(text,
                  "lepton_requests_total{code=\"INVALID_ARGUMENT\","
                  "method=\"Predict\"}"),
            1);
  EXPECT_EQ(Value(text, "lepton_requests_total{code=\"OK\",method=\"Update\"}"),
            2);
  EXPECT_EQ(Value(text,
                  "lepton_request_duration_seconds_bucket{method="
                  "\"Update\",le=\"+Inf\"}"),
            2);
  EXPECT_EQ(Value(text, "lepton_model_version{model=\"ops\"}"), 3);
  EXPECT_EQ(Value(text, "lepton_model_examples_seen_total{model=\"ops\"}"), 64);
  EXPECT_EQ(Value(text, "lepton_model_updates_total{model=\"ops\"}"), 2);
  EXPECT_GT(Value(text, "lepton_model_progressive_loss{model=\"ops\"}"), 0);
  const double age =
      Value(text, "lepton_model_seconds_since_update{model=\"ops\"}");
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 60);
  EXPECT_EQ(Value(text, "lepton_model_drift_state{model=\"ops\"}"), 0);
  EXPECT_EQ(Value(text, "lepton_update_queue_depth"), 0);

  ASSERT_TRUE(client.DeleteModel("ops").ok());
  text = Scrape(server);
  EXPECT_EQ(Value(text, "lepton_models"), 0);
  EXPECT_EQ(Value(text, "lepton_model_version{model=\"ops\"}"), -1);

  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(absl::Seconds(30)), std::optional<int>(0));
}

TEST(OperationsTest, MaxModelsOverTheWireNamesTheLimit) {
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start({"--max_models=1"}).ok());
  Client client(server.target(), ClientOptions{});
  ASSERT_TRUE(client.CreateModel("one", LogisticSpec(2)).ok());
  absl::Status refused = client.CreateModel("two", LogisticSpec(2)).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StartsWith(refused.message(), "max_models: ")) << refused;
}

TEST(OperationsTest, HelpListsTheServersFlagsWithoutBuildPaths) {
  const RunResult help = lepton::testing::Run({kServerPath, "--help"});
  const std::string text = help.out + help.err;
  for (const char* flag : {"--listen", "--data_dir", "--fsync", "--log_level",
                           "--drain_seconds", "--auth_tokens"}) {
    EXPECT_TRUE(absl::StrContains(text, flag)) << flag << " in\n" << text;
  }
  EXPECT_TRUE(absl::StrContains(text, "Flags from server/main.cc")) << text;
  EXPECT_FALSE(absl::StrContains(text, "Flags from /")) << text;
  EXPECT_FALSE(absl::StrContains(text, "shutdown_grace")) << text;
}

TEST(OperationsTest, BadTypedFlagsStopTheServerAtStart) {
  const RunResult fsync =
      lepton::testing::Run({kServerPath, "--fsync=sometimes"});
  EXPECT_NE(fsync.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(fsync.err, "must be always, interval or never"))
      << fsync.err;
  const RunResult level =
      lepton::testing::Run({kServerPath, "--log_level=loud"});
  EXPECT_NE(level.exit_code, 0);
  EXPECT_TRUE(
      absl::StrContains(level.err, "must be debug, info, warn or error"))
      << level.err;
  const RunResult gone =
      lepton::testing::Run({kServerPath, "--shutdown_grace=5s"});
  EXPECT_NE(gone.exit_code, 0);
}

TEST(OperationsTest, SigtermDrainsCallsInFlightThenCheckpointsAndExitsZero) {
  ServerProcess server(kServerPath);
  // One update worker, so that calls queue behind the one learning; no
  // checkpoint but the final one.
  const std::vector<std::string> flags = {
      "--update_threads=1", "--checkpoint_every_updates=1000000",
      "--checkpoint_interval=1h", "--drain_seconds=60"};
  ASSERT_TRUE(server.Start(flags).ok());
  Client client(server.target(), ClientOptions{});
  constexpr int64_t kD = 64;
  constexpr int kExamples = 4096, kEpochs = 1000, kCalls = 4;
  ASSERT_TRUE(client.CreateModel("drain", LogisticSpec(kD)).ok());

  // A health watcher, to see when the server turns NOT_SERVING.
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  std::unique_ptr<Health::Stub> health = Health::NewStub(channel);
  grpc::ClientContext watch_context;
  HealthCheckRequest watch_request;
  watch_request.set_service("lepton.v1.ModelService");
  auto watch = health->Watch(&watch_context, watch_request);
  HealthCheckResponse status;
  ASSERT_TRUE(watch->Read(&status));
  ASSERT_EQ(status.status(), HealthCheckResponse::SERVING);
  absl::Time not_serving_at = absl::InfiniteFuture();
  // A call sent once the server is draining: refused, so that the client
  // retries on another replica.
  absl::Status late_call = absl::UnknownError("not sent");
  std::thread watcher([&] {
    HealthCheckResponse next;
    while (watch->Read(&next)) {
      if (next.status() == HealthCheckResponse::NOT_SERVING) {
        not_serving_at = absl::Now();
        Client late(server.target(), ClientOptions{});
        late_call = late.GetModel("drain").status();
        break;
      }
    }
    // gRPC's health service keeps a Watch open through the drain: a
    // watcher that saw NOT_SERVING hangs up (as a prober would).
    watch_context.TryCancel();
    (void)watch->Finish();
  });

  // Long updates (many epochs over one batch), all sent at once.
  std::vector<absl::Status> results(kCalls);
  std::vector<absl::Time> finished(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      Client own(server.target(), ClientOptions{});
      results[i] =
          own.Update(Batch("drain", kD, kExamples, i, kEpochs)).status();
      finished[i] = absl::Now();
    });
  }
  // SIGTERM once every call reached the server: one is learning (each takes
  // seconds) and the others wait in the queue.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  double depth = 0;
  while ((depth = Value(Scrape(server), "lepton_update_queue_depth")) <
             kCalls - 1 &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(depth, kCalls - 1) << "the updates never queued";
  const absl::Time signalled = absl::Now();
  server.process().Signal(SIGTERM);

  for (std::thread& t : callers) t.join();
  watcher.join();
  const std::optional<int> exit_code = server.process().Wait(absl::Seconds(60));
  EXPECT_EQ(exit_code, std::optional<int>(0));
  absl::Time last_finished = absl::InfinitePast();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(results[i].ok()) << "call " << i << ": " << results[i];
    last_finished = std::max(last_finished, finished[i]);
  }
  // NOT_SERVING first, while calls were still being answered.
  EXPECT_GE(not_serving_at, signalled);
  EXPECT_LT(not_serving_at, last_finished);
  EXPECT_EQ(late_call.code(), absl::StatusCode::kUnavailable) << late_call;
  std::printf("drain: NOT_SERVING after %s, last call answered after %s\n",
              absl::FormatDuration(not_serving_at - signalled).c_str(),
              absl::FormatDuration(last_finished - signalled).c_str());

  // The log names each shutdown step, in order.
  std::vector<std::string> events;
  std::string log;
  while (std::optional<std::string> line =
             server.process().ReadErrLine(absl::Seconds(5))) {
    absl::StrAppend(&log, *line, "\n");
    const size_t at = line->find(" event=");
    if (at == std::string::npos) continue;
    absl::string_view event = absl::string_view(*line).substr(at + 7);
    events.emplace_back(event.substr(0, event.find(' ')));
  }
  // (model_created came before: from the shutdown on.)
  auto from = std::find(events.begin(), events.end(), "shutdown");
  const std::vector<std::string> expected = {
      "shutdown", "not_serving", "calls_drained", "store_closed", "stopped"};
  EXPECT_EQ(std::vector<std::string>(from, events.end()), expected) << log;
  // Well within --drain_seconds=60: nothing held the drain.
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(30));

  // Restarted on the same data: every answered update is there, from the
  // final checkpoint (the only one written since the model was created).
  ASSERT_TRUE(server.Start(flags).ok());
  Client again(server.target(), ClientOptions{});
  absl::StatusOr<v1::ModelInfo> info = again.GetModel("drain");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 1u + kCalls);
  EXPECT_EQ(info->examples_seen(), uint64_t{kCalls} * kExamples);
  EXPECT_EQ(std::vector<uint64_t>(info->checkpointed_versions().begin(),
                                  info->checkpointed_versions().end()),
            (std::vector<uint64_t>{1, 1 + kCalls}));
  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(absl::Seconds(30)), std::optional<int>(0));
}

}  // namespace
}  // namespace lepton::testing
