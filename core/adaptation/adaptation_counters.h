// The plain values of a model's adaptation state (adaptation_config.h): its
// counters, and its challenger's statistics. One type, embedded in each form
// of that state: the working state (ModelAdaptation), a version's immutable
// snapshot (AdaptationSnapshot), its encoding (AdaptationState), and what
// callers see (ModelInfo::Adaptation).
//
// Thread safety: plain values.
#ifndef LEPTON_CORE_ADAPTATION_ADAPTATION_COUNTERS_H_
#define LEPTON_CORE_ADAPTATION_ADAPTATION_COUNTERS_H_

#include <cstdint>
#include <vector>

#include "core/learning/drift_detector_config.h"

namespace lepton {

struct AdaptationCounters {
  DriftState drift_state = DriftState::kStable;
  uint64_t drifts = 0;
  // The last drift: the model's example count when it was flagged (0: none)
  // and the detector's mean loss before the change point.
  uint64_t change_example = 0;
  double mean_loss_before = 0;
  // BOOST: examples left at the raised learning rate.
  int64_t boost_remaining = 0;
  uint64_t promotions = 0;  // CHALLENGER: challengers promoted
  // The version's weighted mean loss (and accuracy) on its holdout set.
  double validation_loss = 0;
  double validation_accuracy = 0;
  // Holdout examples ever added (the clock of the QUARANTINE rechecks).
  uint64_t holdout_added = 0;
  // QUARANTINE: updates ever held back, and of those, learned after their
  // second check and given up.
  uint64_t quarantined_updates = 0;
  uint64_t quarantine_released = 0;
  uint64_t quarantine_dropped = 0;
};

// The CHALLENGER policy's shadow model, besides its weights.
struct ChallengerStats {
  uint64_t started_at = 0;  // the model's examples_seen at the start
  int64_t examples = 0;     // examples it has learned
  // Progressive losses of the last challenger_window examples both models
  // scored (ring buffers indexed by count % window), and their sums.
  std::vector<float> champion_window;
  std::vector<float> challenger_window;
  double champion_sum = 0;
  double challenger_sum = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_ADAPTATION_ADAPTATION_COUNTERS_H_
