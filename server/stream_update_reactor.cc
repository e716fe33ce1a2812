#include "server/stream_update_reactor.h"

#include "server/model_service.h"
#include "server/status_mapping.h"

namespace lepton::server {
namespace {

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server shutting down: every acknowledged request was "
                      "applied, later ones were not");
}

}  // namespace

StreamUpdateReactor::StreamUpdateReactor(
    ModelService* service,
    rpc::BidiCall<v1::UpdateRequest, v1::UpdateResponse>* call)
    : BidiReactor(call), service_(service), context_(call->context()) {
  service_->RegisterStream(this);
  ReadNextOrEnd();
}

void StreamUpdateReactor::ReadNextOrEnd() {
  {
    MutexLock lock(&mu_);
    // draining() is set before EndForShutdown() takes mu_, so either it is
    // seen here or EndForShutdown() sees awaiting_request_ below.
    if (!service_->draining()) {
      awaiting_request_ = true;
      StartRead(&request_);
      return;
    }
    if (!ClaimFinish()) return;
  }
  Finish(ShuttingDown());
}

void StreamUpdateReactor::OnReadDone(bool ok) {
  {
    MutexLock lock(&mu_);
    awaiting_request_ = false;
    // A request that arrives after a shutdown ended the call is not applied.
    if (finished_) return;
    if (!ok) {  // the client half-closed, or the call ended
      ClaimFinish();
    }
  }
  if (!ok) {
    Finish(grpc::Status::OK);
    return;
  }
  // The learning runs on an update worker, which then writes the response
  // (or finishes the call); the next read starts only after that write, so
  // this stream's requests are applied one at a time, in order.
  const bool queued =
      service_->SubmitUpdate(request_.model(), [this] { ApplyAndRespond(); });
  if (!queued) FinishOnce(ShuttingDown());
}

void StreamUpdateReactor::ApplyAndRespond() {
  response_.Clear();
  // A request read before the call's deadline but reached after it (the
  // workers were busy) is not applied: the client no longer waits for it.
  if (absl::Status alive = ModelService::CallAlive(*context_); !alive.ok()) {
    FinishOnce(ToGrpcStatus(alive));
    return;
  }
  service_->ApplyUpdate(request_, &response_, [this](absl::Status status) {
    if (!status.ok()) {
      FinishOnce(ToGrpcStatus(status));
      return;
    }
    StartWrite(&response_);
  });
}

void StreamUpdateReactor::OnWriteDone(bool ok) {
  if (!ok) {
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
    return;
  }
  ReadNextOrEnd();
}

void StreamUpdateReactor::EndForShutdown() {
  {
    MutexLock lock(&mu_);
    if (!awaiting_request_ || !ClaimFinish()) return;
  }
  Finish(ShuttingDown());
}

bool StreamUpdateReactor::ClaimFinish() {
  if (finished_) return false;
  finished_ = true;
  return true;
}

void StreamUpdateReactor::FinishOnce(const grpc::Status& status) {
  {
    MutexLock lock(&mu_);
    if (!ClaimFinish()) return;
  }
  // Without mu_: gRPC may run OnDone(), which deletes this, as soon as
  // Finish() is called.
  Finish(status);
}

void StreamUpdateReactor::OnDone() {
  service_->UnregisterStream(this);
  delete this;
}

}  // namespace lepton::server
