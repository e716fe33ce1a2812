// WatchModel over the service: errors at the start, VERSION_PUBLISHED after
// updates and rollbacks, its throttling (coalescing with skipped_versions),
// the adaptation's events (DRIFT_DETECTED, UPDATE_REFUSED), MODEL_DELETED
// ending the stream with OK, and a watch that neither holds up nor survives
// a graceful shutdown or a client's cancellation.
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service_test_support.h"

namespace lepton::server_test {
namespace {

using Reader = grpc::ClientReader<v1::ModelEvent>;

constexpr int64_t kD = 2;

// An open WatchModel call.
struct Watch {
  grpc::ClientContext context;
  std::unique_ptr<Reader> reader;

  // Reads events until `stop` returns true for one (returned with the ones
  // before it) or the stream ends.
  std::vector<v1::ModelEvent> ReadUntil(
      const std::function<bool(const v1::ModelEvent&)>& stop) {
    std::vector<v1::ModelEvent> events;
    v1::ModelEvent event;
    while (reader->Read(&event)) {
      events.push_back(event);
      if (stop(event)) break;
    }
    return events;
  }
};

// A logistic example: label 1 iff x0 > 0 (flipped: iff x0 <= 0).
v1::Example RuleExample(float x0, float x1, bool flipped, bool holdout) {
  v1::Example e;
  e.mutable_features()->add_dense(x0);
  e.mutable_features()->add_dense(x1);
  const bool positive = x0 > 0;
  e.set_label(positive != flipped ? 1.0f : 0.0f);
  e.set_holdout(holdout);
  return e;
}

class WatchModelTest : public ServiceTest {
 protected:
  // Opens a watch and waits until the server subscribed it (its initial
  // metadata), so that it sees every event published from now on.
  std::unique_ptr<Watch> OpenWatch(const std::string& name,
                                   uint32_t interval_ms = 0) {
    auto watch = std::make_unique<Watch>();
    watch->context.set_deadline(std::chrono::system_clock::now() +
                                std::chrono::seconds(60));
    v1::WatchModelRequest request;
    request.set_name(name);
    request.set_min_version_interval_ms(interval_ms);
    watch->reader = stub_->WatchModel(&watch->context, request);
    watch->reader->WaitForInitialMetadata();
    return watch;
  }

  // The status of a watch that ends at once (no events).
  grpc::Status WatchStatus(const std::string& name) {
    std::unique_ptr<Watch> watch = OpenWatch(name);
    v1::ModelEvent event;
    EXPECT_FALSE(watch->reader->Read(&event)) << event.ShortDebugString();
    return watch->reader->Finish();
  }

  // `n` examples of the rule, deterministic.
  v1::UpdateRequest RuleRequest(const std::string& name, int n, bool flipped,
                                bool holdout = false) {
    v1::UpdateRequest request;
    request.set_model(name);
    for (int i = 0; i < n; ++i) {
      const float x0 = uniform_(rng_);
      const float x1 = uniform_(rng_);
      *request.add_examples() = RuleExample(x0, x1, flipped, holdout);
    }
    return request;
  }

  std::mt19937 rng_{7};
  std::uniform_real_distribution<float> uniform_{-1.0f, 1.0f};
};

TEST_F(WatchModelTest, MissingModelIsNotFoundAndEmptyNameInvalid) {
  EXPECT_EQ(WatchStatus("nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(IsInvalid(WatchStatus(""), "name"));
}

TEST_F(WatchModelTest, UpdateSendsTheVersionItPublished) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m");
  v1::UpdateResponse response;
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 3, false), &response)));

  v1::ModelEvent event;
  ASSERT_TRUE(watch->reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(event.model(), "m");
  EXPECT_EQ(event.version(), response.version());
  EXPECT_EQ(event.version(), 2u);
  EXPECT_EQ(event.example(), 3u);
  EXPECT_EQ(event.skipped_versions(), 0u);
  EXPECT_EQ(event.dropped_events(), 0u);
  EXPECT_GT(event.time().seconds(), 0);
}

// A rollback publishes a version too.
TEST_F(WatchModelTest, RollbackIsAVersionEvent) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m", 1);
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 4, false))));
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 4, false))));
  v1::RollbackRequest request;
  request.set_name("m");
  request.set_version(2);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(Call(&Stub::Rollback, request, &info)));
  ASSERT_EQ(info.version(), 4u);
  std::vector<v1::ModelEvent> events = watch->ReadUntil(
      [](const v1::ModelEvent& e) { return e.version() == 4; });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(events.back().version(), 4u);
  EXPECT_EQ(events.back().example(), 4u);  // version 2's count
}

// 50 quick updates with a 200 ms interval: the first version is sent at
// once, the rest coalesced; the newest one always arrives in the end, and
// every version published is either sent or counted as skipped.
TEST_F(WatchModelTest, VersionsAreThrottledAndCoalesced) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m", 200);
  constexpr int kUpdates = 50;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kUpdates; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 1, false))));
  }
  const absl::Duration took = absl::Now() - start;
  const uint64_t final_version = VersionOf("m");
  ASSERT_EQ(final_version, 1u + kUpdates);

  std::vector<v1::ModelEvent> events = watch->ReadUntil(
      [&](const v1::ModelEvent& e) { return e.version() == final_version; });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().version(), final_version);
  uint64_t counted = 0;
  uint64_t previous = 1;
  for (const v1::ModelEvent& e : events) {
    EXPECT_EQ(e.kind(), v1::VERSION_PUBLISHED);
    EXPECT_EQ(e.dropped_events(), 0u);
    // Versions only grow, and each skips exactly the ones in between.
    EXPECT_EQ(e.version(), previous + 1 + e.skipped_versions());
    previous = e.version();
    counted += 1 + e.skipped_versions();
  }
  EXPECT_EQ(counted, static_cast<uint64_t>(kUpdates));
  // At most one per 200 ms after the first, plus the one held at the end.
  EXPECT_LE(events.size(),
            static_cast<size_t>(2 + absl::ToInt64Milliseconds(took) / 200))
      << "updates took " << took;
  EXPECT_LT(events.size(), static_cast<size_t>(kUpdates) / 2);
  EXPECT_EQ(events.front().version(), 2u);  // the first, at once
  EXPECT_EQ(events.front().skipped_versions(), 0u);
}

TEST_F(WatchModelTest, DriftIsReportedAtTheModelsExampleCount) {
  v1::ModelSpec spec = Spec(v1::LOGISTIC_REGRESSION, kD);
  spec.mutable_drift()->set_detector(v1::PAGE_HINKLEY);
  spec.mutable_drift()->set_ph_lambda(5);
  spec.mutable_drift()->set_ph_warning_lambda(2.5);
  spec.mutable_drift()->set_min_observations(10);
  ASSERT_TRUE(IsOk(CreateModel("m", spec)));
  std::unique_ptr<Watch> watch = OpenWatch("m", 1);
  constexpr int kEasy = 400;
  for (int i = 0; i < kEasy / 50; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, false))));
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, true))));
  }
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  ASSERT_GE(info.drift().drifts(), 1u) << "the data did not drift enough";

  std::vector<v1::ModelEvent> events = watch->ReadUntil(
      [&](const v1::ModelEvent& e) { return e.version() == info.version(); });
  std::vector<v1::ModelEvent> drifts;
  for (const v1::ModelEvent& e : events) {
    if (e.kind() == v1::DRIFT_DETECTED) drifts.push_back(e);
  }
  ASSERT_EQ(drifts.size(), info.drift().drifts());
  const v1::ModelEvent& last = drifts.back();
  EXPECT_EQ(last.example(), info.drift().change_example());
  EXPECT_GT(drifts.front().example(), static_cast<uint64_t>(kEasy));
  EXPECT_LE(last.example(), info.examples_seen());
  EXPECT_FALSE(last.detail().empty());
}

TEST_F(WatchModelTest, RefusedUpdateIsReported) {
  v1::ModelSpec spec = Spec(v1::LOGISTIC_REGRESSION, kD);
  spec.mutable_guardrail()->set_policy(v1::GUARDRAIL_REJECT);
  spec.mutable_guardrail()->set_min_holdout(10);
  // A fast learner, so that the flipped batch does real damage; no drift
  // detector, so that UPDATE_REFUSED is the only event.
  spec.mutable_optimizer()->set_learning_rate(1.0f);
  spec.mutable_drift()->set_detector(v1::NO_DRIFT_DETECTOR);
  ASSERT_TRUE(IsOk(CreateModel("m", spec)));
  // Trained before the holdout set exists (the guardrail checks nothing
  // below min_holdout), then 50 holdout examples of the same rule.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, false))));
  }
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, false, /*holdout=*/true))));
  v1::ModelInfo before;
  ASSERT_TRUE(IsOk(GetModel("m", &before)));

  std::unique_ptr<Watch> watch = OpenWatch("m");
  EXPECT_EQ(Update(RuleRequest("m", 50, true)).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::ModelEvent event;
  ASSERT_TRUE(watch->reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::UPDATE_REFUSED);
  EXPECT_EQ(event.version(), before.version());
  EXPECT_EQ(event.example(), before.examples_seen());
  EXPECT_FALSE(event.detail().empty());
  EXPECT_EQ(VersionOf("m"), before.version());
}

TEST_F(WatchModelTest, QuarantineHoldsBackThenDropsAndReportsBoth) {
  v1::ModelSpec spec = Spec(v1::LOGISTIC_REGRESSION, kD);
  spec.mutable_guardrail()->set_policy(v1::GUARDRAIL_QUARANTINE);
  spec.mutable_guardrail()->set_min_holdout(10);
  spec.mutable_guardrail()->set_holdout_capacity(50);
  spec.mutable_guardrail()->set_recheck_holdout(50);
  spec.mutable_guardrail()->set_quarantine_capacity(3);
  spec.mutable_optimizer()->set_learning_rate(1.0f);
  spec.mutable_drift()->set_detector(v1::NO_DRIFT_DETECTOR);
  v1::ModelInfo created;
  ASSERT_TRUE(IsOk(CreateModel("m", spec, &created)));
  EXPECT_EQ(created.spec().guardrail().policy(), v1::GUARDRAIL_QUARANTINE);
  EXPECT_EQ(created.spec().guardrail().quarantine_capacity(), 3);
  EXPECT_EQ(created.spec().guardrail().recheck_holdout(), 50);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, false))));
  }
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, false, /*holdout=*/true))));
  v1::ModelInfo before;
  ASSERT_TRUE(IsOk(GetModel("m", &before)));

  std::unique_ptr<Watch> watch = OpenWatch("m");
  v1::UpdateResponse held;
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 50, true), &held)));
  EXPECT_TRUE(held.quarantined());
  EXPECT_EQ(held.version(), before.version() + 1);
  std::vector<v1::ModelEvent> events =
      watch->ReadUntil([](const v1::ModelEvent& e) {
        return e.kind() == v1::UPDATE_QUARANTINED;
      });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), v1::UPDATE_QUARANTINED);
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.validation().quarantine_held(), 1);
  EXPECT_EQ(info.validation().quarantined_updates(), 1u);
  EXPECT_EQ(info.examples_seen(), before.examples_seen());

  // 50 newer holdout examples of the same rule: the second check fails.
  v1::UpdateResponse checked;
  ASSERT_TRUE(
      IsOk(Update(RuleRequest("m", 50, false, /*holdout=*/true), &checked)));
  EXPECT_FALSE(checked.quarantined());
  EXPECT_EQ(checked.quarantine_dropped(), 1);
  EXPECT_EQ(checked.quarantine_released(), 0);
  events = watch->ReadUntil([](const v1::ModelEvent& e) {
    return e.kind() == v1::QUARANTINE_DROPPED;
  });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), v1::QUARANTINE_DROPPED);
  ASSERT_TRUE(IsOk(GetModel("m", &info)));
  EXPECT_EQ(info.validation().quarantine_held(), 0);
  EXPECT_EQ(info.validation().quarantine_dropped(), 1u);
}

TEST_F(WatchModelTest, DeletionIsTheLastEventAndEndsWithOk) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m", 60000);
  // The first version goes at once; the next two are held by the (one
  // minute) interval and released ahead of the deletion, the newest of them
  // counting the other as skipped.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(IsOk(Update(RuleRequest("m", 1, false))));
  }
  ASSERT_TRUE(IsOk(DeleteModel("m")));

  std::vector<v1::ModelEvent> events =
      watch->ReadUntil([](const v1::ModelEvent&) { return false; });
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(events[0].version(), 2u);
  EXPECT_EQ(events[1].kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(events[1].version(), 4u);
  EXPECT_EQ(events[1].skipped_versions(), 1u);
  EXPECT_EQ(events[2].kind(), v1::MODEL_DELETED);
  EXPECT_EQ(events[2].version(), 4u);
  EXPECT_TRUE(IsOk(watch->reader->Finish()));
}

// The client cancels: the call ends CANCELLED, and the model and the server
// carry on (a later update, a new watch).
TEST_F(WatchModelTest, ClientCancelEndsTheWatch) {
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m");
  watch->context.TryCancel();
  v1::ModelEvent event;
  EXPECT_FALSE(watch->reader->Read(&event));
  EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 2, false))));

  std::unique_ptr<Watch> again = OpenWatch("m");
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 2, false))));
  ASSERT_TRUE(again->reader->Read(&event));
  EXPECT_EQ(event.version(), 3u);
}

// Over loopback TCP with a 30 s grace: an open, idle watch does not hold up
// Shutdown(); it ends with UNAVAILABLE.
TEST_F(WatchModelTest, ShutdownEndsAnOpenWatchPromptly) {
  server::ServerOptions options;
  options.shutdown_grace = absl::Seconds(30);
  ASSERT_NO_FATAL_FAILURE(StartServer(options, Transport::kLoopback));
  ASSERT_TRUE(IsOk(CreateModel("m", Spec(v1::LOGISTIC_REGRESSION, kD))));
  std::unique_ptr<Watch> watch = OpenWatch("m");
  ASSERT_TRUE(IsOk(Update(RuleRequest("m", 2, false))));
  v1::ModelEvent event;
  ASSERT_TRUE(watch->reader->Read(&event));

  const absl::Time start = absl::Now();
  server_->Shutdown();
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_FALSE(watch->reader->Read(&event));
  EXPECT_TRUE(IsError(watch->reader->Finish(), grpc::StatusCode::UNAVAILABLE,
                      "server shutting down"));
}

}  // namespace
}  // namespace lepton::server_test
