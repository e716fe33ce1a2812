#include "core/store/prediction_cache.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lepton {
namespace {

// Bookkeeping per entry besides its arrays: the list node, the hash slot,
// the shared control block and the CachedPrediction itself, roughly.
constexpr int64_t kEntryOverheadBytes = 160;

int64_t BytesOf(const CachedPrediction& p) {
  return kEntryOverheadBytes +
         static_cast<int64_t>((p.features.dense.size() +
                               p.features.values.size() + p.outputs.size()) *
                                  sizeof(float) +
                              p.features.indices.size() * sizeof(uint32_t));
}

uint64_t RandomEpoch() {
  std::random_device device;
  uint64_t epoch = 0;
  while (epoch == 0) epoch = device() & 0xffffffffu;
  return epoch;
}

}  // namespace

uint64_t NewPredictionId() {
  // The epoch in the high 32 bits: an id minted before a restart comes from
  // another epoch (but for a 2^-32 chance), so it is never found after it.
  static std::atomic<uint64_t> next{RandomEpoch() << 32};
  uint64_t id = 0;
  while (id == 0) id = next.fetch_add(1, std::memory_order_relaxed);
  return id;
}

absl::Status ValidatePredictionReferences(
    absl::Span<const ExampleView> examples, int32_t num_outputs) {
  for (size_t i = 0; i < examples.size(); ++i) {
    const ExampleView& e = examples[i];
    if (e.prediction_id != 0) {
      const FeaturesView& f = e.features;
      if (!f.dense.empty() || !f.indices.empty() || !f.values.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "examples[", i, "].features: must be empty with prediction_id"));
      }
      if (!e.served_outputs.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("examples[", i,
                         "].served_outputs: must be empty with prediction_id"));
      }
      continue;
    }
    if (e.served_outputs.empty()) continue;
    if (e.served_outputs.size() != static_cast<size_t>(num_outputs)) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i, "].served_outputs: must have ",
                       num_outputs, " values, got ", e.served_outputs.size()));
    }
    for (size_t o = 0; o < e.served_outputs.size(); ++o) {
      if (!std::isfinite(e.served_outputs[o])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "examples[", i, "].served_outputs[", o, "]: not finite"));
      }
    }
  }
  return absl::OkStatus();
}

PredictionCache::Claim::Claim(Claim&& other) noexcept {
  *this = std::move(other);
}

PredictionCache::Claim& PredictionCache::Claim::operator=(
    Claim&& other) noexcept {
  if (this != &other) {
    Reset();
    cache_ = std::exchange(other.cache_, nullptr);
    original_ = other.original_;
    ids_ = std::move(other.ids_);
    entries_ = std::move(other.entries_);
    // The views point into entries_' data (heap, unmoved) and into
    // original_: still valid after the move.
    resolved_ = std::move(other.resolved_);
    padded_ = std::move(other.padded_);
    other.ids_.clear();
    other.entries_.clear();
    other.resolved_.clear();
  }
  return *this;
}

PredictionCache::Claim::~Claim() { Reset(); }

void PredictionCache::Claim::Reset() {
  if (cache_ != nullptr && !ids_.empty()) cache_->Finish(ids_, false);
  cache_ = nullptr;
}

void PredictionCache::Claim::Commit() {
  if (cache_ != nullptr && !ids_.empty()) cache_->Finish(ids_, true);
  cache_ = nullptr;
}

PredictionCache::PredictionCache(Options options)
    : options_(std::move(options)) {}

absl::Time PredictionCache::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

void PredictionCache::EraseLocked(List::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->id);
  fifo_.erase(it);
}

void PredictionCache::DropExpiredLocked(absl::Time now) {
  // Insertion order is time order (for a clock that does not go back), so
  // the expired entries are a prefix.
  while (!fifo_.empty() && now - fifo_.front().inserted >= options_.ttl) {
    EraseLocked(fifo_.begin());
  }
}

uint64_t PredictionCache::Insert(const FeaturesView& features,
                                 absl::Span<const float> outputs,
                                 uint64_t version) {
  if (!enabled()) return 0;
  // Copied outside the lock: predictions of many threads insert at once.
  auto data = std::make_shared<CachedPrediction>();
  data->features.dense.assign(features.dense.begin(), features.dense.end());
  data->features.indices.assign(features.indices.begin(),
                                features.indices.end());
  data->features.values.assign(features.values.begin(), features.values.end());
  data->outputs.assign(outputs.begin(), outputs.end());
  data->version = version;
  const int64_t bytes = BytesOf(*data);
  const uint64_t id = NewPredictionId();
  const absl::Time now = Now();
  MutexLock lock(&mu_);
  DropExpiredLocked(now);
  fifo_.push_back(Entry{id, now, bytes, false, std::move(data)});
  index_.emplace(id, std::prev(fifo_.end()));
  bytes_ += bytes;
  while (!fifo_.empty() &&
         (static_cast<int64_t>(fifo_.size()) > options_.max_entries ||
          bytes_ > options_.max_bytes)) {
    EraseLocked(fifo_.begin());
  }
  return id;
}

std::shared_ptr<const CachedPrediction> PredictionCache::Find(uint64_t id) {
  MutexLock lock(&mu_);
  DropExpiredLocked(Now());
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : it->second->data;
}

absl::StatusOr<PredictionCache::Claim> PredictionCache::Resolve(
    absl::Span<const ExampleView> examples, int32_t num_outputs) {
  Claim claim;
  claim.original_ = examples;
  bool any = false;
  for (const ExampleView& e : examples) any |= e.prediction_id != 0;
  if (!any) return claim;

  claim.resolved_.assign(examples.begin(), examples.end());
  const absl::Time now = Now();
  {
    MutexLock lock(&mu_);
    DropExpiredLocked(now);
    for (size_t i = 0; i < examples.size(); ++i) {
      const uint64_t id = examples[i].prediction_id;
      if (id == 0) continue;
      auto it = index_.find(id);
      if (it == index_.end() || it->second->claimed) {
        // Undo this call's claims: all or nothing.
        for (uint64_t claimed : claim.ids_) {
          if (auto c = index_.find(claimed); c != index_.end()) {
            c->second->claimed = false;
          }
        }
        claim.ids_.clear();
        return absl::NotFoundError(absl::StrCat(
            "examples[", i, "].prediction_id: ", id,
            " is unknown or expired (an id is used once, is kept for the "
            "server's --prediction_ttl at most, and does not survive a "
            "restart)"));
      }
      it->second->claimed = true;
      claim.ids_.push_back(id);
      claim.entries_.push_back(it->second->data);
      const CachedPrediction& p = *it->second->data;
      ExampleView& r = claim.resolved_[i];
      r.features = p.features.view();
      r.served_outputs = p.outputs;
      if (static_cast<int64_t>(p.outputs.size()) < num_outputs) {
        claim.padded_.push_back(PadServedOutputs(p.outputs, num_outputs));
        r.served_outputs = claim.padded_.back();
      }
    }
  }
  claim.cache_ = this;
  return claim;
}

void PredictionCache::Finish(absl::Span<const uint64_t> ids, bool consume) {
  MutexLock lock(&mu_);
  for (uint64_t id : ids) {
    auto it = index_.find(id);
    if (it == index_.end()) continue;  // evicted while claimed
    if (consume) {
      EraseLocked(it->second);
    } else {
      it->second->claimed = false;
    }
  }
}

int64_t PredictionCache::size() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(fifo_.size());
}

int64_t PredictionCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace lepton
