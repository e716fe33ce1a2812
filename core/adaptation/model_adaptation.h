// ModelAdaptation: what a model runs beside its learner (adaptation_config.h):
// the drift detector over its progressive loss stream, the drift policy
// (ALERT, BOOST, CHALLENGER with a shadow learner), and the validation set of
// holdout examples the guardrail scores updates on.
//
// State and versions: the working state is mutable and belongs to the model's
// update lock, like the Learner. Each version the model builds carries an
// immutable AdaptationSnapshot of it (Commit), so that a checkpoint or export
// of any version is complete and a restart continues exactly where the
// version left off: everything here is a deterministic function of the
// updates applied, in order (no clocks, no threads), so replaying the log
// reproduces it bit for bit. AdaptationState is the plain-value form the
// model-state format encodes.
//
// Thread safety: ModelAdaptation none (the model's update lock);
// AdaptationSnapshot and HoldoutSet are immutable once shared.
#ifndef LEPTON_CORE_ADAPTATION_MODEL_ADAPTATION_H_
#define LEPTON_CORE_ADAPTATION_MODEL_ADAPTATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/adaptation/adaptation_counters.h"
#include "core/adaptation/drift_detector.h"
#include "core/adaptation/model_events.h"
#include "core/learning/adaptation_config.h"
#include "core/learning/example.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/learning/update_types.h"

namespace lepton {

// The newest holdout examples of a model, at most its holdout_capacity.
// Immutable: adding makes a new set that shares the old one's batches.
class HoldoutSet {
 public:
  int64_t size() const { return size_; }
  // Bytes of the examples it holds (whole batches: a batch stays until its
  // last example is dropped).
  int64_t bytes() const { return bytes_; }
  // This set plus `added` (labels and weights validated), the oldest beyond
  // `capacity` dropped.
  std::shared_ptr<const HoldoutSet> With(absl::Span<const ExampleView> added,
                                         int64_t capacity) const;
  // Views of every example, oldest first; valid while this set lives.
  std::vector<ExampleView> Views() const;

 private:
  struct Batch {
    std::shared_ptr<const std::vector<Example>> examples;
    int64_t bytes = 0;
  };
  std::vector<Batch> batches_;
  size_t skip_ = 0;  // leading examples of batches_[0] already dropped
  int64_t size_ = 0;
  int64_t bytes_ = 0;
};

// An update the QUARANTINE guardrail held back: its trained examples (owned,
// with their served outputs), its options, and when it was held.
struct QuarantinedUpdate {
  uint64_t version = 0;       // the version that accepted it
  uint64_t holdout_mark = 0;  // holdout_added() when it was held back
  UpdateOptions options;
  std::vector<Example> examples;
};

// The held-back updates, oldest first. Immutable once shared: a version's
// snapshot shares the entries with the working state.
using QuarantineList = std::vector<std::shared_ptr<const QuarantinedUpdate>>;

// The shadow model of the CHALLENGER policy, as of one version.
struct ChallengerSnapshot {
  // Its weights and optimizer state (committed by a learner of its own);
  // params->counters().steps is its optimizer step count.
  std::shared_ptr<const ModelVersion> params;
  ChallengerStats stats;
};

struct AdaptationSnapshot {
  std::shared_ptr<const DriftDetector> detector;  // null: detection off
  AdaptationCounters counters;
  std::shared_ptr<const ChallengerSnapshot> challenger;  // null: none
  std::shared_ptr<const HoldoutSet> holdout;             // never null
  QuarantineList quarantine;
};

// The plain-value form of an AdaptationSnapshot (model_state.h encodes it).
struct AdaptationState {
  std::string detector;  // DriftDetector::Encode(); empty = none
  AdaptationCounters counters;
  bool has_challenger = false;
  std::vector<float> challenger_params;  // ModelState::params layout
  uint64_t challenger_steps = 0;
  ChallengerStats challenger;
  std::vector<Example> holdout;  // oldest first
  // Since model-state format 3 (absent before: empty, and
  // counters.holdout_added and the quarantine counters zero).
  std::vector<QuarantinedUpdate> quarantine;  // oldest first
};

// Appends the encoding of `state` (little-endian, see model_state.h).
void EncodeAdaptationState(const AdaptationState& state, std::string* out);
// The inverse, checked against `spec` (INVALID_ARGUMENT naming what is
// wrong). `bytes` must be exactly one encoding.
absl::StatusOr<AdaptationState> DecodeAdaptationState(const ModelSpec& spec,
                                                      absl::string_view bytes);
AdaptationState CaptureAdaptation(const AdaptationSnapshot& snapshot);
// `state` as ModelAdaptation::ClassesAdded leaves it for a model grown to
// `num_outputs` classes: no challenger, and the served outputs of held
// (QUARANTINE) examples padded (PadServedOutputs); the rest as it was.
AdaptationState ClassesAddedState(AdaptationState state, int32_t num_outputs);

class ModelAdaptation {
 public:
  // A fresh state (no drift seen, empty holdout set) for `spec`.
  explicit ModelAdaptation(std::shared_ptr<const ModelSpec> spec);
  // Replaces the state with `state` (decoded against the same spec).
  absl::Status Load(const AdaptationState& state);
  // Back to `snapshot` (one this object committed): undoes everything since.
  void Reset(const AdaptationSnapshot& snapshot);
  // The immutable state for `version`, built from the working state.
  std::shared_ptr<const AdaptationSnapshot> Commit(uint64_t version);

  // The factor on the learning rate of the next update (BOOST), >= 1.
  float learning_rate_scale() const;

  // After the model learned `trained` (in order, the update's examples
  // without the holdout ones) and scored them with `losses` (progressive, one
  // per example): feeds the detector, applies the policy and trains the
  // challenger. `examples_before` is the model's example count before them.
  // Appends what happened to *events.
  void Observe(absl::Span<const ExampleView> trained,
               absl::Span<const float> losses, uint64_t examples_before,
               int32_t epochs, float learning_rate,
               std::vector<ModelEvent>* events);
  // True once Observe found the challenger better: the model then loads
  // challenger_params() and calls Promoted().
  bool promotion_due() const { return promotion_due_; }
  std::vector<float> challenger_params() const;
  void Promoted();

  const std::shared_ptr<const HoldoutSet>& holdout() const { return holdout_; }
  void AddHoldout(absl::Span<const ExampleView> examples);
  double validation_loss() const { return counters_.validation_loss; }
  double validation_accuracy() const { return counters_.validation_accuracy; }
  void SetValidation(double loss, double accuracy);

  // QUARANTINE (adaptation_config.h); the model makes the decisions.
  uint64_t holdout_added() const { return counters_.holdout_added; }
  const QuarantineList& quarantine() const { return quarantine_; }
  // Holds `examples` (an update's trained ones) back; beyond the spec's
  // quarantine_capacity the oldest held update is dropped (an event).
  void Quarantine(uint64_t version, absl::Span<const ExampleView> examples,
                  const UpdateOptions& options, uint64_t example_count,
                  std::vector<ModelEvent>* events);
  // Removes the held updates at the indexes (into quarantine(), ascending)
  // `released` (learned after their second check) and `dropped` (failed it).
  void EndQuarantine(absl::Span<const size_t> released,
                     absl::Span<const size_t> dropped);
  // The model grew to spec->num_classes classes (Model::AddClasses; the rest
  // of `spec` is as before). A challenger in progress learned the old
  // classes: it is dropped (a CHALLENGER_DROPPED event at example count
  // `at`) rather than grown; later ones learn the new classes. The detector,
  // boost and holdout set carry on (holdout labels stay valid); the served
  // outputs of held (QUARANTINE) examples are padded like those of cached
  // predictions (PadServedOutputs).
  void ClassesAdded(std::shared_ptr<const ModelSpec> spec, uint64_t at,
                    std::vector<ModelEvent>* events);

 private:
  // A fresh challenger that starts at the model's example count `at`.
  void StartChallenger(uint64_t at);
  void DropChallenger() { challenger_.reset(); }
  // Trains the challenger on `examples` (scored before by the model with
  // `losses`) and updates the windows. False if it diverged.
  bool TrainChallenger(absl::Span<const ExampleView> examples,
                       absl::Span<const float> losses, int32_t epochs,
                       float learning_rate);

  struct Challenger {
    std::unique_ptr<Learner> learner;
    std::shared_ptr<const ModelVersion> published;  // as of the last Commit
    uint64_t steps = 0;
    ChallengerStats stats;
  };

  std::shared_ptr<const ModelSpec> spec_;  // replaced by ClassesAdded
  std::unique_ptr<DriftDetector> detector_;
  AdaptationCounters counters_;
  std::unique_ptr<Challenger> challenger_;
  bool promotion_due_ = false;
  std::shared_ptr<const HoldoutSet> holdout_;
  QuarantineList quarantine_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_ADAPTATION_MODEL_ADAPTATION_H_
