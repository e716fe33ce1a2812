// WatchFeed without gRPC calls: a fake sink records the writes, and the test
// completes them (OnWriteDone) when it wants, so a slow client, the bounded
// queue (dropped_events), the order rule and the end are deterministic.
#include "server/watch_feed.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lepton::server {
namespace {

// Records what the feed does; thread-safe (alarms call in from the
// polling thread).
class FakeSink : public WatchFeed::Sink {
 public:
  void WriteEvent(const v1::ModelEvent* event) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(in_flight_) << "two writes at once";
    EXPECT_FALSE(finished_.has_value()) << "a write after the finish";
    in_flight_ = true;
    written_.push_back(*event);
  }
  void SendInitialMetadata() override {
    absl::MutexLock lock(&mu_);
    ++metadata_;
  }
  void FinishWatch(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(finished_.has_value()) << "finished twice";
    finished_ = status;
  }

  std::vector<v1::ModelEvent> written() {
    absl::MutexLock lock(&mu_);
    return written_;
  }
  bool in_flight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }
  std::optional<grpc::Status> finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }
  int metadata() {
    absl::MutexLock lock(&mu_);
    return metadata_;
  }
  // Completes the write in flight, as gRPC would.
  void Complete(WatchFeed* feed, bool ok = true) {
    {
      absl::MutexLock lock(&mu_);
      ASSERT_TRUE(in_flight_);
      in_flight_ = false;
    }
    feed->OnWriteDone(ok);
  }
  // Completes writes until none is in flight.
  void Drain(WatchFeed* feed) {
    while (in_flight()) Complete(feed);
  }

 private:
  absl::Mutex mu_;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::ModelEvent> written_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> finished_ ABSL_GUARDED_BY(mu_);
  int metadata_ ABSL_GUARDED_BY(mu_) = 0;
};

ModelEvent Event(ModelEvent::Kind kind, uint64_t version, uint64_t example) {
  ModelEvent e;
  e.kind = kind;
  e.version = version;
  e.example = example;
  e.time = absl::Now();
  return e;
}

// The throttle's alarms run on a CallPoller of the test's, as they would on
// the server's.
class WatchFeedTest : public ::testing::Test {
 protected:
  WatchFeedTest() : poller_(std::make_unique<grpc::CompletionQueue>()) {
    poller_.Start();
  }
  ~WatchFeedTest() override { poller_.ShutdownAndJoin(); }

  std::shared_ptr<WatchFeed> Make(absl::Duration interval) {
    return std::make_shared<WatchFeed>(&sink_, &poller_, "m", interval);
  }
  FakeSink sink_;
  rpc::CallPoller poller_;
};

// A client that does not read: the queue keeps the newest 1000, and the
// next event written says how many were dropped before it.
TEST_F(WatchFeedTest, FullQueueDropsTheOldestAndCountsThem) {
  std::shared_ptr<WatchFeed> feed = Make(absl::Hours(1));
  constexpr int kEvents = 1 + WatchFeed::kMaxQueuedEvents + 500;
  for (int i = 1; i <= kEvents; ++i) {
    feed->Push(Event(ModelEvent::Kind::kDriftWarning, 1, i));
  }
  ASSERT_EQ(sink_.written().size(), 1u);  // the first, still in flight
  sink_.Drain(feed.get());
  std::vector<v1::ModelEvent> written = sink_.written();
  ASSERT_EQ(written.size(), 1 + WatchFeed::kMaxQueuedEvents);
  EXPECT_EQ(written[0].example(), 1u);
  EXPECT_EQ(written[0].dropped_events(), 0u);
  // Events 2..501 were dropped; 502 is the oldest kept.
  EXPECT_EQ(written[1].example(), 502u);
  EXPECT_EQ(written[1].dropped_events(), 500u);
  for (size_t i = 2; i < written.size(); ++i) {
    EXPECT_EQ(written[i].dropped_events(), 0u);
    EXPECT_EQ(written[i].example(), written[i - 1].example() + 1);
  }
  EXPECT_EQ(written.back().example(), static_cast<uint64_t>(kEvents));
  EXPECT_EQ(written.back().model(), "m");
  EXPECT_EQ(written.back().kind(), v1::DRIFT_WARNING);
}

// Within the interval, versions are held and coalesced; a drift releases
// the held one ahead of it.
TEST_F(WatchFeedTest, AnotherEventReleasesTheHeldVersionAheadOfIt) {
  std::shared_ptr<WatchFeed> feed = Make(absl::Hours(1));
  feed->Push(Event(ModelEvent::Kind::kVersion, 2, 10));
  feed->Push(Event(ModelEvent::Kind::kVersion, 3, 20));
  feed->Push(Event(ModelEvent::Kind::kVersion, 4, 30));
  sink_.Drain(feed.get());
  ASSERT_EQ(sink_.written().size(), 1u);  // 3 and 4 are held
  feed->Push(Event(ModelEvent::Kind::kDrift, 4, 25));
  feed->Push(Event(ModelEvent::Kind::kVersion, 5, 40));  // held again
  sink_.Drain(feed.get());
  std::vector<v1::ModelEvent> written = sink_.written();
  ASSERT_EQ(written.size(), 3u);
  EXPECT_EQ(written[0].kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(written[0].version(), 2u);
  EXPECT_EQ(written[1].kind(), v1::VERSION_PUBLISHED);
  EXPECT_EQ(written[1].version(), 4u);
  EXPECT_EQ(written[1].skipped_versions(), 1u);
  EXPECT_EQ(written[2].kind(), v1::DRIFT_DETECTED);
  // The deletion releases version 5 and is the last event; then OK.
  feed->Push(Event(ModelEvent::Kind::kDeleted, 5, 40));
  feed->Push(Event(ModelEvent::Kind::kVersion, 6, 50));  // ignored
  sink_.Drain(feed.get());
  written = sink_.written();
  ASSERT_EQ(written.size(), 5u);
  EXPECT_EQ(written[3].version(), 5u);
  EXPECT_EQ(written[3].skipped_versions(), 0u);
  EXPECT_EQ(written[4].kind(), v1::MODEL_DELETED);
  ASSERT_TRUE(sink_.finished().has_value());
  EXPECT_TRUE(sink_.finished()->ok());
}

// The alarm sends the held version once the interval has passed, without
// any further event.
TEST_F(WatchFeedTest, HeldVersionIsSentWhenTheIntervalEnds) {
  std::shared_ptr<WatchFeed> feed = Make(absl::Milliseconds(50));
  const absl::Time start = absl::Now();
  for (uint64_t v = 2; v <= 6; ++v) {
    feed->Push(Event(ModelEvent::Kind::kVersion, v, v));
  }
  sink_.Drain(feed.get());
  while (sink_.written().size() < 2 &&
         absl::Now() - start < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Duration took = absl::Now() - start;
  std::vector<v1::ModelEvent> written = sink_.written();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_GE(took, absl::Milliseconds(45));
  EXPECT_EQ(written[1].version(), 6u);
  EXPECT_EQ(written[1].skipped_versions(), 3u);
  sink_.Drain(feed.get());
}

// End() waits for the write in flight, then finishes once; nothing is
// written after it.
TEST_F(WatchFeedTest, EndFinishesAfterTheWriteInFlight) {
  std::shared_ptr<WatchFeed> feed = Make(absl::Hours(1));
  feed->Subscribed();
  EXPECT_EQ(sink_.metadata(), 1);
  feed->Push(Event(ModelEvent::Kind::kDrift, 1, 1));
  feed->Push(Event(ModelEvent::Kind::kDrift, 1, 2));
  feed->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  EXPECT_FALSE(sink_.finished().has_value());
  sink_.Complete(feed.get());
  ASSERT_TRUE(sink_.finished().has_value());
  EXPECT_EQ(sink_.finished()->error_code(), grpc::StatusCode::UNAVAILABLE);
  feed->Push(Event(ModelEvent::Kind::kDrift, 1, 3));
  feed->End(grpc::Status::CANCELLED);  // no second finish
  EXPECT_EQ(sink_.written().size(), 1u);
}

// A write that fails (the call is broken) ends the call; after Detach()
// nothing reaches the sink.
TEST_F(WatchFeedTest, FailedWriteEndsAndDetachSilences) {
  std::shared_ptr<WatchFeed> feed = Make(absl::Hours(1));
  feed->Push(Event(ModelEvent::Kind::kDrift, 1, 1));
  feed->Push(Event(ModelEvent::Kind::kDrift, 1, 2));
  sink_.Complete(feed.get(), /*ok=*/false);
  ASSERT_TRUE(sink_.finished().has_value());
  EXPECT_FALSE(sink_.finished()->ok());
  feed->Detach();
  feed->Push(Event(ModelEvent::Kind::kDeleted, 1, 2));
  feed->Subscribed();
  EXPECT_EQ(sink_.written().size(), 1u);
  EXPECT_EQ(sink_.metadata(), 0);
}

}  // namespace
}  // namespace lepton::server
