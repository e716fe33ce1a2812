// WatchModelReactor: the server side of one WatchModel call, a stream of a
// model's events (core/adaptation/model_events.h) to one client.
//
// The model's EventHub calls our listener on the publishing thread (an update
// worker, the log syncer's), which must not block: the listener only queues
// the event and, when no write is in flight, starts one. Writes go one at a
// time; the next starts from OnWriteDone(). So a slow client never slows the
// model down: its queue (watch_feed.h, which implements all of this) is
// bounded (WatchFeed::kMaxQueuedEvents) and, when full, loses its oldest
// events, counted in the next sent event's dropped_events.
//
// Version throttling: at most one VERSION_PUBLISHED per
// min_version_interval_ms (0: 1000). The first version is sent at once; the
// versions published within the interval after it are coalesced into the
// newest one, sent when the interval has passed (a grpc::Alarm, no thread
// waits: a PollerAlarm), with skipped_versions = how many were coalesced away.
// So for the versions published after subscribing, sum(1 + skipped_versions)
// over the VERSION_PUBLISHED events sent (plus dropped_events) counts them all.
//
// Order: every other event is sent at once, in publication order. A version
// held back by the throttle when another event arrives is released ahead of
// it (and the interval restarts from there): a client always sees the newest
// version published before a drift or a refused update before that event,
// at the cost of one extra VERSION_PUBLISHED per such event in the interval.
//
// The end: MODEL_DELETED is the last event; once it is written the call
// finishes with OK. A client's cancellation finishes the call at once;
// the service's shutdown (EndForShutdown()) finishes it with UNAVAILABLE
// after the write in flight, if any. NOT_FOUND at the start for no such
// model, INVALID_ARGUMENT for an empty name. Once subscribed, the call sends
// its initial metadata: a client that waits for it (WaitForInitialMetadata())
// sees every event published afterwards.
//
// Ownership and thread safety: created by ModelService::WatchModel(),
// registered with the service for its whole life, and deleted by itself in
// OnDone(), after it unsubscribed. What the listener and the throttle's alarm
// touch lives in a WatchFeed that they hold by shared_ptr, not in the
// reactor, so a listener call that races with OnDone() (EventHub allows one
// after Unsubscribe) finds the feed alive and the reactor detached from it.
// The feed's state is guarded by its Mutex; Finish() is called without it.
#ifndef LEPTON_SERVER_WATCH_MODEL_REACTOR_H_
#define LEPTON_SERVER_WATCH_MODEL_REACTOR_H_

#include <memory>

#include "core/store/model_store.h"
#include "core/store/store_types.h"
#include "lepton/v1/lepton.pb.h"
#include "server/rpc/async_calls.h"
#include "server/watch_feed.h"

namespace lepton::server {

class ModelService;

class WatchModelReactor final : public rpc::WriteReactor<v1::ModelEvent>,
                                private WatchFeed::Sink {
 public:
  // min_version_interval_ms = 0 means this.
  static constexpr int kDefaultVersionIntervalMs = 1000;

  // Binds itself to `call` and subscribes to the model of its request in
  // `store`, or finishes the call at once with the error.
  WatchModelReactor(
      ModelService* service, const ModelStore& store,
      rpc::WriterCall<v1::WatchModelRequest, v1::ModelEvent>* call);
  ~WatchModelReactor() override;

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Finishes the call with UNAVAILABLE (after the write in flight, if any).
  void EndForShutdown();

 private:
  // WatchFeed::Sink: the call's own operations.
  void WriteEvent(const v1::ModelEvent* event) override { StartWrite(event); }
  void SendInitialMetadata() override { StartSendInitialMetadata(); }
  void FinishWatch(const grpc::Status& status) override { Finish(status); }

  ModelService* const service_;
  std::shared_ptr<WatchFeed> feed_;
  // Null when the call failed at the start; reset in OnDone().
  std::unique_ptr<EventSubscription> subscription_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_WATCH_MODEL_REACTOR_H_
