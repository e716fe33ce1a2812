#include "server/watch_model_reactor.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/model_service.h"
#include "server/status_mapping.h"

namespace lepton::server {

WatchModelReactor::WatchModelReactor(
    ModelService* service, const ModelStore& store,
    rpc::WriterCall<v1::WatchModelRequest, v1::ModelEvent>* call)
    : WriteReactor(call), service_(service) {
  const v1::WatchModelRequest& request = *call->request();
  const uint32_t ms = request.min_version_interval_ms();
  // The conversion to the private base is allowed here, not in make_shared.
  WatchFeed::Sink* const sink = this;
  feed_ = std::make_shared<WatchFeed>(
      sink, call->poller(), request.name(),
      absl::Milliseconds(ms == 0 ? kDefaultVersionIntervalMs : ms));
  service_->RegisterWatch(this);
  if (request.name().empty()) {
    feed_->End(
        ToGrpcStatus(absl::InvalidArgumentError("name: must not be empty")));
    return;
  }
  // Checked after registering: BeginShutdown() sets draining() before it
  // walks the registered watches, so either it reaches this one or this one
  // sees draining() here.
  if (service_->draining()) {
    EndForShutdown();
    return;
  }
  absl::StatusOr<std::unique_ptr<EventSubscription>> subscription = store.Watch(
      request.name(),
      [feed = feed_](const ModelEvent& event) { feed->Push(event); });
  if (!subscription.ok()) {
    feed_->End(ToGrpcStatus(subscription.status()));
    return;
  }
  // The listener may already have run; that is fine: it only touches feed_.
  subscription_ = *std::move(subscription);
  feed_->Subscribed();
}

WatchModelReactor::~WatchModelReactor() = default;

void WatchModelReactor::OnWriteDone(bool ok) { feed_->OnWriteDone(ok); }

void WatchModelReactor::OnCancel() {
  feed_->End(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
}

void WatchModelReactor::EndForShutdown() {
  feed_->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server shutting down: watch again elsewhere or "
                          "after the restart"));
}

void WatchModelReactor::OnDone() {
  // Unsubscribe first; a Publish already under way may still call the
  // listener, which then finds the Feed detached.
  subscription_.reset();
  feed_->Detach();
  service_->UnregisterWatch(this);
  delete this;
}

}  // namespace lepton::server
