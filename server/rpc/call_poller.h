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
// owns it. Start() once; ShutdownAndJoin() after grpc::Server::Shutdown()
// returned, when nothing starts operations on the queue any more; it drains
// what is left (an alarm not yet due must have been cancelled first, or the
// drain waits for it). PollerAlarm: Set() once; Cancel() and the destructor
// may be called from any thread.
#ifndef LEPTON_SERVER_RPC_CALL_POLLER_H_
#define LEPTON_SERVER_RPC_CALL_POLLER_H_

#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>

#include <functional>
#include <memory>
#include <thread>

#include "absl/time/time.h"

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

  explicit CallPoller(std::unique_ptr<grpc::ServerCompletionQueue> cq);
  ~CallPoller();
  CallPoller(const CallPoller&) = delete;
  CallPoller& operator=(const CallPoller&) = delete;

  grpc::ServerCompletionQueue* cq() const { return cq_.get(); }
  void Start();
  // Shuts the queue down, serves what is left on it, joins the thread.
  // Idempotent.
  void ShutdownAndJoin();

 private:
  void Run();

  const std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::thread thread_;
  bool shut_down_ = false;
};

class PollerAlarm {
 public:
  PollerAlarm() = default;
  // Cancels the alarm if it is still due: `fn` then runs with false.
  ~PollerAlarm() = default;
  PollerAlarm(const PollerAlarm&) = delete;
  PollerAlarm& operator=(const PollerAlarm&) = delete;

  // Runs fn(true) on `cq`'s poller at `deadline` (at once if past), or
  // fn(false) once cancelled.
  void Set(grpc::CompletionQueue* cq, absl::Time deadline,
           std::function<void(bool)> fn);
  void Cancel() { alarm_.Cancel(); }

 private:
  grpc::Alarm alarm_;
};

}  // namespace lepton::server::rpc

#endif  // LEPTON_SERVER_RPC_CALL_POLLER_H_
