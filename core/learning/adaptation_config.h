// How a model adapts and protects itself, as part of its spec: the drift
// detector over its progressive loss stream, what it does on a drift (the
// drift policy), and the guardrail that refuses updates which make the model
// worse on its validation (holdout) set. model_adaptation.h does the work.
//
// Every default is written beside its field. Validation returns
// INVALID_ARGUMENT with the field's path ("spec.drift.boost_factor: ...").
//
// Thread safety: plain values.
#ifndef LEPTON_CORE_LEARNING_ADAPTATION_CONFIG_H_
#define LEPTON_CORE_LEARNING_ADAPTATION_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/learning/drift_detector_config.h"

namespace lepton {

// What a model does when its detector flags a drift (an increase of its
// progressive loss). Every policy reports the drift (GetModel, WatchModel).
enum class DriftPolicy {
  kUnspecified = 0,
  kAlert = 1,  // report only
  // Multiply the learning rate by boost_factor for the next boost_examples
  // examples (from the update after the one that saw the drift).
  kBoost = 2,
  // Train a fresh model of the same spec in shadow on the stream from the
  // change point on; promote it (its weights become the next version) once
  // its progressive loss beats the current model's over the last
  // challenger_window examples both scored; drop it if it has not after
  // challenger_max_examples.
  kChallenger = 3,
};

struct DriftConfig {
  DriftDetectorConfig detector;  // kind kNone turns detection off
  DriftPolicy policy = DriftPolicy::kChallenger;
  float boost_factor = 4.0f;                 // BOOST: in [1, 1000]
  int64_t boost_examples = 20000;            // BOOST: >= 1
  int32_t challenger_window = 1000;          // CHALLENGER: [10, 1000000]
  int64_t challenger_max_examples = 100000;  // CHALLENGER: >= window
};

enum class GuardrailPolicy {
  kOff = 0,  // holdout examples are kept and scored, updates never refused
  // Refuse (FAILED_PRECONDITION, nothing applied) an update that raises the
  // validation loss above (1 + tolerance) times its value before the update.
  kReject = 1,
  // Hold such an update back instead (accepted, logged, not learned) and
  // check it a second time once recheck_holdout newer holdout examples have
  // arrived: it is learned then if it passes the same test on the refreshed
  // validation set, and dropped if it fails again. An update that is right
  // about a changed distribution passes once the holdout set shows the
  // change; a poisoned one keeps failing (adaptation/guarded_learner.h).
  kQuarantine = 2,
};

struct GuardrailConfig {
  GuardrailPolicy policy = GuardrailPolicy::kOff;
  // Holdout examples kept (the newest), in [0, 1000000]; 0 refuses them.
  int32_t holdout_capacity = 10000;
  // Relative increase of the validation loss tolerated, >= 0.
  float tolerance = 0.02f;
  // The check runs only once the holdout set has this many examples, >= 1.
  int32_t min_holdout = 50;
  // QUARANTINE: updates held back at once, in [1, 1000]; a new one beyond it
  // drops the oldest unchecked.
  int32_t quarantine_capacity = 8;
  // QUARANTINE: holdout examples that must arrive after an update was held
  // back before its second check, in [1, 1000000].
  int32_t recheck_holdout = 50;
};

absl::Status ValidateDriftConfig(const DriftConfig& config);
absl::Status ValidateGuardrailConfig(const GuardrailConfig& config);

absl::string_view DriftPolicyName(DriftPolicy policy);
absl::string_view GuardrailPolicyName(GuardrailPolicy policy);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_ADAPTATION_CONFIG_H_
