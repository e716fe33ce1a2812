// LogSyncer: the one background thread of a durable store that makes update
// logs durable, so that no update thread ever waits for the disk.
//
// With --fsync=always a model asks for a sync after appending an update's
// record (Request); the syncer runs the model's SyncLog(), which fsyncs
// every record appended so far, publishes the versions they produced and
// answers their callers. Requests that arrive while a sync is in progress
// are served together by the next one (group commit). With
// --fsync=interval it syncs every model that asked at most once per
// interval; the models answer their callers before that.
//
// One thread for all models: the models that asked are synced one after
// another, so a model's sync can wait for the fsyncs of the others that
// asked before it (one each), never for their learning.
//
// Thread safety: Request() and Stop() may be called from any thread; after
// Stop(), Request() runs its task on the calling thread.
#ifndef LEPTON_CORE_STORAGE_LOG_SYNCER_H_
#define LEPTON_CORE_STORAGE_LOG_SYNCER_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/util/mutex.h"

namespace lepton {

class LogSyncer {
 public:
  // A model's sync routine; the syncer holds it until it has run.
  using SyncTask = std::function<void()>;

  // `interval` == 0: run each request as soon as possible; > 0: collect
  // requests and run them at most once per interval.
  explicit LogSyncer(absl::Duration interval);
  ~LogSyncer();  // Stop()
  LogSyncer(const LogSyncer&) = delete;
  LogSyncer& operator=(const LogSyncer&) = delete;

  void Request(SyncTask task) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs the queued tasks and joins the thread. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration interval_;
  Mutex mu_;
  CondVar wake_;
  std::deque<SyncTask> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_LOG_SYNCER_H_
