// WorkerPool: a small fixed pool of worker threads for the work that
// must not hold the server's polling thread (rpc/call_poller.h): the
// learning of Update and StreamUpdate calls and the whole-model calls (the
// service's update workers), and the computation of large Predict calls (its
// prediction workers, a pool of their own so that predictions never queue
// behind updates).
//
// The service hands each task to a pool and returns; a worker runs it and
// answers the call (a call may be answered from any thread). Each worker may
// lower its own OS priority by `nice` once at start (Linux: per-thread nice,
// which needs no privilege to raise), so that a saturated CPU favours the
// threads serving predictions; the server's default is 0
// (docs/benchmarks.md has why).
//
// Tasks start in the order they were submitted (one FIFO queue); with more
// than one worker, tasks submitted back to back may run at the same time, so
// a caller that needs an order (one StreamUpdate call) submits its next task
// only after the previous one finished.
//
// Shutdown() stops accepting tasks, runs every task already queued (so every
// accepted update is answered) and joins the workers. It is idempotent, and
// the destructor calls it.
//
// Ownership and thread safety: the pool owns its threads and the queued
// tasks. Submit() and Shutdown() may be called from any thread, concurrently,
// but not from inside a task (Shutdown() would wait for itself).
#ifndef LEPTON_SERVER_WORKER_POOL_H_
#define LEPTON_SERVER_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <semaphore>
#include <thread>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "core/util/mutex.h"

namespace lepton::server {

class WorkerPool {
 public:
  // `threads` workers (at least 1), each at `nice` (0 to 19) above the
  // process's own niceness, capped at 19.
  WorkerPool(int32_t threads, int32_t nice);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (and `task` is dropped unrun) once Shutdown() began.
  bool Submit(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);

  // Rejects new tasks, runs the queued ones, joins the workers.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until no task is queued or running, or until `deadline`; false if
  // the deadline came first. Tasks may still be submitted meanwhile.
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // Tasks queued and not yet started (a metric: read at scrape time).
  int64_t QueueDepth() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work(int32_t nice) ABSL_LOCKS_EXCLUDED(mu_);

  // One token per queued task, plus one per worker once stopping: a worker
  // that takes a token and finds the queue empty exits.
  std::counting_semaphore<> tokens_{0};
  mutable Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  CondVar idle_;  // signalled when the queue is empty and nothing runs
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Written by the constructor and Shutdown() only.
  std::vector<std::thread> workers_;
  absl::once_flag shutdown_once_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_WORKER_POOL_H_
