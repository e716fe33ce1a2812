#include "client/model_watch.h"

#include <grpcpp/support/sync_stream.h>

#include <utility>

#include "client/client.h"

namespace lepton::client {

ModelWatch::ModelWatch(v1::ModelService::Stub* stub,
                       std::unique_ptr<grpc::ClientContext> context,
                       const v1::WatchModelRequest& request, OnEvent on_event)
    : on_event_(std::move(on_event)), context_(std::move(context)) {
  thread_ = std::thread([this, stub, request] { Run(stub, request); });
}

ModelWatch::~ModelWatch() { (void)Stop(); }

void ModelWatch::Run(v1::ModelService::Stub* stub,
                     v1::WatchModelRequest request) {
  std::unique_ptr<grpc::ClientReader<v1::ModelEvent>> reader =
      stub->WatchModel(context_.get(), request);
  // Returns once the server has subscribed, or the call has ended.
  reader->WaitForInitialMetadata();
  {
    absl::MutexLock lock(&mu_);
    subscribed_ = true;
  }
  v1::ModelEvent event;
  while (reader->Read(&event)) {
    if (on_event_) on_event_(event);
  }
  const grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  ended_ = true;
  status_ = stopping_ && status.error_code() == grpc::StatusCode::CANCELLED
                ? absl::OkStatus()
                : FromGrpcStatus(status);
}

absl::Status ModelWatch::WaitSubscribed() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](ModelWatch* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) {
        return w->subscribed_ || w->ended_;
      },
      this));
  return ended_ ? status_ : absl::OkStatus();
}

bool ModelWatch::WaitEnded(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
}

absl::Status ModelWatch::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!ended_) stopping_ = true;
  }
  context_->TryCancel();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace lepton::client
