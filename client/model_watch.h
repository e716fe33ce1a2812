// ModelWatch: one lepton.v1.ModelService/WatchModel call read on a thread of
// its own, for a caller that does something else meanwhile (`lepton_client
// train --plot` collects the model's drift and guardrail events while it
// streams updates).
//
//   std::unique_ptr<ModelWatch> watch = client.StartWatch(
//       request, [&](const v1::ModelEvent& event) { ... });
//   if (absl::Status s = watch->WaitSubscribed(); !s.ok()) ...
//   ...  // every event published from here on reaches the callback
//   absl::Status s = watch->Stop();  // OK unless the call failed
//
// Subscription: the server sends the call's initial metadata once it has
// subscribed to the model's events (server/watch_model_reactor.h), so once
// WaitSubscribed() has returned, no event published afterwards is missed
// (but those the server drops for a client reading too slowly, counted in
// the next event's dropped_events). A call the server refuses at once
// (NOT_FOUND, PERMISSION_DENIED) may end just after WaitSubscribed()
// returned OK: Stop() then returns its error.
//
// Events go to the callback on the watch's thread, in order. The call ends
// when the model is deleted (after its MODEL_DELETED event), when the server
// ends it (UNAVAILABLE at shutdown), or at Stop(), which cancels it.
//
// Thread safety: WaitSubscribed() and WaitEnded() may be called from any
// thread; Stop() from one thread at a time, never the callback's. The watch
// must not outlive the Client that started it; destroying it stops it.
#ifndef LEPTON_CLIENT_MODEL_WATCH_H_
#define LEPTON_CLIENT_MODEL_WATCH_H_

#include <grpcpp/client_context.h>

#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::client {

class ModelWatch {
 public:
  using OnEvent = std::function<void(const v1::ModelEvent& event)>;

  // Starts the call on `stub` with `context` (its deadline, if any, bounds
  // the whole call). Used by Client::StartWatch().
  ModelWatch(v1::ModelService::Stub* stub,
             std::unique_ptr<grpc::ClientContext> context,
             const v1::WatchModelRequest& request, OnEvent on_event);
  ~ModelWatch();
  ModelWatch(const ModelWatch&) = delete;
  ModelWatch& operator=(const ModelWatch&) = delete;

  // Blocks until the server has subscribed (OK) or the call has ended (its
  // error; OK if it ended normally).
  absl::Status WaitSubscribed() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the call has ended, waiting up to `timeout` for it.
  bool WaitEnded(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels the call (unless it has ended), waits for the thread, and
  // returns the call's status: OK if it ended normally or by this
  // cancellation. Idempotent.
  absl::Status Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run(v1::ModelService::Stub* stub, v1::WatchModelRequest request);

  const OnEvent on_event_;
  const std::unique_ptr<grpc::ClientContext> context_;
  std::thread thread_;  // joined by Stop()

  absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // once ended_
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_MODEL_WATCH_H_
