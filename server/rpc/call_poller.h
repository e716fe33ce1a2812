// CallPoller: the one thread that serves a completion queue of the server's
// calls (gRPC's async API). It polls the network, reads each request, runs
// the method's handler and writes the answer itself, so that a call costs
// the server one thread wake-up (docs/benchmarks.md#the-grpc-stacks-floor):
// with gRPC's epoll1 engine every thread that polls takes part in handing
// the poller role around, so no other thread of the process may poll.
//
// Everything queued on the completion queue is a PollerTag; Proceed() runs
// on the poller's thread, one at a time. Handlers must not block: long work
// goes to the update workers (model_service.h), which answer through the
// same queue (a gRPC operation may be started from any thread).
//
// PollerAlarm runs a function on the poller's thread at a given time (now: a
// hop from any thread to the poller's), without holding a thread meanwhile.
//
// Ownership and thread safety: the server builds the queue
// (ServerBuilder::AddCompletionQueue) and hands it to the CallPoller, which
// owns it. Start() once. A call of gRPC's async API may outlive
// grpc::Server::Shutdown() (its end is still on the queue), so the poller
// counts the calls on its queue (CallCreated, CallDestroyed: async_calls.h
// does it); WaitForCalls() waits until there are none, and
// ShutdownAndJoin() does that, then shuts the queue down and drains what is
// left (an alarm not yet due must have been cancelled first, or the drain
// waits for it). PollerAlarm: Set() once, from any thread; Cancel() and the
// destructor too, but not at the same time as each other or Set().
#ifndef LEPTON_SERVER_RPC_CALL_POLLER_H_
#define LEPTON_SERVER_RPC_CALL_POLLER_H_

#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/util/mutex.h"

namespace lepton::server::rpc {

// What a completion of the poller's queue runs. `ok` is the queue's verdict
// on the operation (false: it failed, the call ended or the alarm was
// cancelled).
class PollerTag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~PollerTag() = default;
};

// A PollerTag that calls `(self->*kMethod)(ok)`: one per kind of operation
// of a call object.
template <typename T, void (T::*kMethod)(bool)>
class MethodTag final : public PollerTag {
 public:
  explicit MethodTag(T* self) : self_(self) {}
  void Proceed(bool ok) override { (self_->*kMethod)(ok); }

 private:
  T* const self_;
};

class CallPoller {
 public:
  // The name of the polling thread (top, perf, /proc/PID/task/*/comm).
  static constexpr char kThreadName[] = "call_poller";

  // A queue of the server's, for calls and alarms.
  explicit CallPoller(std::unique_ptr<grpc::ServerCompletionQueue> cq);
  // A queue of its own, for alarms only (tests).
  explicit CallPoller(std::unique_ptr<grpc::CompletionQueue> cq);
  ~CallPoller();
  CallPoller(const CallPoller&) = delete;
  CallPoller& operator=(const CallPoller&) = delete;

  // The queue calls are requested on; null for a queue of its own.
  grpc::ServerCompletionQueue* cq() const { return server_cq_; }
  void Start();
  // Once grpc::Server::Shutdown() returned: waits until every call on the
  // queue has ended. Every call must end by itself: gRPC's Shutdown() has
  // cancelled those that were left.
  void WaitForCalls() const;
  // WaitForCalls(), then shuts the queue down, serves what is left on it and
  // joins the thread. Idempotent.
  void ShutdownAndJoin() ABSL_LOCKS_EXCLUDED(mu_);

  // A call object waiting on the queue was made, or deleted.
  void CallCreated() { calls_.fetch_add(1, std::memory_order_relaxed); }
  void CallDestroyed() { calls_.fetch_sub(1, std::memory_order_release); }

 private:
  friend class PollerAlarm;
  void Run();

  grpc::ServerCompletionQueue* const server_cq_;
  const std::unique_ptr<grpc::CompletionQueue> cq_;
  std::thread thread_;
  std::atomic<int64_t> calls_{0};
  // Alarms are set under it while the queue is open, so that none is set on
  // a queue shut down (gRPC aborts then).
  Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// The grpc::Alarm inside lives until its event has been delivered, whenever
// the PollerAlarm is destroyed: gRPC 1.51's alarm takes its reference for the
// event only once its timer has fired, so an alarm destroyed as it fires
// would be freed before the queue delivers it.
class PollerAlarm {
 public:
  PollerAlarm() = default;
  // Cancels the alarm if it is still due: `fn` then runs with false.
  ~PollerAlarm() { Cancel(); }
  PollerAlarm(const PollerAlarm&) = delete;
  PollerAlarm& operator=(const PollerAlarm&) = delete;

  // Runs fn(true) on `poller`'s thread at `deadline` (at once if past), or
  // fn(false) once cancelled. Once the poller has shut its queue down, fn
  // never runs.
  void Set(CallPoller* poller, absl::Time deadline,
           std::function<void(bool)> fn);
  void Cancel();

 private:
  struct Shared;
  class Tag;
  std::shared_ptr<Shared> shared_;  // with the tag, until it has run
};

}  // namespace lepton::server::rpc

#endif  // LEPTON_SERVER_RPC_CALL_POLLER_H_
