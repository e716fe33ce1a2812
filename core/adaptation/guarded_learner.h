// GuardedLearner: learns one update of a model under its adaptation policy
// (adaptation_config.h). The update's holdout examples join the validation
// set and the rest are learned; the guardrail refuses (REJECT) or holds
// back (QUARANTINE) an update that makes the validation loss worse, and
// gives held updates their second check; the drift detector, the drift
// policy and the challenger see what was learned, in order.
//
//   GuardedLearner g(spec, &learner, &adaptation, head, head_adaptation);
//   absl::Status s = g.Learn(examples, options, &counters, &result, &events);
//   // OK: commit the learner's and the adaptation's changes as version
//   // head.version() + 1. Otherwise: undo them (back to `head`).
//
// Determinism: every decision depends only on the state and the examples,
// so a replay of the update log makes the same ones.
//
// Ownership and thread safety: borrows everything it is given, for one
// update, under the owning model's update lock.
#ifndef LEPTON_CORE_ADAPTATION_GUARDED_LEARNER_H_
#define LEPTON_CORE_ADAPTATION_GUARDED_LEARNER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/adaptation/model_adaptation.h"
#include "core/adaptation/model_events.h"
#include "core/learning/example.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/learning/update_types.h"

namespace lepton {

class GuardedLearner {
 public:
  // `head`: the newest version built, whose weights `learner` holds;
  // `head_adaptation`: the adaptation state `adaptation` committed for it.
  GuardedLearner(const ModelSpec& spec, Learner* learner,
                 ModelAdaptation* adaptation, const ModelVersion& head,
                 const AdaptationSnapshot& head_adaptation)
      : spec_(spec),
        learner_(learner),
        adaptation_(adaptation),
        head_(head),
        head_adaptation_(head_adaptation) {}

  // Applies one validated update to the learner and the adaptation state
  // only: *counters and *result describe the version it will become; what
  // the adaptation did is appended to *events. INVALID_ARGUMENT (a weight
  // would turn non-finite; holdout examples for a model that keeps none)
  // and FAILED_PRECONDITION (the REJECT guardrail refused it): nothing
  // changed (the learner and the adaptation state are back at `head`).
  absl::Status Learn(absl::Span<const ExampleView> examples,
                     const UpdateOptions& options, ModelCounters* counters,
                     UpdateResult* result, std::vector<ModelEvent>* events);
  // Scores the holdout set with the learner's weights into the adaptation
  // state (when there is a holdout set).
  void ScoreHoldout();

 private:
  // An update held back by QUARANTINE that passed its second check and was
  // learned again.
  struct Released {
    std::shared_ptr<const QuarantinedUpdate> update;  // owns what views see
    std::vector<ExampleView> views;
    float learning_rate = 0;  // its base rate (before BOOST's factor)
    BatchMetrics metrics;
    std::vector<float> losses;
  };
  // QUARANTINE: gives every held update whose recheck_holdout newer holdout
  // examples have arrived its second check, oldest first, on top of the
  // learner's weights (head plus those released before it): each is learned
  // and kept if the validation loss, `*validation_loss` before it, rises by
  // no more than the tolerance, and taken back otherwise. Fills *released,
  // counts the dropped ones in *dropped, takes both out of the quarantine
  // and updates counters->steps and *validation_loss.
  void RecheckQuarantine(float rate_scale, ModelCounters* counters,
                         double* validation_loss,
                         std::vector<Released>* released, int32_t* dropped,
                         std::vector<ModelEvent>* events);
  // Back to head's weights, then learns `released` again (a deterministic
  // repeat of what they did).
  void Relearn(absl::Span<const Released> released, float rate_scale,
               ModelCounters* counters);
  // Back to `head`: the learner's weights and the adaptation state.
  void Undo();

  const ModelSpec& spec_;
  Learner* const learner_;
  ModelAdaptation* const adaptation_;
  const ModelVersion& head_;
  const AdaptationSnapshot& head_adaptation_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_ADAPTATION_GUARDED_LEARNER_H_
