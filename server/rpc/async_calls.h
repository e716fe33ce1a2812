// The server's calls on gRPC's async API, served by a CallPoller
// (call_poller.h), with the shape of gRPC's callback reactors: a unary
// handler answers through UnaryCall::Finish(); a streaming handler builds a
// reactor (BidiReactor, WriteReactor) that starts reads and writes and is
// told when they are done.
//
//   Serve(&async_service, &AsyncService::RequestPredict, this,
//         &ModelService::Predict, &poller);
//
// waits for Predict calls on the poller's queue: each one that arrives makes
// the next wait, then runs `(this->*Predict)(call)` on the poller's thread.
// The handler must not block; it answers at once or later, from any thread,
// with call->Finish(status), exactly once. A streaming handler must create a
// reactor bound to the call, and the reactor must Finish() the call
// eventually, also after a cancellation (reads and writes then fail).
//
// Lifetimes: a call owns its context, request and response, and deletes
// itself when the answer and gRPC's end of the call have both been seen, so
// a call's pointers stay valid until Finish() is called (unary) or OnDone()
// runs (streaming). A reactor's OnDone() runs once, on the poller's thread,
// after Finish() completed and every read and write ended; it may delete
// the reactor.
//
// Thread safety: everything a call reports (arrival, OnReadDone(),
// OnWriteDone(), OnCancel(), OnDone()) runs on its poller's thread, one at a
// time; StartRead(), StartWrite() and Finish() may be called from any thread,
// with at most one read and one write in flight, as with gRPC's reactors.
// A handler's reactor is bound before it can see any event, since those run
// on the thread that runs the handler.
#ifndef LEPTON_SERVER_RPC_ASYNC_CALLS_H_
#define LEPTON_SERVER_RPC_ASYNC_CALLS_H_

#include <grpcpp/completion_queue.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

#include "server/rpc/call_poller.h"

namespace lepton::server::rpc {

// What a unary handler needs of its call, whatever its message types.
class UnaryResponder {
 public:
  virtual grpc::ServerContext* context() = 0;
  // The call's poller, for alarms (PollerAlarm) that answer later.
  virtual CallPoller* poller() = 0;
  // Sends the response (with an OK status) or the error. Once.
  virtual void Finish(const grpc::Status& status) = 0;

 protected:
  ~UnaryResponder() = default;
};

template <typename Req, typename Resp>
class UnaryCall final : public UnaryResponder {
 public:
  struct Method {
    // The AsyncService's RequestX: (context, request, responder, the call's
    // queue, the queue of its arrival, tag).
    std::function<void(
        grpc::ServerContext*, Req*, grpc::ServerAsyncResponseWriter<Resp>*,
        grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*)>
        request;
    std::function<void(UnaryCall*)> handle;
    CallPoller* poller;
  };

  // Waits for the method's next call.
  static void Await(std::shared_ptr<const Method> method) {
    new UnaryCall(std::move(method));
  }

  grpc::ServerContext* context() override { return &context_; }
  CallPoller* poller() override { return method_->poller; }
  const Req* request() const { return &request_; }
  Resp* response() { return &response_; }
  void Finish(const grpc::Status& status) override {
    responder_.Finish(response_, status, &finished_);
  }

 private:
  explicit UnaryCall(std::shared_ptr<const Method> method)
      : method_(std::move(method)) {
    method_->poller->CallCreated();
    context_.AsyncNotifyWhenDone(&done_);
    grpc::ServerCompletionQueue* cq = method_->poller->cq();
    method_->request(&context_, &request_, &responder_, cq, cq, &arrived_);
  }
  ~UnaryCall() { method_->poller->CallDestroyed(); }

  void Arrived(bool ok) {
    if (!ok) {  // the server is shutting down; the call never started
      delete this;
      return;
    }
    Await(method_);
    method_->handle(this);
  }
  // The answer sent, or gRPC's end of the call: both come once.
  void Ended(bool) {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const std::shared_ptr<const Method> method_;
  grpc::ServerContext context_;
  Req request_;
  Resp response_;
  grpc::ServerAsyncResponseWriter<Resp> responder_{&context_};
  std::atomic<int> pending_{2};
  MethodTag<UnaryCall, &UnaryCall::Arrived> arrived_{this};
  MethodTag<UnaryCall, &UnaryCall::Ended> finished_{this};
  MethodTag<UnaryCall, &UnaryCall::Ended> done_{this};
};

// The bookkeeping every streaming call shares: which operations are in
// flight, and when the reactor may be told OnDone().
class StreamCall {
 public:
  grpc::ServerContext* context() { return &context_; }
  CallPoller* poller() { return poller_; }

 protected:
  explicit StreamCall(CallPoller* poller) : poller_(poller) {
    poller_->CallCreated();
    context_.AsyncNotifyWhenDone(&done_);
  }
  virtual ~StreamCall() { poller_->CallDestroyed(); }

  // Before starting an operation whose completion calls Ended().
  void Starting() { pending_.fetch_add(1, std::memory_order_relaxed); }
  // An operation's completion; `finish` for the Finish() operation, which
  // also releases the hold that keeps OnDone() back until Finish().
  void Ended(bool finish) {
    const int released = finish ? 2 : 1;
    if (pending_.fetch_sub(released, std::memory_order_acq_rel) == released) {
      NotifyDone();
      delete this;
    }
  }
  virtual void NotifyCancel() = 0;
  virtual void NotifyDone() = 0;

  grpc::ServerContext context_;
  CallPoller* const poller_;

 private:
  void Done(bool) {
    if (context_.IsCancelled()) NotifyCancel();
    Ended(false);
  }

  // gRPC's end of the call, plus the hold until Finish() completes.
  std::atomic<int> pending_{2};
  MethodTag<StreamCall, &StreamCall::Done> done_{this};
};

template <typename Req, typename Resp>
class BidiCall;

// The server side of a bidirectional stream, as gRPC's ServerBidiReactor.
template <typename Req, typename Resp>
class BidiReactor {
 public:
  virtual ~BidiReactor() = default;
  virtual void OnReadDone(bool ok) {}
  virtual void OnWriteDone(bool ok) {}
  // The client cancelled, or the call's deadline passed.
  virtual void OnCancel() {}
  virtual void OnDone() = 0;

 protected:
  explicit BidiReactor(BidiCall<Req, Resp>* call) : call_(call) {
    call->reactor_ = this;
  }
  void StartRead(Req* request) { call_->Read(request); }
  void StartWrite(const Resp* response) { call_->Write(response); }
  void Finish(const grpc::Status& status) { call_->Finish(status); }

 private:
  BidiCall<Req, Resp>* const call_;
};

template <typename Req, typename Resp>
class BidiCall final : public StreamCall {
 public:
  struct Method {
    std::function<void(
        grpc::ServerContext*, grpc::ServerAsyncReaderWriter<Resp, Req>*,
        grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*)>
        request;
    std::function<void(BidiCall*)> handle;
    CallPoller* poller;
  };

  static void Await(std::shared_ptr<const Method> method) {
    new BidiCall(std::move(method));
  }

 private:
  friend class BidiReactor<Req, Resp>;

  explicit BidiCall(std::shared_ptr<const Method> method)
      : StreamCall(method->poller), method_(std::move(method)) {
    method_->request(&context_, &stream_, poller_->cq(), poller_->cq(),
                     &arrived_);
  }

  void Arrived(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    Await(method_);
    method_->handle(this);
  }
  void Read(Req* request) {
    Starting();
    stream_.Read(request, &read_);
  }
  void Write(const Resp* response) {
    Starting();
    stream_.Write(*response, &written_);
  }
  void Finish(const grpc::Status& status) {
    Starting();
    stream_.Finish(status, &finished_);
  }
  void ReadDone(bool ok) {
    reactor_->OnReadDone(ok);
    Ended(false);
  }
  void WriteDone(bool ok) {
    reactor_->OnWriteDone(ok);
    Ended(false);
  }
  void FinishDone(bool) { Ended(true); }
  void NotifyCancel() override { reactor_->OnCancel(); }
  void NotifyDone() override { reactor_->OnDone(); }

  const std::shared_ptr<const Method> method_;
  grpc::ServerAsyncReaderWriter<Resp, Req> stream_{&context_};
  BidiReactor<Req, Resp>* reactor_ = nullptr;
  MethodTag<BidiCall, &BidiCall::Arrived> arrived_{this};
  MethodTag<BidiCall, &BidiCall::ReadDone> read_{this};
  MethodTag<BidiCall, &BidiCall::WriteDone> written_{this};
  MethodTag<BidiCall, &BidiCall::FinishDone> finished_{this};
};

template <typename Resp>
class WriteReactor;

// A server-streaming call's operations, whatever its request type.
template <typename Resp>
class WriterOps {
 public:
  virtual void Bind(WriteReactor<Resp>* reactor) = 0;
  virtual void SendInitialMetadata() = 0;
  virtual void Write(const Resp* response) = 0;
  virtual void FinishCall(const grpc::Status& status) = 0;

 protected:
  ~WriterOps() = default;
};

// The server side of a server-streaming call, as gRPC's ServerWriteReactor.
template <typename Resp>
class WriteReactor {
 public:
  virtual ~WriteReactor() = default;
  virtual void OnWriteDone(bool ok) {}
  virtual void OnCancel() {}
  virtual void OnDone() = 0;

 protected:
  explicit WriteReactor(WriterOps<Resp>* call) : call_(call) {
    call->Bind(this);
  }
  void StartSendInitialMetadata() { call_->SendInitialMetadata(); }
  void StartWrite(const Resp* response) { call_->Write(response); }
  void Finish(const grpc::Status& status) { call_->FinishCall(status); }

 private:
  WriterOps<Resp>* const call_;
};

template <typename Req, typename Resp>
class WriterCall final : public StreamCall, public WriterOps<Resp> {
 public:
  struct Method {
    std::function<void(grpc::ServerContext*, Req*,
                       grpc::ServerAsyncWriter<Resp>*, grpc::CompletionQueue*,
                       grpc::ServerCompletionQueue*, void*)>
        request;
    std::function<void(WriterCall*)> handle;
    CallPoller* poller;
  };

  static void Await(std::shared_ptr<const Method> method) {
    new WriterCall(std::move(method));
  }

  const Req* request() const { return &request_; }

  void Bind(WriteReactor<Resp>* reactor) override { reactor_ = reactor; }
  void SendInitialMetadata() override {
    Starting();
    writer_.SendInitialMetadata(&metadata_sent_);
  }
  void Write(const Resp* response) override {
    Starting();
    writer_.Write(*response, &written_);
  }
  void FinishCall(const grpc::Status& status) override {
    Starting();
    writer_.Finish(status, &finished_);
  }

 private:
  explicit WriterCall(std::shared_ptr<const Method> method)
      : StreamCall(method->poller), method_(std::move(method)) {
    method_->request(&context_, &request_, &writer_, poller_->cq(),
                     poller_->cq(), &arrived_);
  }

  void Arrived(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    Await(method_);
    method_->handle(this);
  }
  void MetadataSent(bool) { Ended(false); }
  void WriteDone(bool ok) {
    reactor_->OnWriteDone(ok);
    Ended(false);
  }
  void FinishDone(bool) { Ended(true); }
  void NotifyCancel() override { reactor_->OnCancel(); }
  void NotifyDone() override { reactor_->OnDone(); }

  const std::shared_ptr<const Method> method_;
  Req request_;
  grpc::ServerAsyncWriter<Resp> writer_{&context_};
  WriteReactor<Resp>* reactor_ = nullptr;
  MethodTag<WriterCall, &WriterCall::Arrived> arrived_{this};
  MethodTag<WriterCall, &WriterCall::MetadataSent> metadata_sent_{this};
  MethodTag<WriterCall, &WriterCall::WriteDone> written_{this};
  MethodTag<WriterCall, &WriterCall::FinishDone> finished_{this};
};

// Serves a method of `service` (an AsyncService; `request` its RequestX) on
// `poller`: `(owner->*handle)(call)` for each call, where Call is the
// method's kind, UnaryCall, BidiCall or WriterCall (a streaming handler binds
// a reactor to the call).
template <typename Call, typename Service, typename RequestFn, typename Owner>
void Serve(Service* service, RequestFn request, Owner* owner,
           void (Owner::*handle)(Call*), CallPoller* poller) {
  auto method = std::make_shared<typename Call::Method>();
  method->request = [service, request](auto... args) {
    (service->*request)(args...);
  };
  method->handle = [owner, handle](Call* call) { (owner->*handle)(call); };
  method->poller = poller;
  Call::Await(std::move(method));
}

}  // namespace lepton::server::rpc

#endif  // LEPTON_SERVER_RPC_ASYNC_CALLS_H_
