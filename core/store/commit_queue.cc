#include "core/store/commit_queue.h"

#include <utility>

namespace lepton {

void CommitQueue::Add(Pending pending) {
  MutexLock lock(&mu_);
  pending_.push_back(std::move(pending));
}

CommitQueue::Batch CommitQueue::TakeDurable(uint64_t position) {
  Batch done;
  MutexLock lock(&mu_);
  while (!pending_.empty() && pending_.front().log_position <= position) {
    if (pending_.front().version != nullptr) {
      versions_->Publish(pending_.front().version);
    }
    done.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  // Retries queued behind later updates need not wait for those.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->version == nullptr && it->log_position <= position) {
      done.push_back(std::move(*it));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

CommitQueue::Batch CommitQueue::TakeAll() {
  std::deque<Pending> all;
  {
    MutexLock lock(&mu_);
    all.swap(pending_);
  }
  return {std::make_move_iterator(all.begin()),
          std::make_move_iterator(all.end())};
}

void AnswerAll(
    CommitQueue::Batch batch,
    absl::FunctionRef<void(std::vector<ModelEvent>, uint64_t)> emit) {
  for (CommitQueue::Pending& p : batch) {
    if (p.version != nullptr) emit(std::move(p.events), p.version->version());
    p.done(p.result);
  }
}

void FailAll(CommitQueue::Batch batch, const absl::Status& error) {
  for (CommitQueue::Pending& p : batch) p.done(error);
}

}  // namespace lepton
