#include "server/min_version_wait.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/status_mapping.h"

namespace lepton::server {

MinVersionWait::MinVersionWait(ModelStore* store, rpc::UnaryResponder* call,
                               const v1::PredictRequest* request, Answer answer,
                               Ended ended)
    : store_(store),
      call_(call),
      request_(request),
      answer_(std::move(answer)),
      ended_(std::move(ended)) {}

void MinVersionWait::Look() {
  std::weak_ptr<MinVersionWait> weak = weak_from_this();
  absl::StatusOr<std::unique_ptr<VersionWait>> wait =
      store_->WhenVersion(request_->model(), request_->min_version(), [weak] {
        if (std::shared_ptr<MinVersionWait> self = weak.lock()) self->Wake();
      });
  if (!wait.ok()) {
    Finish(wait.status());
    return;
  }
  if (*wait == nullptr) {  // the version is there
    Finish(answer_());
    return;
  }
  MutexLock lock(&mu_);
  if (finished_) {
    (*wait)->Cancel();
    return;
  }
  wait_ = *std::move(wait);
  const std::chrono::system_clock::time_point deadline =
      call_->context()->deadline();
  if (deadline_ == nullptr &&
      deadline != std::chrono::system_clock::time_point::max()) {
    deadline_ = std::make_unique<rpc::PollerAlarm>();
    deadline_->Set(
        call_->poller(), absl::FromChrono(deadline), [weak](bool ok) {
          std::shared_ptr<MinVersionWait> self = weak.lock();
          if (!ok || self == nullptr) return;  // the wait ended otherwise
          self->Finish(absl::DeadlineExceededError(absl::StrCat(
              "min_version: model \"", self->request_->model(),
              "\" did not reach version ", self->request_->min_version(),
              " before the call's deadline")));
        });
  }
}

void MinVersionWait::Wake() {
  MutexLock lock(&mu_);
  if (finished_) return;
  wait_.reset();  // it has run
  std::weak_ptr<MinVersionWait> weak = weak_from_this();
  hops_.emplace_back().Set(call_->poller(), absl::Now(), [weak](bool ok) {
    if (std::shared_ptr<MinVersionWait> self = weak.lock(); ok && self) {
      self->Look();
    }
  });
}

void MinVersionWait::EndForShutdown() {
  Finish(absl::UnavailableError(
      "the server is shutting down: retry on another replica"));
}

void MinVersionWait::Finish(const absl::Status& status) {
  {
    MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (wait_ != nullptr) wait_->Cancel();
    wait_.reset();
    if (deadline_ != nullptr) deadline_->Cancel();
  }
  call_->Finish(ToGrpcStatus(status));
  ended_(this);
}

}  // namespace lepton::server
