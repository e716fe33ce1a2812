// Model: one named, learning model: its spec, its writer (Learner), the
// window of its most recent published versions and, for a durable store, its
// update log and checkpoints (model_files.h).
//
// Concurrency design:
// - update_mu_ serializes the changes of this model (and only this model):
//   updates, rollbacks, added classes, checkpoint starts. It guards the
//   Learner, the one mutable copy of the parameters, head_, the newest
//   version built, and the spec and learner that AddClasses replaces. An
//   update is validated before the lock is taken, applied to the Learner
//   under it, logged, and published as a new immutable ModelVersion, or
//   undone whole.
// - The commit queue (commit_queue.h) holds the versions built and logged
//   but not yet durable (--fsync=always): they are published, in version
//   order, once an fsync covers them (usually by the log syncer's thread; by
//   a rollback, which syncs first), and only then answered. An update writes
//   its record under update_mu_ but never waits for an fsync there, so the
//   next update learns while the previous one's record is being synced
//   (group commit). Callbacks are never run with a lock of the model held.
// - The retained versions (retained_versions.h) are behind a lock held just
//   long enough to copy or swap a std::shared_ptr, and a version's
//   parameters are read without a lock (versioned_params.h), so a reader
//   (Predict, Get) never waits for an update in progress.
// - checkpoint_mu_ serializes checkpoint and rollback writes (file I/O done
//   without update_mu_, for checkpoints).
// - The adaptation state (drift detector, policy, challenger, holdout set;
//   model_adaptation.h) is changed with the learner under update_mu_ and
//   undone with it; each version carries an immutable snapshot of it, so a
//   checkpoint of any version is complete.
// - Events (model_events.h) are sent to watchers after every lock of the
//   model is released.
// - Lock order: checkpoint_mu_, update_mu_, the commit queue's, the
//   retained versions'.
//
// Versions: a new model is version 1 (all weights zero). Each applied update,
// rollback or AddClasses publishes version + 1; a rejected one publishes
// nothing. A version number, once answered, always means the same weights,
// across restarts too, with --fsync=always (with interval or never, a
// machine crash can lose answered versions, and their numbers are then given
// again). The newest `retained_versions` stay available to pin; with
// storage, the checkpointed ones can be rolled back to as well.
//
// Classes: a softmax model's num_classes grows by AddClasses (never shrinks).
// Each version keeps the spec it was built with, so a retained older version
// still predicts its own number of classes.
//
// Guardrail (adaptation_config.h): under REJECT an update that raises the
// validation loss too much is refused (FAILED_PRECONDITION, no version).
// Under QUARANTINE it is accepted and held back instead: it publishes a
// version with the previous weights, and its examples are learned only if a
// second check, once newer holdout examples have arrived, passes
// (guarded_learner.h). The held updates are part of the adaptation state, so
// a replay of the log makes the same decisions.
#ifndef LEPTON_CORE_STORE_MODEL_H_
#define LEPTON_CORE_STORE_MODEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/adaptation/model_adaptation.h"
#include "core/adaptation/model_events.h"
#include "core/learning/example.h"
#include "core/learning/feature_hashing.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/learning/update_types.h"
#include "core/storage/log_syncer.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/store/commit_queue.h"
#include "core/store/prediction_cache.h"
#include "core/store/published_version.h"
#include "core/store/retained_versions.h"
#include "core/store/store_types.h"
#include "core/store/update_id_window.h"
#include "core/util/mutex.h"

namespace lepton {

// How a model remembers and persists; shared by the models of one store.
struct ModelOptions {
  int32_t retained_versions = 8;  // >= 1
  // Update ids remembered for idempotent retries (the newest ones).
  int32_t remembered_update_ids = 10000;
  // Storage; null = memory only. Owned by the store.
  const ModelFiles::Options* files = nullptr;
  // Where --fsync=always and interval syncs run; null with storage = never.
  LogSyncer* syncer = nullptr;
  // Bounds of each model's cache of remembered predictions (delayed labels).
  PredictionCache::Options prediction_cache = {};
};

class Model : public std::enable_shared_from_this<Model> {
 public:
  using UpdateCallback = ::lepton::UpdateCallback;

  // A new model at version 1. With storage, writes its first checkpoint and
  // opens its log before returning. `spec` and `name` must be valid.
  static absl::StatusOr<std::shared_ptr<Model>> Create(
      std::string name, const ModelSpec& spec, const ModelOptions& options);
  // A model that starts as `state` (an import); persisted like Create.
  static absl::StatusOr<std::shared_ptr<Model>> CreateFromState(
      std::string name, ModelState state, const ModelOptions& options);
  // The model persisted under options.files: its newest valid checkpoint with
  // the log replayed on top. DATA_LOSS, naming the file and offset, if that
  // cannot be done exactly.
  // What recovery dropped or skipped (a torn log tail, a corrupt older
  // checkpoint) is appended to *notes.
  static absl::StatusOr<std::shared_ptr<Model>> Recover(
      std::string name, const ModelOptions& options,
      std::vector<std::string>* notes);

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const { return name_; }
  // The spec of the newest published version (num_classes grows with
  // AddClasses; nothing else of it ever changes). A copy: thread-safe.
  ModelSpec spec() const { return Latest()->spec(); }

  // The newest published version. Never blocks behind an update.
  std::shared_ptr<const ModelVersion> Latest() const {
    return retained_.Latest();
  }
  // Version `version` (0 = the newest); NOT_FOUND if it does not exist or is
  // no longer retained.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> Version(
      uint64_t version) const {
    return retained_.Get(version);
  }

  // With options.remember, each prediction is kept in the model's prediction
  // cache (memory only: not logged, lost on restart) under the id returned
  // in Predictions::prediction_ids; FAILED_PRECONDITION if the cache is
  // disabled.
  absl::StatusOr<Predictions> Predict(absl::Span<const FeaturesView> instances,
                                      uint64_t version = 0,
                                      const PredictOptions& options = {}) const;

  // The kept predictions `ids`, in order; NOT_FOUND naming the first that
  // is unknown, expired or used.
  absl::StatusOr<std::vector<RememberedPrediction>> Remembered(
      absl::Span<const uint64_t> ids) const;

  // Validates everything first (INVALID_ARGUMENT naming the field; nothing
  // changes), then learns, logs and publishes one new version, and calls
  // `done` with the result: at once, or, with --fsync=always, from the log
  // syncer's thread once the update's record is durable. A non-empty
  // `update_id` seen recently returns that update's result instead, without
  // learning again. UNAVAILABLE if the log cannot be written (nothing
  // applied). Examples with a prediction_id take the cached features and
  // served outputs of that prediction (after the update_id check, so a retry
  // still gets its original answer); NOT_FOUND naming the example if one is
  // unknown, expired or used (nothing applied). The ids of an applied update
  // are consumed; those of a failed one stay usable. `examples` need to stay
  // valid only until this call returns.
  void StartUpdate(absl::Span<const ExampleView> examples,
                   const UpdateOptions& options, absl::string_view update_id,
                   UpdateCallback done) ABSL_LOCKS_EXCLUDED(update_mu_);
  // The result of the remembered update `update_id` (empty: none).
  std::optional<UpdateResult> AppliedUpdate(absl::string_view update_id) const
      ABSL_LOCKS_EXCLUDED(update_mu_);
  // ModelStore::PrepareUpdate.
  absl::StatusOr<PreparedUpdate> PrepareUpdate(
      absl::Span<const ExampleView> examples, const UpdateOptions& options,
      absl::string_view update_id) ABSL_LOCKS_EXCLUDED(update_mu_);
  // StartUpdate, waiting for the result.
  absl::StatusOr<UpdateResult> Update(absl::Span<const ExampleView> examples,
                                      const UpdateOptions& options,
                                      absl::string_view update_id = "");

  // Publishes the state of `version` (a retained or checkpointed one) as a
  // new version; with storage, checkpointed before it is published. Returns
  // the model as of that new version (Info(described)), whatever updates
  // publish after it. FAILED_PRECONDITION for a version with fewer classes
  // than the model (from before AddClasses): a rollback cannot remove
  // classes.
  absl::StatusOr<ModelInfo> Rollback(uint64_t version)
      ABSL_LOCKS_EXCLUDED(update_mu_);
  // Softmax only: grows the model to `num_classes` (the new total K' > K)
  // and publishes the result as a new version, returned as the model as of
  // that version (see Rollback). Every existing
  // weight, bias and optimizer state is kept bit for bit; the new classes'
  // weights and biases are 0 and their optimizer state is at its initial
  // value (AdaGrad: initial_accumulator; FTRL's z and n, Adam's m and v: 0).
  // Counters, the drift detector and the holdout set carry on; a challenger
  // in progress is dropped (CHALLENGER_DROPPED), since it learned K classes.
  // Emits CLASSES_ADDED ("num_classes K -> K'"), which stands for the new
  // version's publication event. With storage the new version is
  // checkpointed before it is published, like a rollback (the log has no
  // record of it: the checkpoint is its record), so a restart finds it.
  // num_classes == K is a no-op returning the current version (a retry is
  // safe). Errors: FAILED_PRECONDITION for a model that is not softmax;
  // INVALID_ARGUMENT "num_classes: ..." for K' < K or beyond the spec's
  // limits (kMaxClasses, kMaxParameters); NOT_FOUND once retired;
  // UNAVAILABLE if the log or the checkpoint cannot be written (nothing
  // changed).
  absl::StatusOr<ModelInfo> AddClasses(int32_t num_classes)
      ABSL_LOCKS_EXCLUDED(update_mu_);
  // The complete state of `version` (0 = the newest): retained or
  // checkpointed.
  absl::StatusOr<ModelState> State(uint64_t version) const
      ABSL_LOCKS_EXCLUDED(update_mu_);

  // With storage: writes a checkpoint of the newest published version if it
  // has none, then drops the log segments and old checkpoints it makes
  // unnecessary. `force` = false writes only when one is due by the
  // options' update count, age or bytes logged.
  absl::Status Checkpoint(bool force) ABSL_LOCKS_EXCLUDED(update_mu_);
  // Syncs the log, publishes what became durable and answers its callers.
  // Called by the log syncer.
  void SyncLog() ABSL_LOCKS_EXCLUDED(update_mu_);

  // DeleteModel's first step, before it moves the model's directory: the
  // change or checkpoint running finishes, later ones find the model gone
  // (NOT_FOUND), and the log is synced, answering the updates that waited
  // for it; so nothing of the model opens a file in its directory once this
  // returns. ResumeChanges() undoes it (the directory could not be moved).
  void StopChanges() ABSL_LOCKS_EXCLUDED(checkpoint_mu_, update_mu_);
  void ResumeChanges() ABSL_LOCKS_EXCLUDED(update_mu_);
  // Called when the model is deleted: later updates, rollbacks and
  // checkpoints find it gone (NOT_FOUND), watchers get MODEL_DELETED and
  // version waiters wake.
  void Retire() ABSL_LOCKS_EXCLUDED(checkpoint_mu_, update_mu_);

  // The model as of its newest version.
  ModelInfo Info() const;
  // The same with `described`'s spec, version, counters, adaptation state
  // and nonzero weights; the rest (retained and checkpointed versions,
  // memory, totals) is the model's now.
  ModelInfo Info(const PublishedVersion& described) const;
  // What ModelInfo::memory_bytes says, without the rest of Info(): the
  // parameters of the retained versions and the writer, the newest version's
  // holdout set and held updates, and the remembered predictions.
  int64_t MemoryBytes() const;

  // RetainedVersions::WhenPublished and CancelWait on this model's versions;
  // Retire wakes every waiter.
  absl::StatusOr<uint64_t> WhenVersion(uint64_t version,
                                       std::function<void()> ready) {
    return retained_.WhenPublished(version, std::move(ready));
  }
  bool CancelWait(uint64_t version, uint64_t id) {
    return retained_.CancelWait(version, id);
  }

  // New versions, drifts, promotions and refused updates (model_events.h).
  EventHub& events() { return events_; }

 private:
  // What an update leaves to do once the model's locks are released.
  struct UpdateOutcome {
    // Unset: the update waits in the commit queue, which answers it.
    std::optional<absl::StatusOr<UpdateResult>> answer;
    std::vector<ModelEvent> events;
    uint64_t events_version = 0;
  };
  static UpdateOutcome Answered(absl::StatusOr<UpdateResult> answer,
                                std::vector<ModelEvent> events = {},
                                uint64_t events_version = 0) {
    UpdateOutcome outcome;
    outcome.answer = std::move(answer);
    outcome.events = std::move(events);
    outcome.events_version = events_version;
    return outcome;
  }

  Model(std::string name, const ModelSpec& spec, const ModelOptions& options,
        const ModelState* initial);
  // Writes the first checkpoint and opens the log (storage only).
  absl::Status InitializeFiles();

  // Hashes the named features of `examples` into *hashed_examples (views
  // into *hashed) with `spec`, and points `examples` at them; a no-op
  // without named features.
  static absl::Status HashExamples(const ModelSpec& spec,
                                   absl::Span<const ExampleView>& examples,
                                   std::vector<ExampleView>* hashed_examples,
                                   HashedFeatures* hashed);
  // The steps of StartUpdate, under update_mu_, for examples validated
  // against `validated`: the model still takes changes; the same checks
  // again if AddClasses replaced the spec meanwhile; a retry's original
  // answer; delayed labels resolved; learned, logged, and committed (or
  // undone whole).
  UpdateOutcome ApplyUpdateLocked(const ModelSpec& validated,
                                  absl::Span<const ExampleView> examples,
                                  const UpdateOptions& options,
                                  absl::string_view update_id,
                                  UpdateCallback* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // NOT_FOUND once retired, UNAVAILABLE once the log failed.
  absl::Status CheckWritableLocked(absl::string_view what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // A retry of an update remembered as `original`: its answer, at once or
  // (queued) once the original's record is durable.
  UpdateOutcome AnswerRetryLocked(const UpdateIdWindow::Entry& original,
                                  UpdateCallback* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Appends the update's record to the log; its end position, 0 without
  // storage. On failure the caller undoes the update.
  absl::StatusOr<uint64_t> LogUpdateLocked(
      uint64_t version, absl::string_view update_id,
      const UpdateOptions& options, absl::Span<const ExampleView> examples)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // A learned and logged update becomes version head_ + 1: published at once
  // (and answered), or queued until its record is durable.
  UpdateOutcome CommitUpdateLocked(const ModelCounters& counters,
                                   const UpdateResult& result,
                                   absl::string_view update_id,
                                   uint64_t log_position,
                                   std::vector<ModelEvent> events,
                                   UpdateCallback* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // An update that was not applied: its error, and an UPDATE_REFUSED event
  // if the guardrail refused it.
  UpdateOutcome RefusedLocked(absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);

  // GuardedLearner::Learn on the model's learner and adaptation state.
  absl::Status LearnLocked(absl::Span<const ExampleView> examples,
                           const UpdateOptions& options,
                           ModelCounters* counters, UpdateResult* result,
                           std::vector<ModelEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Undoes what LearnLocked did: back to head_.
  void UndoLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Scores the holdout set with the learner's weights (GuardedLearner).
  void ValidateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Adds what the update that `counters` describe learned on top of head_
  // to the totals.
  void CountLearnedLocked(const ModelCounters& counters)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Builds version head_ + 1 from the learner's changes and makes it head_
  // (not yet published).
  std::shared_ptr<const PublishedVersion> CommitLocked(
      const ModelCounters& counters) ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // After `examples` were validated without the lock against `validated`:
  // the same checks against spec_, if AddClasses replaced it meanwhile.
  absl::Status SpecChangedLocked(const ModelSpec& validated,
                                 absl::Span<const ExampleView> examples) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // The state of `v` with the remembered ids up to its version.
  ModelState StateOf(const PublishedVersion& v) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_);
  // Before a version made by Rollback or AddClasses (`what`, for messages),
  // which comes after every update already logged: syncs the log and takes
  // the updates it made durable into *answered (to be answered once no lock
  // is held). A failed sync goes to *sync_error too (FailPending).
  absl::Status SyncBeforeCheckpointedVersionLocked(absl::string_view what,
                                                   CommitQueue::Batch* answered,
                                                   absl::Status* sync_error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_, checkpoint_mu_);
  // Writes `state`, a version with no log record (Rollback, AddClasses), as
  // its checkpoint, then starts a new log segment after it.
  absl::Status WriteCheckpointedVersionLocked(absl::string_view what,
                                              const ModelState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(update_mu_, checkpoint_mu_);
  // Answers the updates durable up to `position`.
  void CompletePending(uint64_t position) ABSL_LOCKS_EXCLUDED(update_mu_);
  // After a failed sync: answers what was durable, fails every other pending
  // update with `error` (their versions are never published).
  void FailPending(const absl::Status& error) ABSL_LOCKS_EXCLUDED(update_mu_);
  // Answers `answered` and, after a failed sync, fails the rest.
  void FinishSync(CommitQueue::Batch answered, const absl::Status& sync_error)
      ABSL_LOCKS_EXCLUDED(update_mu_);
  void RequestSync();
  // Stamps `events` with the version and time and sends them to the
  // listeners. No lock of the model may be held.
  void Emit(std::vector<ModelEvent> events, uint64_t version);

  const std::string name_;
  const ModelOptions options_;
  const absl::Time created_;
  // Whether the initial state's adaptation part loaded (set by the
  // constructor, checked by the factories).
  absl::Status init_status_;
  // With storage: this model's directory; null in memory. Set before the
  // model is shared, constant after.
  std::unique_ptr<ModelFiles> files_;

  mutable Mutex update_mu_;
  // The newest spec (replaced by AddClasses; each version holds its own).
  // Readers without update_mu_ use Latest()->spec(): AddClasses publishes at
  // once, so the newest published version always has this spec.
  std::shared_ptr<const ModelSpec> spec_ ABSL_GUARDED_BY(update_mu_);
  Learner learner_ ABSL_GUARDED_BY(update_mu_);
  ModelAdaptation adaptation_ ABSL_GUARDED_BY(update_mu_);
  std::atomic<uint64_t> refused_updates_{0};
  // Updates refused because the update log's disk was full.
  std::atomic<uint64_t> disk_full_refusals_{0};
  // ModelInfo's totals: never decrease.
  std::atomic<uint64_t> examples_learned_total_{0};
  std::atomic<uint64_t> updates_applied_total_{0};
  EventHub events_;
  std::shared_ptr<const PublishedVersion> head_ ABSL_GUARDED_BY(update_mu_);
  UpdateIdWindow update_ids_ ABSL_GUARDED_BY(update_mu_);
  bool retired_ ABSL_GUARDED_BY(update_mu_) = false;
  uint64_t last_checkpoint_ ABSL_GUARDED_BY(update_mu_) = 0;
  // The journal's appended() when the last checkpoint began.
  uint64_t logged_at_checkpoint_ ABSL_GUARDED_BY(update_mu_) = 0;
  absl::Time last_checkpoint_time_ ABSL_GUARDED_BY(update_mu_);
  std::atomic<int64_t> learner_bytes_{0};
  std::atomic<bool> sync_requested_{false};
  // Remembered predictions (thread-safe on its own; mutable for Predict).
  mutable PredictionCache prediction_cache_;
  // Serializes checkpoint writes (file I/O, without update_mu_).
  Mutex checkpoint_mu_ ABSL_ACQUIRED_BEFORE(update_mu_);

  // Thread-safe on their own.
  RetainedVersions retained_;
  CommitQueue pending_{&retained_};
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_MODEL_H_
