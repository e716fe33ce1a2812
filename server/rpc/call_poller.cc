#include "server/rpc/call_poller.h"

#include <pthread.h>

#include <utility>

#include "absl/time/clock.h"

namespace lepton::server::rpc {

CallPoller::CallPoller(std::unique_ptr<grpc::ServerCompletionQueue> cq)
    : server_cq_(cq.get()), cq_(std::move(cq)) {}

CallPoller::CallPoller(std::unique_ptr<grpc::CompletionQueue> cq)
    : server_cq_(nullptr), cq_(std::move(cq)) {}

CallPoller::~CallPoller() { ShutdownAndJoin(); }

void CallPoller::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), kThreadName);
    Run();
  });
}

void CallPoller::Run() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_->Next(&tag, &ok)) static_cast<PollerTag*>(tag)->Proceed(ok);
}

void CallPoller::WaitForCalls() const {
  // Only at shutdown, for the ends already on their way: a short sleep is
  // simpler than a condition every call would signal.
  while (calls_.load(std::memory_order_acquire) > 0) {
    absl::SleepFor(absl::Milliseconds(1));
  }
}

void CallPoller::ShutdownAndJoin() {
  if (thread_.joinable()) WaitForCalls();
  {
    MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    cq_->Shutdown();
  }
  if (thread_.joinable()) {
    thread_.join();
  } else {
    Run();  // never started: drain here
  }
}

struct PollerAlarm::Shared {
  grpc::Alarm alarm;
  Mutex mu;
  bool delivered ABSL_GUARDED_BY(mu) = false;  // no Cancel() after it
};

// The one-shot tag of a PollerAlarm: deleted once it has run.
class PollerAlarm::Tag final : public PollerTag {
 public:
  Tag(std::shared_ptr<Shared> shared, std::function<void(bool)> fn)
      : shared_(std::move(shared)), fn_(std::move(fn)) {}
  void Proceed(bool ok) override {
    {
      MutexLock lock(&shared_->mu);
      shared_->delivered = true;
    }
    fn_(ok);
    delete this;
  }

 private:
  const std::shared_ptr<Shared> shared_;
  const std::function<void(bool)> fn_;
};

void PollerAlarm::Set(CallPoller* poller, absl::Time deadline,
                      std::function<void(bool)> fn) {
  MutexLock lock(&poller->mu_);
  if (poller->shut_down_) return;
  shared_ = std::make_shared<Shared>();
  shared_->alarm.Set(poller->cq_.get(), absl::ToChronoTime(deadline),
                     new Tag(shared_, std::move(fn)));
}

void PollerAlarm::Cancel() {
  if (shared_ == nullptr) return;
  MutexLock lock(&shared_->mu);
  if (!shared_->delivered) shared_->alarm.Cancel();
}

}  // namespace lepton::server::rpc
