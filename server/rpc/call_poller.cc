#include "server/rpc/call_poller.h"

#include <pthread.h>

#include <utility>

#include "absl/time/clock.h"

namespace lepton::server::rpc {
namespace {

// The one-shot tag of a PollerAlarm: deleted once it has run.
class FunctionTag final : public PollerTag {
 public:
  explicit FunctionTag(std::function<void(bool)> fn) : fn_(std::move(fn)) {}
  void Proceed(bool ok) override {
    fn_(ok);
    delete this;
  }

 private:
  std::function<void(bool)> fn_;
};

}  // namespace

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

void PollerAlarm::Set(CallPoller* poller, absl::Time deadline,
                      std::function<void(bool)> fn) {
  MutexLock lock(&poller->mu_);
  if (poller->shut_down_) return;
  alarm_.Set(poller->cq_.get(), absl::ToChronoTime(deadline),
             new FunctionTag(std::move(fn)));
}

}  // namespace lepton::server::rpc
