// WatchFeed: the event queue of one WatchModel call, between the model's
// listener (which pushes events on the publishing thread and must never
// block) and the call's writes (one at a time). It implements the call's
// semantics: version throttling with coalescing (skipped_versions), the
// order of the other events, the bounded queue (dropped_events), and the
// end (MODEL_DELETED last, then OK; or the status End() was given).
// watch_model_reactor.h describes them from the client's side.
//
// Throttling: the first VERSION_PUBLISHED goes at once; the versions
// published within `interval` after the last one released are coalesced
// into the newest, released when the interval ends (a PollerAlarm on the
// call's polling thread: no thread waits) with skipped_versions = the others.
// Order rule: a non-version event releases the held version ahead of it (the
// interval restarts then), so a version always precedes the events that
// happened after it.
//
// Ownership and thread safety: shared (shared_ptr) by the call, the model's
// listener and the alarms (which hold it weakly), so that a listener call
// racing with the end of the call finds it alive. Every method may be called
// from any thread; the state is guarded by mu_, and the sink is called as
// its contract says.
#ifndef LEPTON_SERVER_WATCH_FEED_H_
#define LEPTON_SERVER_WATCH_FEED_H_

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/store/store_types.h"
#include "core/util/mutex.h"
#include "lepton/v1/lepton.pb.h"
#include "server/rpc/call_poller.h"

namespace lepton::server {

class WatchFeed : public std::enable_shared_from_this<WatchFeed> {
 public:
  // Where the events go: the call (WatchModelReactor), or a test's fake.
  // WriteEvent() and SendInitialMetadata() are called with the Feed's lock
  // held and must not call back into the Feed; FinishWatch() is called
  // without it, once.
  class Sink {
   public:
    virtual ~Sink() = default;
    // One at a time: the next after OnWriteDone(). `event` stays valid and
    // unchanged until then.
    virtual void WriteEvent(const v1::ModelEvent* event) = 0;
    virtual void SendInitialMetadata() = 0;
    virtual void FinishWatch(const grpc::Status& status) = 0;
  };

  // Events queued for a client that reads too slowly before the oldest are
  // dropped.
  static constexpr size_t kMaxQueuedEvents = 1000;

  // `sink` must stay valid until Detach(). Events of `model`, with at most
  // one VERSION_PUBLISHED per `interval`; the throttle's alarms run on
  // `poller`, which outlives the feed's alarms.
  WatchFeed(Sink* sink, rpc::CallPoller* poller, std::string model,
            absl::Duration interval)
      : poller_(poller),
        model_(std::move(model)),
        interval_(interval),
        sink_(sink) {}

  // The listener: on the publishing thread; queues, never blocks.
  void Push(const ModelEvent& event) ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // Finishes the call with `status` once the write in flight is done (at
  // once if none); the first status wins. Later events are not sent.
  void End(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // The sink is going away (the call is done): nothing more reaches it.
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
  // returns the status for the caller to finish with once mu_ is released
  // (Finish() may lead to OnDone(), which takes mu_), with *sink set.
  std::optional<grpc::Status> PumpLocked(Sink** sink)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // If a version is held back and no alarm is armed: marks one armed and
  // returns its deadline, for ArmAlarm() once mu_ is released.
  std::optional<absl::Time> AlarmDueLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without mu_: an alarm's callback may run inline in Set().
  void ArmAlarm(absl::Time deadline, uint64_t generation)
      ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);
  void OnAlarm(uint64_t generation) ABSL_LOCKS_EXCLUDED(mu_, alarm_mu_);

  rpc::CallPoller* const poller_;
  const std::string model_;
  const absl::Duration interval_;

  Mutex mu_;
  Sink* sink_ ABSL_GUARDED_BY(mu_);
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
  // one before it is destroyed (cancelled) when it is replaced, which is
  // safe even from its own callback.
  Mutex alarm_mu_;
  std::unique_ptr<rpc::PollerAlarm> alarm_ ABSL_GUARDED_BY(alarm_mu_);
  uint64_t stored_generation_ ABSL_GUARDED_BY(alarm_mu_) = 0;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_WATCH_FEED_H_
