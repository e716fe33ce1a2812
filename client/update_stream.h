// UpdateStream: one lepton.v1.ModelService/StreamUpdate call with several
// requests in flight, for streaming a data set into a model.
//
//   UpdateStreamOptions options;
//   options.on_response = [&](int64_t index, const v1::UpdateResponse& r) {
//     ...  // request `index` was applied and published r.version()
//   };
//   std::unique_ptr<UpdateStream> stream = client.StartUpdateStream(options);
//   for (const v1::UpdateRequest& request : batches) {
//     if (!stream->Send(request).ok()) break;  // the stream has ended
//   }
//   absl::Status status = stream->Finish();  // the call's outcome
//
// Pipelining: Send() hands the request to gRPC and returns while fewer than
// `max_in_flight` requests await their responses; at the limit it first waits
// for the oldest response. The server thus always has the next request queued
// while the caller prepares more, and memory stays bounded. (The server
// applies one request of a stream at a time, so more than a few in flight
// buys nothing.) An internal thread reads the responses as they arrive, so the
// server is never held up writing one while the caller is blocked in a write,
// whatever the transport: an in-process channel, for one, completes a write
// only once the other side has read it.
//
// Responses: the server answers every request, in request order. Each
// response goes to `on_response` with the 0-based index of its request, on the
// caller's thread, from within Send() (only when the window is full) or
// Finish().
//
// Errors: the server ends the stream at the first request it rejects, after
// answering every earlier one. Send() then passes those earlier responses on
// and returns the error, and so do every later Send() and Finish(). The
// rejected request is then the one with index acknowledged(): all requests
// before it were applied, none after it. When the stream fails for another
// reason (the connection broke, the server shut down), requests below
// acknowledged() were applied and the others may or may not have been, except
// for the server's own UNAVAILABLE on shutdown, which applies none of them.
//
// Thread safety: one thread calls the stream's methods. The stream owns its
// reader thread and joins it in Finish() or the destructor. It must not
// outlive the Client that opened it. Destroying a stream before Finish()
// cancels the call.
#ifndef LEPTON_CLIENT_UPDATE_STREAM_H_
#define LEPTON_CLIENT_UPDATE_STREAM_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::client {

struct UpdateStreamOptions {
  // Requests sent but not yet answered, at most; >= 1 (1: no pipelining).
  int max_in_flight = 4;
  // Called once per response, in order. May be empty.
  std::function<void(int64_t index, const v1::UpdateResponse& response)>
      on_response;
};

class UpdateStream {
 public:
  // Opens the call on `stub` with `context` (its deadline, if any, bounds the
  // whole stream). Used by Client::StartUpdateStream().
  UpdateStream(v1::ModelService::Stub* stub,
               std::unique_ptr<grpc::ClientContext> context,
               const UpdateStreamOptions& options);
  ~UpdateStream();
  UpdateStream(const UpdateStream&) = delete;
  UpdateStream& operator=(const UpdateStream&) = delete;

  // Sends `request` (serialized before Send() returns, so the caller may
  // reuse it). OK, or the error that ended the stream; FAILED_PRECONDITION
  // after Finish().
  absl::Status Send(const v1::UpdateRequest& request);

  // Half-closes the stream, waits for the remaining responses and returns
  // the call's status. A server that answered fewer (or more) requests than
  // were sent is reported as INTERNAL, even if it ended the call with OK.
  // Idempotent.
  absl::Status Finish();

  // Requests sent, and responses passed to on_response (so far, or in all
  // once the stream has ended).
  int64_t sent() const { return sent_; }
  int64_t acknowledged() const { return acknowledged_; }

 private:
  // The reader thread: queues every response until the stream has no more.
  void ReadLoop();
  // Waits for the oldest unseen response and passes it on. False when the
  // stream has no more (or sent one too many).
  bool DeliverOne();
  // The stream has ended (a failed Write, or after WritesDone()): passes the
  // remaining responses on, joins the reader, takes the call's status, and
  // keeps it.
  absl::Status End();

  const UpdateStreamOptions options_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::UpdateRequest, v1::UpdateResponse>>
      stream_;
  std::thread reader_;

  absl::Mutex mu_;
  // Responses read and not yet passed on, oldest first.
  std::deque<v1::UpdateResponse> responses_ ABSL_GUARDED_BY(mu_);
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;

  // The caller's thread only.
  int64_t sent_ = 0;
  int64_t acknowledged_ = 0;
  bool ended_ = false;
  bool finish_called_ = false;
  bool unexpected_response_ = false;
  absl::Status status_;  // once ended_
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_UPDATE_STREAM_H_
