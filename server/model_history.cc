#include "server/model_history.h"

#include <utility>

namespace lepton::server {

void ModelHistory::AddSample(const HistorySample& sample) {
  MutexLock lock(&mu_);
  if (samples_.size() >= kMaxSamples) {
    // Keep samples 0, 2, 4, ... of the older half, then the newer half.
    const size_t half = samples_.size() / 2;
    size_t kept = 0;
    for (size_t i = 0; i < half; i += 2) samples_[kept++] = samples_[i];
    for (size_t i = half; i < samples_.size(); ++i) {
      samples_[kept++] = samples_[i];
    }
    thinned_samples_ += samples_.size() - kept;
    samples_.resize(kept);
  }
  samples_.push_back(sample);
}

void ModelHistory::AddEvent(const ModelEvent& event) {
  if (event.kind == ModelEvent::Kind::kVersion && event.detail.empty()) {
    return;
  }
  HistoryEvent e;
  e.kind = event.kind;
  e.version = event.version;
  e.example = event.example;
  e.detail = event.detail;
  e.time = event.time;
  MutexLock lock(&mu_);
  if (events_.size() >= kMaxEvents) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(std::move(e));
}

std::vector<HistorySample> ModelHistory::Samples() const {
  MutexLock lock(&mu_);
  return samples_;
}

std::vector<HistoryEvent> ModelHistory::Events() const {
  MutexLock lock(&mu_);
  return {events_.begin(), events_.end()};
}

bool ModelHistory::Latest(HistorySample* sample) const {
  MutexLock lock(&mu_);
  if (samples_.empty()) return false;
  *sample = samples_.back();
  return true;
}

uint64_t ModelHistory::dropped_events() const {
  MutexLock lock(&mu_);
  return dropped_events_;
}

uint64_t ModelHistory::thinned_samples() const {
  MutexLock lock(&mu_);
  return thinned_samples_;
}

}  // namespace lepton::server
