// The versions a model writes as checkpoints: Rollback and AddClasses
// (versions with no log record: the checkpoint is their record), periodic
// checkpoints, and the state of any version for export.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/learning/added_classes.h"
#include "core/store/model.h"
#include "core/store/model_errors.h"
#include "core/util/status_macros.h"

namespace lepton {
absl::StatusOr<ModelState> Model::State(uint64_t version) const {
  absl::StatusOr<std::shared_ptr<const PublishedVersion>> retained =
      retained_.Get(version);
  if (retained.ok()) {
    std::vector<RecentUpdate> recent;
    {
      MutexLock lock(&update_mu_);
      recent = update_ids_.UpTo((*retained)->version());
    }
    // The version is immutable: copied outside the update lock (an update
    // waits only while a large model's optimizer state is copied, which
    // comes from the learner's working copy: versioned_params.h).
    ModelState state = (*retained)->State(name_, created_);
    state.recent_updates = std::move(recent);
    return state;
  }
  if (files_ != nullptr) {
    absl::StatusOr<ModelState> checkpointed = files_->ReadCheckpoint(version);
    if (checkpointed.ok() || !absl::IsNotFound(checkpointed.status())) {
      return checkpointed;
    }
  }
  const ModelInfo info = Info();
  return absl::NotFoundError(absl::StrCat(
      "version ", version, " of model \"", name_,
      "\" is not kept; retained versions: ",
      absl::StrJoin(info.retained_versions, ", "), "; checkpointed versions: ",
      info.checkpointed_versions.empty()
          ? "none"
          : absl::StrJoin(info.checkpointed_versions, ", ")));
}

absl::StatusOr<ModelInfo> Model::Rollback(uint64_t version) {
  if (version == 0) {
    return absl::InvalidArgumentError("version: must be > 0");
  }
  LEPTON_ASSIGN_OR_RETURN(ModelState target, State(version));
  // Callers of updates this rollback makes durable (or fails) are answered
  // after the locks are released: their callbacks may call the model.
  CommitQueue::Batch answered;
  absl::Status sync_error;
  ModelEvent rollback_event;
  using Published = std::shared_ptr<const PublishedVersion>;
  absl::StatusOr<Published> result = [&]() -> absl::StatusOr<Published> {
    MutexLock checkpoint_lock(&checkpoint_mu_);
    MutexLock lock(&update_mu_);
    if (retired_) {
      return absl::NotFoundError(
          absl::StrCat("model \"", name_, "\" not found"));
    }
    if (target.spec.num_classes != spec_->num_classes) {
      // Its weights have another shape; and a class, once added, may have
      // labels in flight (delayed ones) that would turn invalid.
      return absl::FailedPreconditionError(absl::StrCat(
          "version: version ", version, " has ", target.spec.num_classes,
          " classes, the model has ", spec_->num_classes,
          " (classes were added since): a rollback cannot remove classes"));
    }
    if (files_ != nullptr) {
      LEPTON_RETURN_IF_ERROR(SyncBeforeCheckpointedVersionLocked(
          "the rollback", &answered, &sync_error));
    }
    learner_.Load(target.params);
    // The adaptation state (detector, challenger, holdout set) carries on;
    // only the validation scores follow the weights.
    ValidateLocked();
    const ModelCounters counters = target.counters;
    const uint64_t new_version = head_->version() + 1;
    if (files_ != nullptr) {
      // Checkpointed before it is published: the log has no record of a
      // rollback, the checkpoint is its record.
      ModelState state = std::move(target);
      state.name = name_;
      state.created = created_;
      state.version = new_version;
      state.published = absl::Now();
      state.recent_updates = update_ids_.UpTo(new_version);
      state.adaptation = CaptureAdaptation(head_->adaptation());
      state.adaptation.counters.validation_loss = adaptation_.validation_loss();
      state.adaptation.counters.validation_accuracy =
          adaptation_.validation_accuracy();
      if (absl::Status s =
              WriteCheckpointedVersionLocked("the rollback", state);
          !s.ok()) {
        UndoLocked();
        return s;
      }
    }
    rollback_event.example = counters.examples_seen;
    rollback_event.detail = absl::StrCat("rolled back to version ", version);
    Published published = CommitLocked(counters);
    retained_.Publish(published);
    return published;
  }();
  FinishSync(std::move(answered), sync_error);
  if (!result.ok()) return result.status();
  Emit({std::move(rollback_event)}, (*result)->version());
  return Info(**result);
}

absl::Status Model::SyncBeforeCheckpointedVersionLocked(
    absl::string_view what, CommitQueue::Batch* answered,
    absl::Status* sync_error) {
  if (!files_->journal().status().ok()) {
    return LogBroken(name_, what, files_->journal().status());
  }
  absl::StatusOr<uint64_t> durable = files_->journal().Sync();
  if (!durable.ok()) {
    *sync_error = durable.status();
    return NotApplied(name_, what, durable.status());
  }
  *answered = pending_.TakeDurable(*durable);
  return absl::OkStatus();
}

absl::Status Model::WriteCheckpointedVersionLocked(absl::string_view what,
                                                   const ModelState& state) {
  if (absl::Status s = files_->WriteCheckpoint(state); !s.ok()) {
    if (absl::IsDataLoss(s)) files_->journal().Fail(s);
    return NotApplied(name_, what, s);
  }
  last_checkpoint_ = state.version;
  last_checkpoint_time_ = absl::Now();
  // The version is durable now. Later records go to a segment of their own,
  // after it; if that cannot be started, no later record may be written, or
  // a restart would apply it on top of the wrong state.
  if (absl::Status s = files_->journal().Rotate(state.version + 1); !s.ok()) {
    files_->journal().Fail(s);
  }
  // Old files left by a failure here are removed by the next checkpoint.
  files_->RemoveObsolete().IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<ModelInfo> Model::AddClasses(int32_t num_classes) {
  // As in Rollback: the callers of the updates it makes durable are answered
  // once the locks are released.
  CommitQueue::Batch answered;
  absl::Status sync_error;
  std::vector<ModelEvent> events;
  bool grown = false;
  using Published = std::shared_ptr<const PublishedVersion>;
  absl::StatusOr<Published> result = [&]() -> absl::StatusOr<Published> {
    MutexLock checkpoint_lock(&checkpoint_mu_);
    MutexLock lock(&update_mu_);
    if (retired_) {
      return absl::NotFoundError(
          absl::StrCat("model \"", name_, "\" not found"));
    }
    const ModelSpec& spec = *spec_;
    LEPTON_RETURN_IF_ERROR(CheckAddClasses(spec, num_classes, name_));
    const int32_t k = spec.num_classes;
    // Already that many: a retry of a call that succeeded. (head_ may be
    // ahead of the newest published version, waiting for its fsync.)
    if (num_classes == k) return retained_.Latest();
    auto grown_spec = std::make_shared<ModelSpec>(spec);
    grown_spec->num_classes = num_classes;
    LEPTON_RETURN_IF_ERROR(ValidateModelSpec(*grown_spec));
    if (files_ != nullptr) {
      LEPTON_RETURN_IF_ERROR(SyncBeforeCheckpointedVersionLocked(
          "adding classes", &answered, &sync_error));
    }
    Learner learner = GrowClasses(learner_, *grown_spec);
    // The holdout set, scored by the grown weights (the new classes' logits
    // of 0 change the old classes' probabilities through the normalization).
    const HoldoutSet& validation = *adaptation_.holdout();
    BatchMetrics scored;
    if (validation.size() > 0) scored = learner.Evaluate(validation.Views());
    const double validation_loss = validation.size() > 0
                                       ? scored.mean_loss()
                                       : adaptation_.validation_loss();
    const double validation_accuracy = validation.size() > 0
                                           ? scored.accuracy()
                                           : adaptation_.validation_accuracy();
    const ModelCounters counters = head_->counters();
    const uint64_t new_version = head_->version() + 1;
    if (files_ != nullptr) {
      // Checkpointed before anything changes or is published: the log has
      // no record of added classes, the checkpoint is their record.
      ModelState state;
      state.name = name_;
      state.spec = *grown_spec;
      state.version = new_version;
      state.counters = counters;
      state.created = created_;
      state.published = absl::Now();
      state.params = learner.params();
      state.recent_updates = update_ids_.UpTo(new_version);
      // What ClassesAdded below leaves (see ClassesAddedState).
      AdaptationState& a = state.adaptation;
      a = ClassesAddedState(CaptureAdaptation(head_->adaptation()),
                            grown_spec->num_outputs());
      a.counters.validation_loss = validation_loss;
      a.counters.validation_accuracy = validation_accuracy;
      LEPTON_RETURN_IF_ERROR(
          WriteCheckpointedVersionLocked("adding classes", state));
    }
    // Nothing can fail from here on.
    spec_ = grown_spec;
    learner_ = std::move(learner);
    adaptation_.ClassesAdded(spec_, counters.examples_seen, &events);
    if (validation.size() > 0) {
      adaptation_.SetValidation(validation_loss, validation_accuracy);
    }
    ModelEvent added;
    added.kind = ModelEvent::Kind::kClassesAdded;
    added.example = counters.examples_seen;
    added.detail = absl::StrCat("num_classes ", k, " -> ", num_classes);
    events.push_back(std::move(added));
    Published published = CommitLocked(counters);
    retained_.Publish(published);
    grown = true;
    return published;
  }();
  FinishSync(std::move(answered), sync_error);
  if (!result.ok()) return result.status();
  if (grown) Emit(std::move(events), (*result)->version());
  return Info(**result);
}

absl::Status Model::Checkpoint(bool force) {
  if (files_ == nullptr) return absl::OkStatus();
  MutexLock checkpoint_lock(&checkpoint_mu_);
  std::shared_ptr<const PublishedVersion> version;
  std::vector<RecentUpdate> recent;
  {
    MutexLock lock(&update_mu_);
    if (retired_) return absl::OkStatus();
    version = retained_.Latest();
    if (version->version() == last_checkpoint_) return absl::OkStatus();
    const ModelFiles::Options& o = *options_.files;
    const bool due =
        version->version() - last_checkpoint_ >=
            static_cast<uint64_t>(
                std::max<int64_t>(1, o.checkpoint_every_updates)) ||
        absl::Now() - last_checkpoint_time_ >= o.checkpoint_interval ||
        files_->journal().appended() - logged_at_checkpoint_ >=
            static_cast<uint64_t>(std::max<int64_t>(1, o.checkpoint_log_bytes));
    if (!force && !due) return absl::OkStatus();
    // Later records go to a new segment, so that the segments before it,
    // covered by this checkpoint, can be removed once it is written.
    LEPTON_RETURN_IF_ERROR(files_->journal().Rotate(head_->version() + 1));
    logged_at_checkpoint_ = files_->journal().appended();
    recent = update_ids_.UpTo(version->version());
  }
  // The version is immutable: copied and written outside the update lock
  // (an update waits only while a large model's optimizer state is copied:
  // versioned_params.h).
  ModelState state = version->State(name_, created_);
  state.recent_updates = std::move(recent);
  LEPTON_RETURN_IF_ERROR(files_->WriteCheckpoint(state));
  {
    MutexLock lock(&update_mu_);
    last_checkpoint_ = std::max(last_checkpoint_, version->version());
    last_checkpoint_time_ = absl::Now();
  }
  return files_->RemoveObsolete();
}

}  // namespace lepton
