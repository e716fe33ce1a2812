// The options and the result of one update, and the running totals they add
// up to; shared by the model, the update log and the model-state format.
//
// Thread safety: plain values.
#ifndef LEPTON_CORE_LEARNING_UPDATE_TYPES_H_
#define LEPTON_CORE_LEARNING_UPDATE_TYPES_H_

#include <cstdint>
#include <optional>

namespace lepton {

struct UpdateOptions {
  // Passes over the batch, 1 .. kMaxEpochs.
  int32_t epochs = 1;
  // Replaces the spec's base learning rate for this update only (> 0).
  std::optional<float> learning_rate;
};

inline constexpr int32_t kMaxEpochs = 1000;

// Running totals of a model, as of a version. Progressive validation: every
// update's examples are scored by the model as it was before the update, and
// those scores accumulate here (each example once, whatever the epochs).
struct ModelCounters {
  uint64_t examples_seen = 0;
  uint64_t updates = 0;       // applied Update calls
  uint64_t steps = 0;         // optimizer steps taken
  double weight_seen = 0;     // sum of example weights
  double loss_sum = 0;        // sum of weight * progressive loss
  double correct_weight = 0;  // sum of weights of correct predictions

  double progressive_loss() const {
    return weight_seen > 0 ? loss_sum / weight_seen : 0;
  }
  double progressive_accuracy() const {
    return weight_seen > 0 ? correct_weight / weight_seen : 0;
  }
};

struct UpdateResult {
  uint64_t version = 0;  // the version this update published
  int64_t examples = 0;
  // Progressive validation: the batch's weighted mean loss (and accuracy, for
  // classifiers) under the model as it was before this update; 0 when the
  // example weights sum to 0.
  double loss_before = 0;
  std::optional<double> accuracy_before;
  // QUARANTINE guardrail (adaptation_config.h): this update was held back,
  // so `version` serves the weights of the one before it.
  bool quarantined = false;
  // Updates held back earlier that passed (released) or failed (dropped)
  // their second check during this update; released ones are learned in
  // `version`, before this update's own examples.
  int32_t quarantine_released = 0;
  int32_t quarantine_dropped = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_UPDATE_TYPES_H_
