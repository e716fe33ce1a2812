#include "core/adaptation/guarded_learner.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lepton {
namespace {

UpdateResult ResultOf(const ModelSpec& spec, uint64_t version, size_t examples,
                      const BatchMetrics& metrics) {
  UpdateResult result;
  result.version = version;
  result.examples = static_cast<int64_t>(examples);
  result.loss_before = metrics.mean_loss();
  if (spec.is_classifier()) result.accuracy_before = metrics.accuracy();
  return result;
}

}  // namespace

absl::Status GuardedLearner::Learn(absl::Span<const ExampleView> examples,
                                   const UpdateOptions& options,
                                   ModelCounters* counters,
                                   UpdateResult* result,
                                   std::vector<ModelEvent>* events) {
  *counters = head_.counters();
  // Holdout examples join the validation set; the others are learned.
  absl::Span<const ExampleView> trained = examples;
  std::vector<ExampleView> trained_split, holdout;
  if (std::any_of(examples.begin(), examples.end(),
                  [](const ExampleView& e) { return e.holdout; })) {
    if (spec_.guardrail.holdout_capacity == 0) {
      return absl::InvalidArgumentError(
          "examples: holdout examples sent to a model that keeps none "
          "(spec.guardrail.holdout_capacity is 0)");
    }
    for (const ExampleView& e : examples) {
      (e.holdout ? holdout : trained_split).push_back(e);
    }
    trained = trained_split;
  }
  const GuardrailConfig& guardrail = spec_.guardrail;
  const bool quarantine = guardrail.policy == GuardrailPolicy::kQuarantine;
  const float rate_scale = adaptation_->learning_rate_scale();
  std::vector<Released> released;
  int32_t dropped = 0;
  if (quarantine) {
    // The update's holdout examples join the validation set first, so that
    // the checks below see the freshest validation data: that is what can
    // clear an update held back before.
    if (!holdout.empty()) {
      adaptation_->AddHoldout(holdout);
      ScoreHoldout();
    }
  }
  double validation_loss = adaptation_->validation_loss();
  if (quarantine) {
    RecheckQuarantine(rate_scale, counters, &validation_loss, &released,
                      &dropped, events);
  }
  const float learning_rate =
      options.learning_rate.value_or(spec_.optimizer.learning_rate);
  BatchMetrics metrics;
  std::vector<float> losses;
  if (!trained.empty()) {
    if (!learner_->Learn(trained, options.epochs, learning_rate * rate_scale,
                         &counters->steps, &metrics)) {
      Undo();
      return absl::InvalidArgumentError(
          "examples: this update would make a weight non-finite (overflow), "
          "so none of it was applied; scale the features down or lower the "
          "learning rate");
    }
    const absl::Span<const float> l = learner_->example_losses();
    losses.assign(l.begin(), l.end());
  }
  bool held_back = false;
  const std::shared_ptr<const HoldoutSet> validation = adaptation_->holdout();
  if (guardrail.policy != GuardrailPolicy::kOff && !trained.empty() &&
      validation->size() >= guardrail.min_holdout) {
    const double after = learner_->Evaluate(validation->Views()).mean_loss();
    if (after > validation_loss * (1.0 + guardrail.tolerance)) {
      const std::string losses_text = absl::StrFormat(
          "this update would raise the validation loss on %d holdout "
          "examples from %.6g to %.6g (more than the tolerated %.4g%%)",
          validation->size(), validation_loss, after,
          100.0 * guardrail.tolerance);
      if (!quarantine) {
        learner_->Restore();
        return absl::FailedPreconditionError(absl::StrCat(
            "guardrail: ", losses_text, ", so none of it was applied"));
      }
      Relearn(released, rate_scale, counters);
      held_back = true;
      ModelEvent held;
      held.kind = ModelEvent::Kind::kUpdateQuarantined;
      held.example = counters->examples_seen;
      held.detail = absl::StrCat(losses_text, ": held back until ",
                                 guardrail.recheck_holdout,
                                 " newer holdout examples have arrived");
      events->push_back(std::move(held));
      adaptation_->Quarantine(head_.version() + 1, trained, options,
                              counters->examples_seen, events);
    }
  }
  // The drift detector and policy see what was learned, in order: the
  // released updates, then this one's examples.
  for (const Released& r : released) {
    adaptation_->Observe(r.views, r.losses, counters->examples_seen,
                         r.update->options.epochs, r.learning_rate, events);
    counters->examples_seen += r.views.size();
    counters->weight_seen += r.metrics.weight;
    counters->loss_sum += r.metrics.loss_sum;
    counters->correct_weight += r.metrics.correct_weight;
  }
  if (!held_back) {
    adaptation_->Observe(trained, losses, counters->examples_seen,
                         options.epochs, learning_rate, events);
    counters->examples_seen += trained.size();
    counters->weight_seen += metrics.weight;
    counters->loss_sum += metrics.loss_sum;
    counters->correct_weight += metrics.correct_weight;
  }
  if (adaptation_->promotion_due()) {
    learner_->Load(adaptation_->challenger_params());
    adaptation_->Promoted();
  }
  if (!quarantine) adaptation_->AddHoldout(holdout);
  if (!trained.empty() || !holdout.empty() || !released.empty()) {
    ScoreHoldout();
  }
  counters->updates += 1;
  *result = ResultOf(spec_, head_.version() + 1, examples.size(), metrics);
  result->quarantined = held_back;
  result->quarantine_released = static_cast<int32_t>(released.size());
  result->quarantine_dropped = dropped;
  return absl::OkStatus();
}

void GuardedLearner::RecheckQuarantine(float rate_scale,
                                       ModelCounters* counters,
                                       double* validation_loss,
                                       std::vector<Released>* released,
                                       int32_t* dropped,
                                       std::vector<ModelEvent>* events) {
  const GuardrailConfig& guardrail = spec_.guardrail;
  const std::shared_ptr<const HoldoutSet> validation = adaptation_->holdout();
  if (validation->size() < guardrail.min_holdout) return;
  const QuarantineList held = adaptation_->quarantine();
  std::vector<size_t> released_at, dropped_at;
  for (size_t i = 0; i < held.size(); ++i) {
    const QuarantinedUpdate& q = *held[i];
    if (adaptation_->holdout_added() - q.holdout_mark <
        static_cast<uint64_t>(guardrail.recheck_holdout)) {
      continue;
    }
    Released r;
    r.update = held[i];
    r.views = Views(q.examples);
    r.learning_rate =
        q.options.learning_rate.value_or(spec_.optimizer.learning_rate);
    const bool finite =
        learner_->Learn(r.views, q.options.epochs, r.learning_rate * rate_scale,
                        &counters->steps, &r.metrics);
    if (finite) {
      // Before Evaluate, which scores into the same buffer.
      const absl::Span<const float> l = learner_->example_losses();
      r.losses.assign(l.begin(), l.end());
    }
    const double after =
        finite ? learner_->Evaluate(validation->Views()).mean_loss() : 0;
    ModelEvent checked;
    checked.example = counters->examples_seen;
    if (finite && after <= *validation_loss * (1.0 + guardrail.tolerance)) {
      checked.kind = ModelEvent::Kind::kQuarantineReleased;
      checked.detail = absl::StrFormat(
          "the update of version %d passed its second check: validation loss "
          "%.6g before it, %.6g after, on %d holdout examples",
          q.version, *validation_loss, after, validation->size());
      *validation_loss = after;
      released->push_back(std::move(r));
      released_at.push_back(i);
    } else {
      Relearn(*released, rate_scale, counters);
      checked.kind = ModelEvent::Kind::kQuarantineDropped;
      checked.detail =
          finite ? absl::StrFormat(
                       "the update of version %d failed its second check: "
                       "validation loss %.6g before it, %.6g after, on %d "
                       "holdout examples",
                       q.version, *validation_loss, after, validation->size())
                 : absl::StrCat("the update of version ", q.version,
                                " would now make a weight non-finite");
      dropped_at.push_back(i);
    }
    events->push_back(std::move(checked));
  }
  adaptation_->EndQuarantine(released_at, dropped_at);
  *dropped = static_cast<int32_t>(dropped_at.size());
}

void GuardedLearner::Relearn(absl::Span<const Released> released,
                             float rate_scale, ModelCounters* counters) {
  learner_->Restore();
  counters->steps = head_.counters().steps;
  for (const Released& r : released) {
    BatchMetrics again;
    // Learned once already from the same weights: it cannot overflow now.
    learner_->Learn(r.views, r.update->options.epochs,
                    r.learning_rate * rate_scale, &counters->steps, &again);
  }
}

void GuardedLearner::ScoreHoldout() {
  const HoldoutSet& validation = *adaptation_->holdout();
  if (validation.size() == 0) return;
  const BatchMetrics m = learner_->Evaluate(validation.Views());
  adaptation_->SetValidation(m.mean_loss(),
                             spec_.is_classifier() ? m.accuracy() : 0);
}

void GuardedLearner::Undo() {
  learner_->Restore();
  adaptation_->Reset(head_adaptation_);
}

}  // namespace lepton
