// The dashboard's history (model_history.h: its bound, its thinning, its
// events) and its JSON API (dashboard.h) over an in-memory store: a model
// trained through a concept flip shows its drift, its series and its
// versions; with access control the API takes a reader's token; and the
// page and API are served on the metrics port beside /metrics.
#include "server/dashboard.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics_http.h"
#include "server/model_history.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir.h"

namespace lepton::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HistorySample SampleAt(int i) {
  HistorySample s;
  s.time = absl::FromUnixSeconds(1000 + i);
  s.version = static_cast<uint64_t>(i) + 1;
  s.examples_seen = static_cast<uint64_t>(i) * 10;
  s.weight_seen = i * 10.0;
  s.loss_sum = i * 5.0;
  return s;
}

TEST(ModelHistoryTest, SamplesStayWithinTheBoundAndKeepTheNewestHalf) {
  ModelHistory history;
  constexpr int kAdded = 20000;
  for (int i = 0; i < kAdded; ++i) {
    history.AddSample(SampleAt(i));
    ASSERT_LE(history.Samples().size(), ModelHistory::kMaxSamples);
  }
  const std::vector<HistorySample> samples = history.Samples();
  EXPECT_GE(samples.size(), ModelHistory::kMaxSamples / 2);
  EXPECT_EQ(history.thinned_samples(), kAdded - samples.size());
  // In order, the first one kept, and the newest at full resolution.
  EXPECT_EQ(samples.front().version, 1u);
  EXPECT_EQ(samples.back().version, static_cast<uint64_t>(kAdded));
  for (size_t i = 1; i < samples.size(); ++i) {
    ASSERT_LT(samples[i - 1].version, samples[i].version);
  }
  const size_t tail = ModelHistory::kMaxSamples / 4;
  for (size_t i = samples.size() - tail; i < samples.size(); ++i) {
    EXPECT_EQ(samples[i].version, samples[i - 1].version + 1);
  }
}

TEST(ModelHistoryTest, EventsDropTheOldestAndSkipPlainVersions) {
  ModelHistory history;
  ModelEvent version;
  version.kind = ModelEvent::Kind::kVersion;
  history.AddEvent(version);
  EXPECT_TRUE(history.Events().empty());
  version.detail = "rolled back to version 3";
  history.AddEvent(version);
  ASSERT_EQ(history.Events().size(), 1u);
  for (int i = 0; i < 1000; ++i) {
    ModelEvent refused;
    refused.kind = ModelEvent::Kind::kUpdateRefused;
    refused.example = static_cast<uint64_t>(i);
    history.AddEvent(refused);
  }
  const std::vector<HistoryEvent> events = history.Events();
  ASSERT_EQ(events.size(), ModelHistory::kMaxEvents);
  EXPECT_EQ(history.dropped_events(), 1001 - ModelHistory::kMaxEvents);
  EXPECT_EQ(events.back().example, 999u);
  EXPECT_EQ(events.front().example, 1000 - ModelHistory::kMaxEvents);
}

ModelSpec DriftingSpec() {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 4;
  spec.drift.detector.kind = DriftDetectorKind::kPageHinkley;
  spec.drift.policy = DriftPolicy::kBoost;
  return spec;
}

// A store with model "flip", trained on a rule and then its opposite in
// batches of 100, the dashboard sampling after every batch.
class DashboardTest : public ::testing::Test {
 protected:
  void TrainThroughAFlip(Dashboard* dashboard) {
    ASSERT_TRUE(store_.CreateModel("flip", DriftingSpec()).ok());
    dashboard->SampleNow();
    for (int i = 0; i < 40; ++i) {
      const bool flip = i >= 20;
      ASSERT_TRUE(
          store_.Update("flip", Views(RuleExamples(100, 100 + i, flip))).ok());
      dashboard->SampleNow();
    }
    ASSERT_GE(store_.GetModel("flip")->adaptation.drifts, 1u)
        << "the flip should be flagged as a drift";
  }

  ModelStore store_;
};

TEST_F(DashboardTest, TheApiShowsTheModelItsSeriesAndItsDrift) {
  Dashboard dashboard(&store_, nullptr);
  TrainThroughAFlip(&dashboard);
  const ModelInfo info = *store_.GetModel("flip");

  const std::string list = dashboard.RenderModelList();
  EXPECT_THAT(list, HasSubstr("\"name\":\"flip\""));
  EXPECT_THAT(list, HasSubstr("\"type\":\"LOGISTIC_REGRESSION\""));
  EXPECT_THAT(list, HasSubstr(absl::StrCat("\"version\":", info.version)));
  EXPECT_THAT(list, HasSubstr("\"examples_seen\":4000"));
  EXPECT_THAT(list,
              HasSubstr(absl::StrCat("\"drifts\":", info.adaptation.drifts)));

  absl::StatusOr<std::string> one = dashboard.RenderModel("flip");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_THAT(*one, HasSubstr("\"kind\":\"DRIFT\""));
  EXPECT_THAT(*one, HasSubstr("\"kind\":\"BOOST_STARTED\""));
  EXPECT_THAT(*one, Not(HasSubstr("\"kind\":\"VERSION\"")));
  // 41 samples: the model's creation, then one per batch, examples 0 to
  // 4000 by 100.
  std::string examples = "\"examples\":[0";
  for (int i = 1; i <= 40; ++i) absl::StrAppend(&examples, ",", i * 100);
  EXPECT_THAT(*one, HasSubstr(examples + "]"));
  EXPECT_THAT(*one, HasSubstr("\"retained_versions\":["));
  EXPECT_EQ(dashboard.RenderModel("nope").status().code(),
            absl::StatusCode::kNotFound);

  // A sample round with no change adds the trailing sample (rate 0), then
  // nothing.
  dashboard.SampleNow();
  dashboard.SampleNow();
  one = dashboard.RenderModel("flip");
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(*one, HasSubstr(examples + ",4000]"));
  EXPECT_THAT(*one, HasSubstr(",0],\"examples_per_second\""));
}

TEST_F(DashboardTest, ADeletedModelLeavesTheList) {
  Dashboard dashboard(&store_, nullptr);
  ASSERT_TRUE(store_.CreateModel("gone", DriftingSpec()).ok());
  dashboard.SampleNow();
  EXPECT_THAT(dashboard.RenderModelList(), HasSubstr("\"gone\""));
  ASSERT_TRUE(store_.DeleteModel("gone").ok());
  dashboard.SampleNow();
  EXPECT_THAT(dashboard.RenderModelList(), Not(HasSubstr("\"gone\"")));
}

HttpRequest Get(std::string path, std::string authorization = "") {
  HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.authorization = std::move(authorization);
  return r;
}

TEST_F(DashboardTest, WithAccessControlTheApiTakesAReadersToken) {
  absl::StatusOr<testing::ScratchDir> dir =
      testing::ScratchDir::Create("lepton-dashboard");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string tokens = dir->Path("tokens.txt");
  {
    std::ofstream out(tokens);
    out << "reader-token-0123456789 reader\n";
  }
  absl::StatusOr<std::unique_ptr<AccessControl>> access =
      AccessControl::FromFile(tokens);
  ASSERT_TRUE(access.ok()) << access.status();
  Dashboard dashboard(&store_, access->get());
  ASSERT_TRUE(store_.CreateModel("m", DriftingSpec()).ok());
  dashboard.SampleNow();

  // The page holds no data: open.
  HttpResponse page = dashboard.Handle(Get("/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("<title>Lepton dashboard</title>"));
  EXPECT_THAT(page.content_type, HasSubstr("text/html"));

  HttpResponse none = dashboard.Handle(Get("/api/models"));
  EXPECT_EQ(none.status, 401);
  EXPECT_THAT(none.body, Not(HasSubstr("\"m\"")));
  EXPECT_EQ(dashboard.Handle(Get("/api/models/m")).status, 401);
  EXPECT_EQ(
      dashboard.Handle(Get("/api/models", "Bearer wrong-token-0123456789"))
          .status,
      401);
  HttpResponse ok =
      dashboard.Handle(Get("/api/models", "Bearer reader-token-0123456789"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "application/json");
  EXPECT_THAT(ok.body, HasSubstr("\"name\":\"m\""));
  EXPECT_EQ(
      dashboard.Handle(Get("/api/models/m", "Bearer reader-token-0123456789"))
          .status,
      200);
  EXPECT_EQ(dashboard.Handle(Get("/nothing-here")).status, 404);
  HttpRequest post = Get("/api/models");
  post.method = "POST";
  EXPECT_EQ(dashboard.Handle(post).status, 405);
}

// GET `path` on a new loopback connection: the whole response.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

TEST_F(DashboardTest, ServedOnTheMetricsPortBesideMetrics) {
  Dashboard dashboard(&store_, nullptr, absl::Milliseconds(20));
  ASSERT_TRUE(store_.CreateModel("m", DriftingSpec()).ok());
  dashboard.Start();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
      MetricsHttpServer::Start(
          "127.0.0.1:0", [] { return std::string("metrics body\n"); },
          [&](const HttpRequest& r) { return dashboard.Handle(r); });
  ASSERT_TRUE(http.ok()) << http.status();
  const int port = (*http)->port();
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("\r\n\r\nmetrics body\n"));
  const std::string page = HttpGet(port, "/");
  EXPECT_TRUE(absl::StartsWith(page, "HTTP/1.1 200 OK\r\n")) << page;
  EXPECT_THAT(page, HasSubstr("Content-Security-Policy: default-src 'self'"));
  EXPECT_THAT(page, HasSubstr("</html>"));
  const std::string list = HttpGet(port, "/api/models");
  EXPECT_TRUE(absl::StartsWith(list, "HTTP/1.1 200 OK\r\n")) << list;
  EXPECT_THAT(list, HasSubstr("\"name\":\"m\""));
  EXPECT_THAT(HttpGet(port, "/api/models/m"), HasSubstr("\"series\":{"));
  EXPECT_TRUE(
      absl::StartsWith(HttpGet(port, "/api/models/nope"), "HTTP/1.1 404 "));
  (*http)->Stop();
  dashboard.Stop();
}

}  // namespace
}  // namespace lepton::server
