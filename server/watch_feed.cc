#include "server/watch_feed.h"

#include <chrono>
#include <utility>

#include "absl/time/clock.h"
#include "server/convert_adaptation.h"

namespace lepton::server {

void WatchFeed::EnqueueLocked(Item item) {
  if (queue_.size() >= kMaxQueuedEvents) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(item));
}

void WatchFeed::ReleaseVersionLocked(absl::Time now) {
  EnqueueLocked({*std::move(held_version_), versions_since_release_ - 1});
  held_version_.reset();
  versions_since_release_ = 0;
  last_release_ = now;
}

std::optional<absl::Time> WatchFeed::AlarmDueLocked(absl::Time now) {
  if (!held_version_.has_value() || alarm_armed_ || closed_) {
    return std::nullopt;
  }
  alarm_armed_ = true;
  ++alarm_generation_;
  return last_release_ + interval_;
}

std::optional<grpc::Status> WatchFeed::PumpLocked(Sink** sink) {
  *sink = sink_;
  if (sink_ == nullptr || finished_ || write_in_flight_) return std::nullopt;
  if (finish_wanted_.has_value()) {
    finished_ = true;
    return finish_wanted_;
  }
  if (queue_.empty()) return std::nullopt;
  Item item = std::move(queue_.front());
  queue_.pop_front();
  out_.Clear();
  EventToProto(model_, item.event, &out_);
  out_.set_skipped_versions(item.skipped_versions);
  out_.set_dropped_events(dropped_);
  dropped_ = 0;
  // The last event: the call ends once it is written.
  if (item.event.kind == ModelEvent::Kind::kDeleted) {
    finish_wanted_ = grpc::Status::OK;
  }
  write_in_flight_ = true;
  write_started_ = true;
  // Under mu_ so that no Finish() can come before it; gRPC runs
  // OnWriteDone() later, on its own thread, never inside StartWrite().
  sink_->WriteEvent(&out_);
  return std::nullopt;
}

void WatchFeed::Push(const ModelEvent& event) {
  std::optional<grpc::Status> finish;
  std::optional<absl::Time> alarm;
  uint64_t generation = 0;
  Sink* sink = nullptr;
  {
    MutexLock lock(&mu_);
    if (closed_) return;
    const absl::Time now = absl::Now();
    if (event.kind == ModelEvent::Kind::kVersion) {
      held_version_ = event;
      ++versions_since_release_;
      if (now - last_release_ >= interval_) ReleaseVersionLocked(now);
    } else {
      // The version published before this event goes before it.
      if (held_version_.has_value()) ReleaseVersionLocked(now);
      EnqueueLocked({event, 0});
      if (event.kind == ModelEvent::Kind::kDeleted) closed_ = true;
    }
    alarm = AlarmDueLocked(now);
    generation = alarm_generation_;
    finish = PumpLocked(&sink);
  }
  if (alarm.has_value()) ArmAlarm(*alarm, generation);
  if (finish.has_value()) sink->FinishWatch(*finish);
}

void WatchFeed::ArmAlarm(absl::Time deadline, uint64_t generation) {
  auto alarm = std::make_unique<rpc::PollerAlarm>();
  // A weak reference: the Feed owns the alarm, which holds its callback.
  std::weak_ptr<WatchFeed> weak = weak_from_this();
  alarm->Set(poller_, deadline, [weak, generation](bool) {
    // Fired, or cancelled because a newer alarm replaced it or the Feed is
    // gone; OnAlarm() tells which by the generation.
    if (std::shared_ptr<WatchFeed> feed = weak.lock())
      feed->OnAlarm(generation);
  });
  std::unique_ptr<rpc::PollerAlarm> old;
  {
    MutexLock lock(&alarm_mu_);
    // Two ArmAlarm() calls may store in either order: keep the newer.
    if (generation > stored_generation_) {
      old = std::exchange(alarm_, std::move(alarm));
      stored_generation_ = generation;
    } else {
      old = std::move(alarm);
    }
  }
  // `old` is destroyed (cancelled if it had not fired) without alarm_mu_.
}

void WatchFeed::OnAlarm(uint64_t generation) {
  std::optional<grpc::Status> finish;
  std::optional<absl::Time> alarm;
  uint64_t next_generation = 0;
  Sink* sink = nullptr;
  {
    MutexLock lock(&mu_);
    if (generation != alarm_generation_ || !alarm_armed_) return;
    alarm_armed_ = false;
    const absl::Time now = absl::Now();
    // A version released early (by another event) restarted the interval
    // after this alarm was set: then it is set again, for the new end. The
    // millisecond covers the alarm's clock rounding.
    if (held_version_.has_value() && !closed_ &&
        now - last_release_ >= interval_ - absl::Milliseconds(1)) {
      ReleaseVersionLocked(now);
    }
    alarm = AlarmDueLocked(now);
    next_generation = alarm_generation_;
    finish = PumpLocked(&sink);
  }
  if (alarm.has_value()) ArmAlarm(*alarm, next_generation);
  if (finish.has_value()) sink->FinishWatch(*finish);
}

void WatchFeed::OnWriteDone(bool ok) {
  std::optional<grpc::Status> finish;
  Sink* sink = nullptr;
  {
    MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok && !finish_wanted_.has_value()) {
      // The call is cancelled or broken: nothing more can be sent.
      finish_wanted_ =
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken");
    }
    finish = PumpLocked(&sink);
  }
  if (finish.has_value()) sink->FinishWatch(*finish);
}

void WatchFeed::End(const grpc::Status& status) {
  std::optional<grpc::Status> finish;
  Sink* sink = nullptr;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    if (!finish_wanted_.has_value()) finish_wanted_ = status;
    finish = PumpLocked(&sink);
  }
  if (finish.has_value()) sink->FinishWatch(*finish);
}

void WatchFeed::Subscribed() {
  MutexLock lock(&mu_);
  if (sink_ == nullptr || finished_ || write_started_) return;
  sink_->SendInitialMetadata();
}

void WatchFeed::Detach() {
  MutexLock lock(&mu_);
  sink_ = nullptr;
  closed_ = true;
  queue_.clear();
  held_version_.reset();
}

}  // namespace lepton::server
