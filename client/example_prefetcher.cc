#include "client/example_prefetcher.h"

#include <algorithm>
#include <utility>

namespace lepton::client {

ExamplePrefetcher::ExamplePrefetcher(std::unique_ptr<ExampleReader> reader,
                                     const Options& options)
    : reader_(std::move(reader)),
      options_{std::max(options.batch_size, 1), std::max(options.depth, 1)} {
  const int count = options_.depth + 2;
  for (int i = 0; i < count; ++i) {
    batches_.push_back(std::make_unique<ExampleBatch>());
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& batch : batches_) free_.push_back(batch.get());
  }
  thread_ = std::thread([this] { ReadLoop(); });
}

ExamplePrefetcher::~ExamplePrefetcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void ExamplePrefetcher::ReadLoop() {
  while (true) {
    ExampleBatch* batch = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ExamplePrefetcher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stop_ || !p->free_.empty();
          },
          this));
      if (stop_) return;
      batch = free_.back();
      free_.pop_back();
    }
    // The file is read without the lock: the caller takes ready batches
    // meanwhile.
    absl::StatusOr<int> n = reader_->NextBatch(options_.batch_size, batch);
    absl::MutexLock lock(&mu_);
    if (!n.ok() || *n == 0) {
      if (!n.ok()) error_ = n.status();
      free_.push_back(batch);
      done_ = true;
      return;
    }
    ready_.push_back(batch);
  }
}

absl::StatusOr<ExampleBatch*> ExamplePrefetcher::Next() {
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) {
    free_.push_back(current_);
    current_ = nullptr;
  }
  mu_.Await(absl::Condition(
      +[](ExamplePrefetcher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->done_ || !p->ready_.empty();
      },
      this));
  if (!ready_.empty()) {
    current_ = ready_.front();
    ready_.pop_front();
    return current_;
  }
  if (!error_.ok()) return error_;
  return nullptr;
}

}  // namespace lepton::client
