#include "server/worker_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace lepton::server {
namespace {

// Raises the calling thread's niceness by `nice` (Linux: PRIO_PROCESS with a
// thread id applies to that thread only). Best effort: raising niceness
// needs no privilege, and a thread left at normal priority still works.
void LowerThisThreadsPriority(int32_t nice) {
  if (nice <= 0) return;
  const pid_t tid = gettid();
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  setpriority(PRIO_PROCESS, tid, std::min(current + nice, 19));
}

}  // namespace

WorkerPool::WorkerPool(int32_t threads, int32_t nice) {
  threads = std::max<int32_t>(threads, 1);
  workers_.reserve(threads);
  for (int32_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this, nice] { Work(nice); });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

bool WorkerPool::Submit(std::function<void()> task) {
  {
    MutexLock lock(&mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(task));
  }
  tokens_.release();
  return true;
}

void WorkerPool::Shutdown() {
  absl::call_once(shutdown_once_, [this] {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    tokens_.release(static_cast<std::ptrdiff_t>(workers_.size()));
    for (std::thread& worker : workers_) worker.join();
  });
}

bool WorkerPool::WaitIdle(absl::Time deadline) {
  MutexLock lock(&mu_);
  while (!queue_.empty() || running_ > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    idle_.WaitWithTimeout(&mu_, left);
  }
  return true;
}

int64_t WorkerPool::QueueDepth() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

void WorkerPool::Work(int32_t nice) {
  LowerThisThreadsPriority(nice);
  while (true) {
    tokens_.acquire();
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      // Before stopping_ every token has its task; after it, an empty queue
      // stays empty, so this worker's share of the work is done.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    MutexLock lock(&mu_);
    if (--running_ == 0 && queue_.empty()) idle_.SignalAll();
  }
}

}  // namespace lepton::server
