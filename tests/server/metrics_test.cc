// The metrics registry and its Prometheus text: method and code names,
// histogram bucketing (inclusive upper bounds, cumulative in the text,
// _count = the +Inf bucket), per-model series from ModelInfo, label
// escaping, counters that a rollback does not take back (with the service's
// own Rollback), deleted models' series removed, the process's resident
// memory, and the HTTP endpoint answering with idle connections open.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "lepton/v1/lepton.pb.h"
#include "server/metrics_http.h"
#include "service_test_support.h"

namespace lepton::server {
namespace {

using R = Metrics;

// The value of the one line of `text` that starts with `series` + " ", or
// "" if none (or the line is not unique).
std::string ValueOf(const std::string& text, absl::string_view series) {
  std::string found;
  int count = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      found = std::string(line);
      ++count;
    }
  }
  return count == 1 ? found : "";
}

TEST(MetricsTest, EveryModelServiceMethodHasItsOwnSeries) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "lepton.v1.ModelService");
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string name = service->method(i)->name();
    EXPECT_EQ(R::MethodName(R::MethodIndex(
                  absl::StrCat("/lepton.v1.ModelService/", name))),
              name);
  }
}

TEST(MetricsTest, MethodIndexKnowsOnlyLeptonsServices) {
  const int predict = R::MethodIndex("/lepton.v1.ModelService/Predict");
  EXPECT_EQ(R::MethodName(predict), "Predict");
  EXPECT_EQ(R::MethodName(R::MethodIndex("/lepton.v1.ModelService/Update")),
            "Update");
  EXPECT_EQ(R::MethodName(R::MethodIndex("/lepton.v1.ModelService/WatchModel")),
            "WatchModel");
  EXPECT_EQ(R::MethodName(
                R::MethodIndex("/inference.GRPCInferenceService/ModelInfer")),
            "ModelInfer");
  EXPECT_EQ(R::MethodName(R::MethodIndex(
                "/inference.GRPCInferenceService/ModelMetadata")),
            "ModelMetadata");
  // Probes count as other, as health checks do; a name of one service is
  // not taken for the other's.
  EXPECT_EQ(R::MethodIndex("/inference.GRPCInferenceService/ServerLive"),
            R::kOther);
  EXPECT_EQ(R::MethodIndex("/inference.GRPCInferenceService/Predict"),
            R::kOther);
  EXPECT_EQ(R::MethodIndex("/lepton.v1.ModelService/ModelInfer"), R::kOther);
  EXPECT_EQ(R::MethodIndex("/grpc.health.v1.Health/Check"), R::kOther);
  EXPECT_EQ(R::MethodIndex("/lepton.v1.ModelService/Nope"), R::kOther);
  EXPECT_EQ(R::MethodIndex("/other.Service/Predict"), R::kOther);
  EXPECT_EQ(R::MethodIndex(""), R::kOther);
  EXPECT_EQ(R::MethodName(R::kOther), "other");
  EXPECT_EQ(R::CodeName(0), "OK");
  EXPECT_EQ(R::CodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(R::CodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(R::CodeName(16), "UNAUTHENTICATED");
}

TEST(MetricsTest, BucketBoundsAreInclusive) {
  EXPECT_EQ(R::BucketIndex(0), 0);
  EXPECT_EQ(R::BucketIndex(0.0001), 0);
  EXPECT_EQ(R::BucketIndex(0.00010001), 1);
  EXPECT_EQ(R::BucketIndex(0.001), 3);
  EXPECT_EQ(R::BucketIndex(1), 12);
  EXPECT_EQ(R::BucketIndex(10), R::kBuckets - 2);
  EXPECT_EQ(R::BucketIndex(10.5), R::kBuckets - 1);  // +Inf
  EXPECT_EQ(R::BucketIndex(1e9), R::kBuckets - 1);
}

TEST(MetricsTest, RecordCountsByCodeAndBucket) {
  R m;
  const int predict = R::MethodIndex("/lepton.v1.ModelService/Predict");
  m.Record(predict, 0, absl::Microseconds(50));
  m.Record(predict, 0, absl::Microseconds(300));
  m.Record(predict, 3, absl::Seconds(20));
  m.Record(predict, 99, absl::Milliseconds(1));  // unknown code -> UNKNOWN
  EXPECT_EQ(m.requests(predict, 0), 2u);
  EXPECT_EQ(m.requests(predict, 3), 1u);
  EXPECT_EQ(m.requests(predict, 2), 1u);
  EXPECT_EQ(m.bucket_count(predict, 0), 1u);
  EXPECT_EQ(m.bucket_count(predict, 2), 1u);
  EXPECT_EQ(m.bucket_count(predict, 3), 1u);
  EXPECT_EQ(m.bucket_count(predict, R::kBuckets - 1), 1u);
  EXPECT_EQ(m.latency_sum_nanos(predict),
            50'000u + 300'000u + 20'000'000'000u + 1'000'000u);
  EXPECT_EQ(m.requests(R::kOther, 0), 0u);
}

TEST(RenderMetricsTest, RequestSeriesAndCumulativeHistogram) {
  R m;
  const int predict = R::MethodIndex("/lepton.v1.ModelService/Predict");
  const int update = R::MethodIndex("/lepton.v1.ModelService/Update");
  m.Record(predict, 0, absl::Microseconds(80));   // bucket le=0.0001
  m.Record(predict, 0, absl::Microseconds(400));  // le=0.0005
  m.Record(predict, 0, absl::Milliseconds(2));    // le=0.0025
  m.Record(predict, 3, absl::Seconds(11));        // +Inf
  m.Record(update, 8, absl::Milliseconds(5));
  const std::string text = m.Render(ScrapeState{});

  EXPECT_EQ(
      ValueOf(text, "lepton_requests_total{code=\"OK\",method=\"Predict\"}"),
      "3");
  EXPECT_EQ(ValueOf(text,
                    "lepton_requests_total{code=\"INVALID_ARGUMENT\","
                    "method=\"Predict\"}"),
            "1");
  EXPECT_EQ(ValueOf(text,
                    "lepton_requests_total{code=\"RESOURCE_EXHAUSTED\","
                    "method=\"Update\"}"),
            "1");
  // Zero series are left out.
  EXPECT_FALSE(absl::StrContains(text, "method=\"GetModel\""));
  EXPECT_FALSE(absl::StrContains(text, "code=\"NOT_FOUND\""));

  auto bucket = [&](absl::string_view le) {
    return ValueOf(text, absl::StrCat("lepton_request_duration_seconds_bucket{"
                                      "method=\"Predict\",le=\"",
                                      le, "\"}"));
  };
  EXPECT_EQ(bucket("0.0001"), "1");
  EXPECT_EQ(bucket("0.00025"), "1");
  EXPECT_EQ(bucket("0.0005"), "2");
  EXPECT_EQ(bucket("0.001"), "2");
  EXPECT_EQ(bucket("0.0025"), "3");
  EXPECT_EQ(bucket("10"), "3");
  EXPECT_EQ(bucket("+Inf"), "4");
  EXPECT_EQ(
      ValueOf(text,
              "lepton_request_duration_seconds_count{method=\"Predict\"}"),
      "4");
  EXPECT_DOUBLE_EQ(
      std::stod(ValueOf(
          text, "lepton_request_duration_seconds_sum{method=\"Predict\"}")),
      11.00248);
  // Every metric is introduced by HELP and TYPE once.
  EXPECT_TRUE(absl::StrContains(
      text, "# TYPE lepton_request_duration_seconds histogram\n"));
  EXPECT_TRUE(
      absl::StrContains(text, "# TYPE lepton_requests_total counter\n"));
  EXPECT_TRUE(absl::EndsWith(text, "\n"));
}

TEST(RenderMetricsTest, ModelSeriesFromModelInfo) {
  ScrapeState state;
  state.now = absl::FromUnixSeconds(1000);
  state.update_queue_depth = 3;
  state.resident_memory_bytes = 123456789;
  ModelInfo a;
  a.name = "ctr";
  a.version = 42;
  a.counters.examples_seen = 1000;
  a.counters.updates = 41;
  a.examples_learned_total = 1000;
  a.updates_applied_total = 41;
  a.counters.weight_seen = 4;
  a.counters.loss_sum = 1;  // progressive loss 0.25
  a.updated = absl::FromUnixSeconds(990);
  a.adaptation.drift_state = DriftState::kDrift;
  a.adaptation.drifts = 2;
  a.adaptation.refused_updates = 5;
  a.adaptation.holdout_examples = 256;
  a.adaptation.quarantined_updates = 7;
  a.adaptation.quarantine_released = 3;
  a.adaptation.quarantine_dropped = 2;
  a.adaptation.quarantine_held = 2;
  state.model_queue_depth["ctr"] = 4;
  ModelInfo b;
  b.name = "odd\"name\\";  // escaped in the label
  b.version = 1;
  b.updated = absl::FromUnixSeconds(1001);  // clock skew: never negative
  state.models = {a, b};
  R m;
  const std::string text = m.Render(state);

  EXPECT_EQ(ValueOf(text, "lepton_models"), "2");
  EXPECT_EQ(ValueOf(text, "lepton_update_queue_depth"), "3");
  EXPECT_EQ(ValueOf(text, "process_resident_memory_bytes"), "123456789");
  EXPECT_EQ(ValueOf(text, "lepton_model_version{model=\"ctr\"}"), "42");
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"ctr\"}"),
            "1000");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"ctr\"}"), "41");
  EXPECT_EQ(ValueOf(text, "lepton_model_progressive_loss{model=\"ctr\"}"),
            "0.25");
  EXPECT_EQ(ValueOf(text, "lepton_model_seconds_since_update{model=\"ctr\"}"),
            "10");
  EXPECT_EQ(ValueOf(text, "lepton_model_drift_state{model=\"ctr\"}"), "2");
  EXPECT_EQ(ValueOf(text, "lepton_model_drifts_total{model=\"ctr\"}"), "2");
  EXPECT_EQ(
      ValueOf(text, "lepton_model_guardrail_refusals_total{model=\"ctr\"}"),
      "5");
  EXPECT_EQ(ValueOf(text, "lepton_model_holdout_examples{model=\"ctr\"}"),
            "256");
  EXPECT_EQ(
      ValueOf(text, "lepton_model_quarantined_updates_total{model=\"ctr\"}"),
      "7");
  EXPECT_EQ(
      ValueOf(text, "lepton_model_quarantine_released_total{model=\"ctr\"}"),
      "3");
  EXPECT_EQ(
      ValueOf(text, "lepton_model_quarantine_dropped_total{model=\"ctr\"}"),
      "2");
  EXPECT_EQ(ValueOf(text, "lepton_model_quarantine_held{model=\"ctr\"}"), "2");
  EXPECT_EQ(ValueOf(text, "lepton_model_update_queue_depth{model=\"ctr\"}"),
            "4");
  // No update of its own waiting: 0.
  EXPECT_EQ(ValueOf(text,
                    "lepton_model_update_queue_depth{model="
                    "\"odd\\\"name\\\\\"}"),
            "0");
  EXPECT_EQ(ValueOf(text, "lepton_model_version{model=\"odd\\\"name\\\\\"}"),
            "1");
  EXPECT_EQ(ValueOf(text,
                    "lepton_model_seconds_since_update{model="
                    "\"odd\\\"name\\\\\"}"),
            "0");
}

TEST(RenderMetricsTest, NoModelsStillNamesEveryMetric) {
  R m;
  const std::string text = m.Render(ScrapeState{});
  for (const char* name : {"lepton_requests_total",
                           "lepton_request_duration_seconds",
                           "lepton_models",
                           "lepton_update_queue_depth",
                           "process_resident_memory_bytes",
                           "lepton_model_version",
                           "lepton_model_examples_seen_total",
                           "lepton_model_progressive_loss",
                           "lepton_model_seconds_since_update",
                           "lepton_model_drift_state",
                           "lepton_model_drifts_total",
                           "lepton_model_guardrail_refusals_total",
                           "lepton_model_holdout_examples",
                           "lepton_model_quarantined_updates_total",
                           "lepton_model_quarantine_released_total",
                           "lepton_model_quarantine_dropped_total",
                           "lepton_model_quarantine_held",
                           "lepton_model_promotions_total",
                           "lepton_model_memory_bytes",
                           "lepton_model_update_queue_depth",
                           "lepton_model_updates_total",
                           "lepton_model_version_examples_seen",
                           "lepton_model_version_updates"}) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("# TYPE ", name, " ")))
        << name;
  }
  EXPECT_EQ(ValueOf(text, "lepton_models"), "0");
}

// A model whose newest version has learned `examples` in `updates` calls.
ModelInfo Learned(const std::string& name, uint64_t version, uint64_t examples,
                  uint64_t updates, absl::Time created) {
  ModelInfo info;
  info.name = name;
  info.version = version;
  info.counters.examples_seen = examples;
  info.counters.updates = updates;
  info.examples_learned_total = examples;
  info.updates_applied_total = updates;
  info.created = created;
  return info;
}

TEST(RenderMetricsTest, CountersNeverDecreaseAcrossARollback) {
  const absl::Time created = absl::FromUnixSeconds(100);
  R m;
  ScrapeState state;
  state.models = {Learned("m", 3, 64, 2, created)};
  std::string text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"m\"}"),
            "64");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"m\"}"), "2");

  // Rolled back to version 2's state (32 examples, 1 update) as version 4:
  // the counters stay, the version's own figures go back.
  state.models = {Learned("m", 4, 32, 1, created)};
  state.models[0].examples_learned_total = 64;
  state.models[0].updates_applied_total = 2;
  text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"m\"}"),
            "64");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"m\"}"), "2");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_examples_seen{model=\"m\"}"),
            "32");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_updates{model=\"m\"}"), "1");
  EXPECT_EQ(ValueOf(text, "lepton_model_version{model=\"m\"}"), "4");

  // Learning again: the counters grow by what the version learned since.
  state.models = {Learned("m", 5, 48, 2, created)};
  state.models[0].examples_learned_total = 80;
  state.models[0].updates_applied_total = 3;
  text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"m\"}"),
            "80");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"m\"}"), "3");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_examples_seen{model=\"m\"}"),
            "48");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_updates{model=\"m\"}"), "2");
}

TEST(RenderMetricsTest, AdaptationCountersNeverDecreaseEither) {
  R m;
  ScrapeState state;
  state.models = {Learned("m", 3, 64, 2, absl::FromUnixSeconds(1))};
  state.models[0].adaptation.drifts = 3;
  state.models[0].adaptation.promotions = 1;
  m.Render(state);
  state.models[0].adaptation.drifts = 1;  // a rollback
  state.models[0].adaptation.promotions = 0;
  std::string text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_drifts_total{model=\"m\"}"), "3");
  EXPECT_EQ(ValueOf(text, "lepton_model_promotions_total{model=\"m\"}"), "1");
  state.models[0].adaptation.drifts = 2;  // one more drift
  text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_drifts_total{model=\"m\"}"), "4");
}

// Every line of a series of `model`.
std::vector<std::string> SeriesOf(const std::string& text,
                                  absl::string_view model) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, absl::StrCat("{model=\"", model, "\"}"))) {
      lines.emplace_back(line);
    }
  }
  return lines;
}

TEST(RenderMetricsTest, DeletedModelsLeaveAndComeBackFresh) {
  R m;
  ScrapeState state;
  state.models = {Learned("a", 2, 10, 1, absl::FromUnixSeconds(1)),
                  Learned("b", 5, 40, 4, absl::FromUnixSeconds(2))};
  std::string text = m.Render(state);
  EXPECT_EQ(SeriesOf(text, "b").size(), 20u) << text;  // every model metric

  // b deleted: every series of b leaves, a's stay.
  state.models = {state.models[0]};
  text = m.Render(state);
  EXPECT_TRUE(SeriesOf(text, "b").empty()) << text;
  EXPECT_EQ(SeriesOf(text, "a").size(), 20u);
  EXPECT_EQ(ValueOf(text, "lepton_models"), "1");
  // Its families stay named.
  EXPECT_TRUE(absl::StrContains(
      text, "# TYPE lepton_model_examples_seen_total counter\n"));

  // b created again, and a deleted and created again between two scrapes:
  // both start from zero.
  state.models = {Learned("a", 1, 3, 1, absl::FromUnixSeconds(3)),
                  Learned("b", 1, 6, 1, absl::FromUnixSeconds(4))};
  text = m.Render(state);
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"a\"}"),
            "3");
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"b\"}"),
            "6");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"b\"}"), "1");
}

TEST(ResidentMemoryTest, GrowsWithTouchedMemory) {
  const int64_t before = ResidentMemoryBytes();
  EXPECT_GT(before, 0);
  std::vector<char> block(64 << 20, 1);  // touched: resident
  const int64_t after = ResidentMemoryBytes();
  EXPECT_GT(after, before + (32 << 20)) << before << " -> " << after;
  EXPECT_EQ(block[12345], 1);
}

// A TCP connection to 127.0.0.1:port, or -1. Reads time out after 30 s.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return -1;
  }
  return fd;
}

// GET /metrics on a new connection: the whole response (the server closes
// the connection after it), or "" on an error.
std::string Scrape(int port) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::string response;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start("127.0.0.1:0", [this] {
          ScrapeState state;
          state.models = {Learned("m", 7, 70, 6, absl::FromUnixSeconds(1))};
          return metrics_.Render(state);
        });
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = *std::move(http);
  }
  void TearDown() override {
    for (int fd : idle_) close(fd);
  }

  // Opens `n` connections that send nothing.
  void OpenIdle(int n) {
    for (int i = 0; i < n; ++i) {
      const int fd = Connect(http_->port());
      ASSERT_GE(fd, 0);
      idle_.push_back(fd);
    }
    // Time for civetweb to accept them and hand them to its workers.
    absl::SleepFor(absl::Milliseconds(200));
  }

  // Scrapes once; the response must be whole.
  absl::Duration TimedScrape() {
    const absl::Time start = absl::Now();
    const std::string response = Scrape(http_->port());
    const absl::Duration took = absl::Now() - start;
    EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 200 OK\r\n")) << response;
    EXPECT_TRUE(absl::StrContains(
        response, "\nlepton_model_version_examples_seen{model=\"m\"} 70\n"))
        << response;
    return took;
  }

  Metrics metrics_;
  std::unique_ptr<MetricsHttpServer> http_;
  std::vector<int> idle_;
};

TEST_F(MetricsHttpTest, IdleConnectionsDoNotBlindScrapes) {
  // More than the two threads the endpoint once had, fewer than it has now.
  ASSERT_NO_FATAL_FAILURE(OpenIdle(6));
  // Well under the request timeout: no scrape waited for an idle one.
  EXPECT_LT(TimedScrape(), absl::Seconds(3));
  EXPECT_LT(TimedScrape(), absl::Seconds(3));
}

TEST_F(MetricsHttpTest, IdleConnectionsBeyondTheThreadsAreDroppedSoon) {
  // Every worker busy with an idle connection, and more waiting: a scrape
  // waits only until the request timeout drops them.
  ASSERT_NO_FATAL_FAILURE(OpenIdle(MetricsHttpServer::kThreads + 4));
  EXPECT_LT(TimedScrape(),
            MetricsHttpServer::kRequestTimeout + absl::Seconds(3));
}

}  // namespace
}  // namespace lepton::server

namespace lepton::server_test {
namespace {

using server::ValueOf;

constexpr int64_t kD = 4;

class MetricsServiceTest : public ServiceTest {
 protected:
  // Learns 4 examples in one Update call.
  void Learn() {
    ASSERT_TRUE(IsOk(Update(
        UpdateRequestOf("m", gen_.Examples(v1::LINEAR_REGRESSION, kD, 0, 4)))));
  }
  std::string Value(absl::string_view metric) {
    return ValueOf(server_->RenderMetrics(),
                   absl::StrCat(metric, "{model=\"m\"}"));
  }

  DataGen gen_{11};
};

TEST_F(MetricsServiceTest, RollbackLeavesCountersAndSetsVersionGauges) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(Learn());  // version 2: 4 examples, 1 update
  ASSERT_NO_FATAL_FAILURE(Learn());  // version 3: 8 examples, 2 updates
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "8");
  EXPECT_EQ(Value("lepton_model_updates_total"), "2");

  v1::RollbackRequest rollback;
  rollback.set_name("m");
  rollback.set_version(2);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(Call(&Stub::Rollback, rollback, &info)));
  ASSERT_EQ(info.version(), 4u);
  const std::string text = server_->RenderMetrics();
  EXPECT_EQ(ValueOf(text, "lepton_model_examples_seen_total{model=\"m\"}"),
            "8");
  EXPECT_EQ(ValueOf(text, "lepton_model_updates_total{model=\"m\"}"), "2");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_examples_seen{model=\"m\"}"),
            "4");
  EXPECT_EQ(ValueOf(text, "lepton_model_version_updates{model=\"m\"}"), "1");
  EXPECT_EQ(ValueOf(text, "lepton_model_version{model=\"m\"}"), "4");

  ASSERT_NO_FATAL_FAILURE(Learn());  // version 5: 8 examples, 2 updates
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "12");
  EXPECT_EQ(Value("lepton_model_updates_total"), "3");
  EXPECT_EQ(Value("lepton_model_version_examples_seen"), "8");
  EXPECT_EQ(Value("lepton_model_version_updates"), "2");
}

TEST_F(MetricsServiceTest, LearningRightAfterARollbackCountsInFull) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(Learn());  // version 2: 4 examples
  ASSERT_NO_FATAL_FAILURE(Learn());  // version 3: 8 examples
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "8");
  v1::RollbackRequest rollback;
  rollback.set_name("m");
  rollback.set_version(2);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(Call(&Stub::Rollback, rollback, &info)));
  // No scrape between the rollback and the update: the version's figure is
  // back at 8, yet the 4 examples learned count.
  ASSERT_NO_FATAL_FAILURE(Learn());  // version 5: 8 examples
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "12");
  EXPECT_EQ(Value("lepton_model_updates_total"), "3");
  EXPECT_EQ(Value("lepton_model_version_examples_seen"), "8");
}

TEST_F(MetricsServiceTest, DeletedModelLeavesAndComesBackFresh) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(Learn());
  ASSERT_NO_FATAL_FAILURE(Learn());
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "8");

  ASSERT_TRUE(IsOk(DeleteModel("m")));
  const std::string text = server_->RenderMetrics();
  EXPECT_FALSE(absl::StrContains(text, "{model=\"m\"}")) << text;
  EXPECT_EQ(ValueOf(text, "lepton_models"), "0");

  // Deleted and created again between two scrapes: from zero too.
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(Learn());
  ASSERT_NO_FATAL_FAILURE(Learn());
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "8");
  ASSERT_TRUE(IsOk(DeleteModel("m")));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LINEAR_REGRESSION, kD))));
  ASSERT_NO_FATAL_FAILURE(Learn());
  EXPECT_EQ(Value("lepton_model_examples_seen_total"), "4");
  EXPECT_EQ(Value("lepton_model_updates_total"), "1");
}

}  // namespace
}  // namespace lepton::server_test
