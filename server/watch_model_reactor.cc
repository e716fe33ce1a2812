#include "server/watch_model_reactor.h"

#include <grpcpp/alarm.h>

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/mutex.h"
#include "server/convert_adaptation.h"
#include "server/model_service.h"
#include "server/status_mapping.h"

namespace lepton::server {

// The queue of one watch, shared by the reactor, the model's listener and the
// throttle's alarms (see the header). Every member but the alarm is guarded
// by mu_; the reactor is reached through reactor_, null once it is done.
class WatchModelReactor::Feed : public std::enable_shared_from_this<Feed> {
 public:
  Feed(WatchModelReactor* reactor, std::string model, absl::Duration interval)
      : model_(std::move(model)), interval_(interval), reactor_(reactor) {}

  // The listener: on the publishing thread; queues, never blocks.
  void Push(const ModelEvent& event) ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // Finishes the call with `status` once the write in flight is done (at
  // once if none); the first status wins. Later events are not sent.
  void End(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // From OnDone(): the reactor is about to be deleted.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);
  // Once subscribed: sends the initial metadata, so that a client can know
  // (WaitForInitialMetadata()) that it will see every later event, unless a
  // write, which carries it, already started.
  void Subscribed() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Item {
    ModelEvent event;
    uint64_t skipped_versions = 0;
  };

  // Queues `item`, dropping the oldest queued event when full.
  void EnqueueLocked(Item item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the throttled version into the queue; the interval restarts now.
  void ReleaseVersionLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next write if none is in flight, or claims the finish: then
  // returns the status for the caller to Finish() with once mu_ is released
  // (Finish() may lead to OnDone(), which takes mu_), with *reactor set.
  std::optional<grpc::Status> PumpLocked(WatchModelReactor** reactor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // If a version is held back and no alarm is armed: marks one armed and
  // returns its deadline, for ArmAlarm() once mu_ is released.
  std::optional<absl::Time> AlarmDueLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without mu_: an alarm's callback may run inline in Set().
  void ArmAlarm(absl::Time deadline, uint64_t generation)
      ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);
  void OnAlarm(uint64_t generation) ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);

  const std::string model_;
  const absl::Duration interval_;

  Mutex mu_;
  WatchModelReactor* reactor_ ABSL_GUARDED_BY(mu_);
  // Events ready to send, in order.
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  // Dropped from queue_ since the last write; reported by the next one.
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // The newest version event held back by the throttle.
  std::optional<ModelEvent> held_version_ ABSL_GUARDED_BY(mu_);
  // Version events received since the last one released, held_version_
  // included: the released one's skipped_versions is this minus one.
  uint64_t versions_since_release_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_release_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // An alarm is set for held_version_; only the callback of the alarm of
  // this generation counts (older ones were replaced).
  bool alarm_armed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t alarm_generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_started_ ABSL_GUARDED_BY(mu_) = false;
  // MODEL_DELETED queued, or the call is ending: later events are ignored.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // The status to finish with once the write in flight is done.
  std::optional<grpc::Status> finish_wanted_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // The message being written: one write at a time, so one buffer.
  v1::ModelEvent out_ ABSL_GUARDED_BY(mu_);

  // The newest alarm set (of alarm_generation_ `stored_generation_`); the
  // one before it is destroyed when it is replaced, which is safe even from
  // its own callback (gRPC keeps the alarm alive while the callback runs).
  Mutex alarm_mu_;
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(alarm_mu_);
  uint64_t stored_generation_ ABSL_GUARDED_BY(alarm_mu_) = 0;
};

void WatchModelReactor::Feed::EnqueueLocked(Item item) {
  if (queue_.size() >= kMaxQueuedEvents) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(item));
}

void WatchModelReactor::Feed::ReleaseVersionLocked(absl::Time now) {
  EnqueueLocked({*std::move(held_version_), versions_since_release_ - 1});
  held_version_.reset();
  versions_since_release_ = 0;
  last_release_ = now;
}

std::optional<absl::Time> WatchModelReactor::Feed::AlarmDueLocked(
    absl::Time now) {
  if (!held_version_.has_value() || alarm_armed_ || closed_) {
    return std::nullopt;
  }
  alarm_armed_ = true;
  ++alarm_generation_;
  return last_release_ + interval_;
}

std::optional<grpc::Status> WatchModelReactor::Feed::PumpLocked(
    WatchModelReactor** reactor) {
  *reactor = reactor_;
  if (reactor_ == nullptr || finished_ || write_in_flight_) return std::nullopt;
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
  reactor_->StartWrite(&out_);
  return std::nullopt;
}

void WatchModelReactor::Feed::Push(const ModelEvent& event) {
  std::optional<grpc::Status> finish;
  std::optional<absl::Time> alarm;
  uint64_t generation = 0;
  WatchModelReactor* reactor = nullptr;
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
    finish = PumpLocked(&reactor);
  }
  if (alarm.has_value()) ArmAlarm(*alarm, generation);
  if (finish.has_value()) reactor->Finish(*finish);
}

void WatchModelReactor::Feed::ArmAlarm(absl::Time deadline,
                                       uint64_t generation) {
  auto alarm = std::make_unique<grpc::Alarm>();
  // A weak reference: the Feed owns the alarm, which holds its callback.
  std::weak_ptr<Feed> weak = weak_from_this();
  alarm->Set(absl::ToChronoTime(deadline), [weak, generation](bool) {
    // Fired, or cancelled because a newer alarm replaced it or the Feed is
    // gone; OnAlarm() tells which by the generation.
    if (std::shared_ptr<Feed> feed = weak.lock()) feed->OnAlarm(generation);
  });
  std::unique_ptr<grpc::Alarm> old;
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

void WatchModelReactor::Feed::OnAlarm(uint64_t generation) {
  std::optional<grpc::Status> finish;
  std::optional<absl::Time> alarm;
  uint64_t next_generation = 0;
  WatchModelReactor* reactor = nullptr;
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
    finish = PumpLocked(&reactor);
  }
  if (alarm.has_value()) ArmAlarm(*alarm, next_generation);
  if (finish.has_value()) reactor->Finish(*finish);
}

void WatchModelReactor::Feed::OnWriteDone(bool ok) {
  std::optional<grpc::Status> finish;
  WatchModelReactor* reactor = nullptr;
  {
    MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok && !finish_wanted_.has_value()) {
      // The call is cancelled or broken: nothing more can be sent.
      finish_wanted_ =
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken");
    }
    finish = PumpLocked(&reactor);
  }
  if (finish.has_value()) reactor->Finish(*finish);
}

void WatchModelReactor::Feed::End(const grpc::Status& status) {
  std::optional<grpc::Status> finish;
  WatchModelReactor* reactor = nullptr;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    if (!finish_wanted_.has_value()) finish_wanted_ = status;
    finish = PumpLocked(&reactor);
  }
  if (finish.has_value()) reactor->Finish(*finish);
}

void WatchModelReactor::Feed::Subscribed() {
  MutexLock lock(&mu_);
  if (reactor_ == nullptr || finished_ || write_started_) return;
  reactor_->StartSendInitialMetadata();
}

void WatchModelReactor::Feed::Detach() {
  MutexLock lock(&mu_);
  reactor_ = nullptr;
  closed_ = true;
  queue_.clear();
  held_version_.reset();
}

WatchModelReactor::WatchModelReactor(ModelService* service,
                                     const ModelStore& store,
                                     const v1::WatchModelRequest& request)
    : service_(service) {
  const uint32_t ms = request.min_version_interval_ms();
  feed_ = std::make_shared<Feed>(
      this, request.name(),
      absl::Milliseconds(ms == 0 ? kDefaultVersionIntervalMs : ms));
  service_->RegisterWatch(this);
  if (request.name().empty()) {
    feed_->End(
        ToGrpcStatus(absl::InvalidArgumentError("name: must not be empty")));
    return;
  }
  // Checked after registering: BeginShutdown() sets draining() before it
  // walks the registered watches, so either it reaches this one or this one
  // sees draining() here.
  if (service_->draining()) {
    EndForShutdown();
    return;
  }
  absl::StatusOr<std::unique_ptr<EventSubscription>> subscription = store.Watch(
      request.name(),
      [feed = feed_](const ModelEvent& event) { feed->Push(event); });
  if (!subscription.ok()) {
    feed_->End(ToGrpcStatus(subscription.status()));
    return;
  }
  // The listener may already have run; that is fine: it only touches feed_.
  subscription_ = *std::move(subscription);
  feed_->Subscribed();
}

WatchModelReactor::~WatchModelReactor() = default;

void WatchModelReactor::OnWriteDone(bool ok) { feed_->OnWriteDone(ok); }

void WatchModelReactor::OnCancel() {
  feed_->End(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
}

void WatchModelReactor::EndForShutdown() {
  feed_->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server shutting down: watch again elsewhere or "
                          "after the restart"));
}

void WatchModelReactor::OnDone() {
  // Unsubscribe first; a Publish already under way may still call the
  // listener, which then finds the Feed detached.
  subscription_.reset();
  feed_->Detach();
  service_->UnregisterWatch(this);
  delete this;
}

}  // namespace lepton::server
