#include "server/health_service.h"

#include <optional>

namespace lepton::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch call. Lock order: the service's mu_, then the watch's.
class HealthWatch final : public rpc::WriteReactor<HealthCheckResponse> {
 public:
  HealthWatch(HealthService* service,
              rpc::WriterCall<HealthCheckRequest, HealthCheckResponse>* call)
      : WriteReactor(call),
        service_(service),
        name_(call->request()->service()) {}

  const std::string& name() const { return name_; }

  // A new status of the watched name.
  void Send(HealthService::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (ending_) return;
    if (writing_) {
      next_ = status;
      return;
    }
    WriteLocked(status);
  }
  // Finishes with `status` after the write in flight, if any.
  void End(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (ending_) return;
    ending_ = true;
    end_status_ = status;
    if (!writing_) Finish(end_status_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      if (!ending_) {
        ending_ = true;
        end_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "watch ended");
      }
      next_.reset();
    }
    // A status that came while the last one was being written goes out
    // before the end: a shutdown's NOT_SERVING precedes its UNAVAILABLE.
    if (next_.has_value()) {
      WriteLocked(*next_);
      next_.reset();
    } else if (ending_) {
      Finish(end_status_);
    }
  }
  void OnCancel() override {
    End(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }
  void OnDone() override {
    service_->Unregister(this);
    delete this;
  }

 private:
  void WriteLocked(HealthService::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    out_.set_status(status);
    StartWrite(&out_);
  }

  HealthService* const service_;
  const std::string name_;
  Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::optional<HealthService::Status> next_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse out_ ABSL_GUARDED_BY(mu_);
};

namespace {

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server shutting down: watch again after the restart");
}

}  // namespace

void HealthService::Serve(rpc::CallPoller* poller) {
  using Async = grpc::health::v1::Health::AsyncService;
  rpc::Serve(&async_, &Async::RequestCheck, this, &HealthService::Check,
             poller);
  rpc::Serve(&async_, &Async::RequestWatch, this, &HealthService::Watch,
             poller);
}

void HealthService::SetServing(const std::string& service, bool serving) {
  const Status status =
      serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  MutexLock lock(&mu_);
  Status& current = statuses_[service];
  if (current == status) return;
  current = status;
  for (HealthWatch* watch : watches_) {
    if (watch->name() == service) watch->Send(status);
  }
}

void HealthService::EndWatches() {
  MutexLock lock(&mu_);
  ended_ = true;
  for (HealthWatch* watch : watches_) watch->End(ShuttingDown());
}

void HealthService::Check(
    rpc::UnaryCall<HealthCheckRequest, HealthCheckResponse>* call) {
  std::optional<Status> status;
  {
    MutexLock lock(&mu_);
    auto it = statuses_.find(call->request()->service());
    if (it != statuses_.end()) status = it->second;
  }
  if (!status.has_value()) {
    call->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return;
  }
  call->response()->set_status(*status);
  call->Finish(grpc::Status::OK);
}

void HealthService::Watch(
    rpc::WriterCall<HealthCheckRequest, HealthCheckResponse>* call) {
  auto* watch = new HealthWatch(this, call);
  MutexLock lock(&mu_);
  watches_.insert(watch);
  if (ended_) {
    watch->End(ShuttingDown());
    return;
  }
  auto it = statuses_.find(watch->name());
  watch->Send(it != statuses_.end() ? it->second
                                    : HealthCheckResponse::SERVICE_UNKNOWN);
}

void HealthService::Unregister(HealthWatch* watch) {
  MutexLock lock(&mu_);
  watches_.erase(watch);
}

}  // namespace lepton::server
