#include "client/example_prefetcher.h"

#include <algorithm>
#include <utility>

#include "absl/functional/function_ref.h"

namespace lepton::client {

ExamplePrefetcher::ExamplePrefetcher(std::unique_ptr<ExampleReader> reader,
                                     const Options& options)
    : reader_(std::move(reader)),
      options_{std::max(options.batch_size, 1), std::max(options.depth, 1),
               // The first CSV line sets the width the others must have.
               reader_->options().format == FileFormat::kCsv &&
                       reader_->options().num_features == 0
                   ? 1
                   : std::max(options.threads, 1)},
      file_options_(reader_->options()),
      file_name_(reader_->name()) {
  const int count = options_.depth + options_.threads + 1;
  for (int i = 0; i < count; ++i) slots_.push_back(std::make_unique<Slot>());
  {
    absl::MutexLock lock(&mu_);
    for (const auto& slot : slots_) free_.push_back(slot.get());
  }
  if (options_.threads == 1) {
    threads_.emplace_back([this] { ReadLoop(); });
    return;
  }
  threads_.emplace_back([this] { SplitLoop(); });
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] { ParseLoop(); });
  }
}

ExamplePrefetcher::~ExamplePrefetcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

ExamplePrefetcher::Slot* ExamplePrefetcher::TakeFreeSlot() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](ExamplePrefetcher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->stop_ || !p->free_.empty();
      },
      this));
  if (stop_) return nullptr;
  Slot* slot = free_.back();
  free_.pop_back();
  return slot;
}

void ExamplePrefetcher::EndReading(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  read_error_ = status;
  reading_done_ = true;
}

void ExamplePrefetcher::ReadLoop() {
  FillLoop(
      [this](Slot* slot) {
        return reader_->NextBatch(options_.batch_size, &slot->batch);
      },
      [this](Slot* slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        slot->status = absl::OkStatus();
        slot->parsed = true;
        in_order_.push_back(slot);
      });
}

void ExamplePrefetcher::SplitLoop() {
  FillLoop(
      [this](Slot* slot) {
        return reader_->NextBatchText(options_.batch_size, &slot->text);
      },
      [this](Slot* slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        slot->parsed = false;
        in_order_.push_back(slot);
        to_parse_.push_back(slot);
      });
}

void ExamplePrefetcher::FillLoop(
    absl::FunctionRef<absl::StatusOr<int>(Slot*)> fill,
    absl::FunctionRef<void(Slot*)> queue) {
  while (Slot* slot = TakeFreeSlot()) {
    // The file is read without the lock: the caller takes ready batches
    // meanwhile.
    absl::StatusOr<int> n = fill(slot);
    if (!n.ok() || *n == 0) {
      {
        absl::MutexLock lock(&mu_);
        free_.push_back(slot);
      }
      EndReading(n.status());
      return;
    }
    absl::MutexLock lock(&mu_);
    queue(slot);
  }
}

void ExamplePrefetcher::ParseLoop() {
  while (true) {
    Slot* slot = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ExamplePrefetcher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stop_ || !p->to_parse_.empty() ||
                   (p->reading_done_ && p->to_parse_.empty());
          },
          this));
      if (stop_ || to_parse_.empty()) return;
      slot = to_parse_.front();
      to_parse_.pop_front();
    }
    absl::Status status =
        ParseBatchText(file_options_, file_name_, slot->text, &slot->batch);
    absl::MutexLock lock(&mu_);
    slot->status = std::move(status);
    slot->parsed = true;
  }
}

absl::StatusOr<ExampleBatch*> ExamplePrefetcher::Next() {
  if (!error_.ok()) return error_;
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) {
    free_.push_back(current_);
    current_ = nullptr;
  }
  mu_.Await(absl::Condition(
      +[](ExamplePrefetcher* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->in_order_.empty() ? p->reading_done_
                                    : p->in_order_.front()->parsed;
      },
      this));
  if (in_order_.empty()) {
    error_ = read_error_;
    if (!error_.ok()) return error_;
    return nullptr;
  }
  Slot* slot = in_order_.front();
  in_order_.pop_front();
  if (!slot->status.ok()) {
    error_ = slot->status;
    free_.push_back(slot);
    return error_;
  }
  current_ = slot;
  return &slot->batch;
}

}  // namespace lepton::client
