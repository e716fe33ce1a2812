// StreamUpdateReactor: the server side of one StreamUpdate call.
//
// A state machine: read a request, apply it (ModelService::ApplyUpdate, on an
// update worker: see ModelService::SubmitUpdate), write its response, read
// the next. Responses therefore come in request
// order, and a rejected request ends the call with its error after every
// earlier request was applied and acknowledged.
//
// Shutdown: the service calls EndForShutdown() on every open stream when it
// begins draining. A stream waiting for its next request is finished at once
// with UNAVAILABLE; one applying a request finishes the same way right after
// writing that request's response. Either way, every acknowledged request was
// applied and no later one was, and an idle client cannot hold up a shutdown.
//
// Ownership and thread safety: created by ModelService::StreamUpdate(),
// registered with the service for its whole life, and deleted by itself in
// OnDone(), which cannot come before Finish(), so a queued apply always
// finds its reactor alive. Its callbacks run one at a time on the polling
// thread and the apply runs between a read's and a write's callbacks, but
// EndForShutdown() comes from the shutting-down thread, so the phase and the
// once-only Finish() are guarded by mu_ (Finish() itself is called after mu_ is
// released: it may lead to OnDone(), which deletes the reactor).
#ifndef LEPTON_SERVER_STREAM_UPDATE_REACTOR_H_
#define LEPTON_SERVER_STREAM_UPDATE_REACTOR_H_

#include "absl/base/thread_annotations.h"
#include "core/util/mutex.h"
#include "lepton/v1/lepton.pb.h"
#include "server/rpc/async_calls.h"

namespace lepton::server {

class ModelService;

class StreamUpdateReactor final
    : public rpc::BidiReactor<v1::UpdateRequest, v1::UpdateResponse> {
 public:
  // Binds itself to `call`, which outlives the reactor's OnDone().
  StreamUpdateReactor(
      ModelService* service,
      rpc::BidiCall<v1::UpdateRequest, v1::UpdateResponse>* call);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // Finishes the call with UNAVAILABLE now if it is waiting for a request;
  // otherwise it finishes after its current response (it sees draining()).
  void EndForShutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // On an update worker: applies request_, then (once it is durable, with
  // --fsync=always: on the log syncer's thread) writes its response or
  // finishes with its error.
  void ApplyAndRespond() ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the next request, or finishes if the service is draining.
  void ReadNextOrEnd() ABSL_LOCKS_EXCLUDED(mu_);
  // True for the one caller that may call Finish(): marks the call finished.
  // Finish() itself is called after mu_ is released (see FinishOnce).
  bool ClaimFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finish() unless already finished; the first status wins.
  void FinishOnce(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  ModelService* const service_;
  const grpc::ServerContext* const context_;
  // Only one read, apply or write is outstanding at a time, and each starts
  // from the end of the one before (OnReadDone() queues the apply, which
  // starts the write), so these need no lock.
  v1::UpdateRequest request_;
  v1::UpdateResponse response_;

  Mutex mu_;
  bool awaiting_request_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_STREAM_UPDATE_REACTOR_H_
