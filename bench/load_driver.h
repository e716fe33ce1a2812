// Load generators for the gRPC benchmarks (load_bench, durability_bench,
// cluster_bench), over gRPC's generated stubs.
//
// RunClosedLoop keeps `callers` unary calls outstanding at all times, each
// caller starting its next call as soon as its last one completes (a closed
// loop, like `callers` clients that each wait for their answer). It uses the
// async CompletionQueue API: every client thread drives its share of the
// callers on its own queue and its own channel (one TCP connection), so 16
// callers are 16 pending calls, not 16 OS threads. On a 2-core machine shared
// with the server, extra client threads would only take cores from it, and
// the thread that waits in CompletionQueue::Next() is the one gRPC polls the
// socket with, so no completion is handed from thread to thread. With
// ClosedLoopOptions::channel_per_caller, each caller has a channel (a
// connection) of its own instead, as separate clients would.
//
//   ClosedLoopResult r = RunClosedLoop(options, channels,
//       UnaryCallers<v1::ModelService>(
//           &v1::ModelService::Stub::PrepareAsyncPredict, &pool, deadline));
//
// UpdateStreams runs StreamUpdate calls in the background, each on its own
// thread and channel, writing the next request as soon as the previous one is
// acknowledged, until Stop().
//
// Thread safety: RunClosedLoop blocks its caller until done; the callers it
// makes run on its threads only. UpdateStreams' methods are for one thread.
#ifndef LEPTON_BENCH_LOAD_DRIVER_H_
#define LEPTON_BENCH_LOAD_DRIVER_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_unary_call.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::bench {

// One caller: starts calls one at a time; each completion is posted to the
// queue with the caller itself as the tag.
class UnaryCaller {
 public:
  virtual ~UnaryCaller() = default;
  // Starts the next call on `cq`. The previous one must have completed.
  virtual void Start(grpc::CompletionQueue* cq) = 0;
  // The status of the call that just completed.
  virtual const grpc::Status& status() const = 0;

  Clock::time_point started;
  // Calls of this caller that completed OK inside the measured window.
  int64_t window_calls = 0;
};

// Makes caller number `index` (0-based), sending over `channel`.
using CallerFactory = std::function<std::unique_ptr<UnaryCaller>(
    const std::shared_ptr<grpc::Channel>& channel, int index)>;

// A caller of one unary method: `prepare` is a stub's PrepareAsyncX bound to
// a stub; requests cycle through `pool` (which must outlive the caller),
// caller i starting at pool[i] so that callers do not send in lockstep.
template <typename Request, typename Response>
class TypedUnaryCaller final : public UnaryCaller {
 public:
  using Prepare =
      std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Response>>(
          grpc::ClientContext*, const Request&, grpc::CompletionQueue*)>;

  TypedUnaryCaller(Prepare prepare, const std::vector<Request>* pool, int first,
                   std::chrono::milliseconds deadline)
      : prepare_(std::move(prepare)),
        pool_(pool),
        next_(static_cast<size_t>(first) % pool->size()),
        deadline_(deadline) {}

  void Start(grpc::CompletionQueue* cq) override {
    reader_.reset();
    context_.emplace();  // a ClientContext serves one call only
    context_->set_deadline(std::chrono::system_clock::now() + deadline_);
    started = Clock::now();
    reader_ = prepare_(&*context_, (*pool_)[next_], cq);
    next_ = next_ + 1 == pool_->size() ? 0 : next_ + 1;
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }
  const grpc::Status& status() const override { return status_; }

 private:
  const Prepare prepare_;
  const std::vector<Request>* const pool_;
  size_t next_;
  const std::chrono::milliseconds deadline_;
  std::optional<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader_;
  Response response_;
  grpc::Status status_;
};

// Callers of one unary method of Service, each with a stub of its own on the
// channel RunClosedLoop gives it: `prepare` is the stub's PrepareAsyncX
// (e.g. &v1::ModelService::Stub::PrepareAsyncPredict). Requests cycle
// through `pool` (which must outlive the callers), caller i starting at
// pool[i * stride].
template <typename Service, typename Request, typename Response>
CallerFactory UnaryCallers(
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (
        Service::Stub::*prepare)(grpc::ClientContext*, const Request&,
                                 grpc::CompletionQueue*),
    const std::vector<Request>* pool, std::chrono::milliseconds deadline,
    int stride = 1) {
  return [prepare, pool, deadline, stride](
             const std::shared_ptr<grpc::Channel>& channel,
             int i) -> std::unique_ptr<UnaryCaller> {
    std::shared_ptr<typename Service::Stub> stub = Service::NewStub(channel);
    return std::make_unique<TypedUnaryCaller<Request, Response>>(
        [stub, prepare](grpc::ClientContext* context, const Request& request,
                        grpc::CompletionQueue* cq) {
          return ((*stub).*prepare)(context, request, cq);
        },
        pool, i * stride, deadline);
  };
}

struct ClosedLoopOptions {
  int callers = 1;
  // Must be at most the number of channels given to RunClosedLoop.
  int client_threads = 1;
  // false: caller i sends on its client thread's channel (channels[i %
  // client threads]), so a thread's callers share one connection. true:
  // caller i sends on channels[i], one channel per caller (each a connection
  // of its own when made by Connect); the client threads still share the
  // callers out as above.
  bool channel_per_caller = false;
  // Calls complete but are not counted during the warmup.
  std::chrono::nanoseconds warmup = std::chrono::seconds(1);
  std::chrono::nanoseconds duration = std::chrono::seconds(3);
  // Called on the calling thread at the start and the end of the measured
  // window (to sample CPU time), with `true` at the start.
  std::function<void(bool start)> on_window;
};

struct ClosedLoopResult {
  // Calls that completed OK inside the measured window.
  int64_t calls = 0;
  // Calls that completed OK at any time: warmup, window, and the calls still
  // in flight when the window closed (RunClosedLoop waits for them).
  int64_t completed = 0;
  // `calls` by caller index (0 .. callers - 1): how a run's calls spread
  // over the servers its callers talk to.
  std::vector<int64_t> caller_calls;
  // Latencies of the calls both started and completed inside it.
  std::vector<int64_t> latencies_ns;
  double window_seconds = 0;
  // Calls that did not complete OK, warmup included; the first one's status.
  int64_t errors = 0;
  std::string first_error;
};

// Client thread t drives callers t, t + threads, ... on channels[t], or each
// on its own channel (channel_per_caller).
ClosedLoopResult RunClosedLoop(
    const ClosedLoopOptions& options,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const CallerFactory& make_caller);

struct StreamTotals {
  int64_t updates = 0;
  int64_t examples = 0;
  double seconds = 0;
  int64_t errors = 0;
  std::string first_error;
};

class UpdateStreams {
 public:
  // Starts one thread per channel, each with one StreamUpdate call that
  // sends the requests of `pool` (which must outlive this object) in a loop.
  UpdateStreams(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                const std::vector<v1::UpdateRequest>* pool);
  ~UpdateStreams() { Stop(); }
  UpdateStreams(const UpdateStreams&) = delete;
  UpdateStreams& operator=(const UpdateStreams&) = delete;

  // Half-closes every stream after its current request, waits for the
  // server's OK and joins the threads. Idempotent.
  StreamTotals Stop();

 private:
  void Run(std::shared_ptr<grpc::Channel> channel, int index,
           StreamTotals* totals);

  const std::vector<v1::UpdateRequest>* const pool_;
  const Clock::time_point start_;
  std::atomic<bool> stop_{false};
  std::vector<StreamTotals> per_stream_;
  std::vector<std::thread> threads_;
  StreamTotals totals_;
};

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LOAD_DRIVER_H_
