#include "core/storage/log_syncer.h"

#include <utility>

#include "absl/time/clock.h"

namespace lepton {

LogSyncer::LogSyncer(absl::Duration interval)
    : interval_(interval), thread_([this] { Run(); }) {}

LogSyncer::~LogSyncer() { Stop(); }

void LogSyncer::Request(SyncTask task) {
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      wake_.Signal();
      return;
    }
  }
  task();  // stopped: nobody else will run it
}

void LogSyncer::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.Signal();
  }
  thread_.join();
}

void LogSyncer::Run() {
  while (true) {
    std::deque<SyncTask> batch;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) wake_.Wait(&mu_);
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    const absl::Time started = absl::Now();
    // One model may have asked many times: its first task syncs everything
    // appended so far, and the rest find nothing left to do.
    for (SyncTask& task : batch) task();
    if (interval_ > absl::ZeroDuration()) {
      MutexLock lock(&mu_);
      const absl::Time next = started + interval_;
      while (!stopping_ && absl::Now() < next) {
        wake_.WaitWithTimeout(&mu_, next - absl::Now());
      }
    }
  }
}

}  // namespace lepton
