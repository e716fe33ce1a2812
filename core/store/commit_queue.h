// CommitQueue: group commit. With --fsync=always a model builds and logs a
// version under its update lock but publishes it, and answers its caller,
// only once an fsync covers its log record; the next update learns while
// that record is synced, and one fsync answers every update it covers. The
// queue holds those versions (and the retries that wait for their original's
// record) in log order.
//
// Taking entries out and answering them are separate steps: a model takes
// them under its locks and answers them (AnswerAll, FailAll) once every lock
// is released, since a caller's callback may call the model again.
//
// Thread safety: every method may be called from any thread; the queue's
// lock is taken after the model's update lock and before the retained
// versions' lock.
#ifndef LEPTON_CORE_STORE_COMMIT_QUEUE_H_
#define LEPTON_CORE_STORE_COMMIT_QUEUE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "core/adaptation/model_events.h"
#include "core/store/published_version.h"
#include "core/store/retained_versions.h"
#include "core/store/store_types.h"
#include "core/util/mutex.h"

namespace lepton {

class CommitQueue {
 public:
  struct Pending {
    // The version to publish once durable; null for a retry, which only
    // waits for its original's record.
    std::shared_ptr<const PublishedVersion> version;
    uint64_t log_position = 0;  // durable once the journal reaches it
    UpdateResult result;
    UpdateCallback done;
    std::vector<ModelEvent> events;  // sent when answered
  };
  using Batch = std::vector<Pending>;

  // Publishes into `versions`, which must outlive the queue.
  explicit CommitQueue(RetainedVersions* versions) : versions_(versions) {}

  void Add(Pending pending) ABSL_LOCKS_EXCLUDED(mu_);
  // Publishes, in log order, every version whose record is durable up to
  // `position`, and takes those entries and the retries they answer out.
  Batch TakeDurable(uint64_t position) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes every entry out, publishing nothing (after a failed sync).
  Batch TakeAll() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  RetainedVersions* const versions_;
  Mutex mu_;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
};

// Answers each entry with its result, after sending the events of its
// version through `emit` (events, version).
void AnswerAll(CommitQueue::Batch batch,
               absl::FunctionRef<void(std::vector<ModelEvent>, uint64_t)> emit);
// Answers each entry with `error`; their versions are never published.
void FailAll(CommitQueue::Batch batch, const absl::Status& error);

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_COMMIT_QUEUE_H_
