// ModelHistory: what the dashboard (dashboard.h) remembers of one model, in
// bounded memory: samples of its counters over time, and its notable events
// (drifts, policy actions, refused and quarantined updates, rollbacks, added
// classes).
//
//   ModelHistory history;
//   history.AddSample(sample);   // the sampler, every kSampleInterval
//   history.AddEvent(event);     // the model's event listener
//   std::vector<HistorySample> points = history.Samples();
//
// Bound: at most kMaxSamples samples and kMaxEvents events, whatever the
// model's age. When the samples are full, the older half is thinned (every
// other one dropped), so the newest half always keeps one point per sample
// and older stretches grow coarser the older they are (each thinning halves
// a stretch's resolution). A sample holds cumulative counters, so the mean
// loss between two kept samples stays exact after thinning: only the
// resolution is lost. Events beyond kMaxEvents drop the oldest
// (dropped_events() counts them). With 600 samples of 120 bytes and 300
// events of about 200 bytes, a model's history is under 200 KB.
//
// Not written anywhere: a restarted server starts with an empty history.
//
// Thread safety: every method may be called from any thread (mu_).
#ifndef LEPTON_SERVER_MODEL_HISTORY_H_
#define LEPTON_SERVER_MODEL_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/store/model_store.h"
#include "core/util/mutex.h"

namespace lepton::server {

// One sample of a model's counters (ModelInfo), as the sampler saw them.
struct HistorySample {
  absl::Time time;
  uint64_t version = 0;
  uint64_t examples_seen = 0;  // the version's own (a rollback lowers it)
  // Cumulative, never lowered by a rollback: the rates' clock.
  uint64_t examples_total = 0;
  uint64_t updates_total = 0;
  // The version's cumulative progressive counters (ModelCounters).
  double weight_seen = 0;
  double loss_sum = 0;
  double correct_weight = 0;
  // The holdout set's loss and accuracy for this version (0 without one).
  double validation_loss = 0;
  double validation_accuracy = 0;
  int64_t holdout_examples = 0;
  DriftState drift_state = DriftState::kStable;
};

// One remembered event: ModelEvent without the kVersion events of updates.
struct HistoryEvent {
  ModelEvent::Kind kind = ModelEvent::Kind::kVersion;
  uint64_t version = 0;
  uint64_t example = 0;
  std::string detail;
  absl::Time time;
};

class ModelHistory {
 public:
  static constexpr size_t kMaxSamples = 600;
  static constexpr size_t kMaxEvents = 300;

  // Appends `sample`, thinning the older half first when full.
  void AddSample(const HistorySample& sample) ABSL_LOCKS_EXCLUDED(mu_);
  // Remembers `event` unless it is a plain version (one per update, which
  // the samples already tell); a rollback's version event (detail set) is
  // remembered.
  void AddEvent(const ModelEvent& event) ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<HistorySample> Samples() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<HistoryEvent> Events() const ABSL_LOCKS_EXCLUDED(mu_);
  // The newest sample; false if there is none.
  bool Latest(HistorySample* sample) const ABSL_LOCKS_EXCLUDED(mu_);
  // Events dropped beyond kMaxEvents; samples thinned so far.
  uint64_t dropped_events() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t thinned_samples() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable Mutex mu_;
  std::vector<HistorySample> samples_ ABSL_GUARDED_BY(mu_);
  std::deque<HistoryEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_events_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t thinned_samples_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_MODEL_HISTORY_H_
