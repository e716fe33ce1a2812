#include "core/store/model.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/adaptation/guarded_learner.h"
#include "core/learning/added_classes.h"
#include "core/learning/feature_hashing.h"
#include "core/learning/validation.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_errors.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

// INVALID_ARGUMENT unless `record` (AppendUpdateRecord's) fits the log.
absl::Status FitsOneRecord(const std::string& record) {
  if (record.size() - kRecordHeaderBytes <= kMaxRecordPayloadBytes) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("examples: this update takes ", record.size(),
                   " bytes to log, more than a log record holds (",
                   kMaxRecordPayloadBytes, "); split it"));
}

absl::Status ValidateUpdateOptions(const UpdateOptions& o) {
  if (o.epochs < 1 || o.epochs > kMaxEpochs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epochs: must be in [1, ", kMaxEpochs, "], got ", o.epochs));
  }
  if (o.learning_rate.has_value() &&
      !(std::isfinite(*o.learning_rate) && *o.learning_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "learning_rate: must be finite and > 0, got ", *o.learning_rate));
  }
  return absl::OkStatus();
}

// Everything about an update that can be checked without the model's lock,
// against `spec`.
absl::Status ValidateUpdate(const ModelSpec& spec,
                            absl::Span<const ExampleView> examples,
                            const UpdateOptions& options,
                            absl::string_view update_id) {
  LEPTON_RETURN_IF_ERROR(ValidateUpdateOptions(options));
  if (update_id.size() > kMaxUpdateIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("update_id: at most ", kMaxUpdateIdLength, " bytes, got ",
                     update_id.size()));
  }
  LEPTON_RETURN_IF_ERROR(ValidateExamples(spec, examples));
  return ValidatePredictionReferences(examples, spec.num_outputs());
}

}  // namespace

Model::Model(std::string name, const ModelSpec& spec,
             const ModelOptions& options, const ModelState* initial)
    : name_(std::move(name)),
      options_(options),
      created_(initial != nullptr ? initial->created : absl::Now()),
      spec_(std::make_shared<const ModelSpec>(spec)),
      learner_(spec),
      adaptation_(spec_),
      update_ids_(options.remembered_update_ids),
      prediction_cache_(options.prediction_cache),
      retained_(name_, options.retained_versions) {
  MutexLock lock(&update_mu_);
  uint64_t version = 1;
  ModelCounters counters;
  absl::Time published = created_;
  if (initial != nullptr) {
    learner_.Load(initial->params);
    version = initial->version;
    counters = initial->counters;
    published = initial->published;
    init_status_ = adaptation_.Load(initial->adaptation);
    for (const RecentUpdate& r : initial->recent_updates) {
      update_ids_.Remember(r.update_id, r.result, 0);
    }
  }
  head_ = std::make_shared<const PublishedVersion>(learner_.Commit(version),
                                                   spec_, counters, published,
                                                   adaptation_.Commit(version));
  learner_bytes_ = learner_.memory_bytes();
  examples_learned_total_ = counters.examples_seen;
  updates_applied_total_ = counters.updates;
  last_checkpoint_ = version;
  last_checkpoint_time_ = absl::Now();
  retained_.Publish(head_);
}

Model::~Model() = default;

absl::StatusOr<std::shared_ptr<Model>> Model::Create(
    std::string name, const ModelSpec& spec, const ModelOptions& options) {
  std::shared_ptr<Model> model(
      new Model(std::move(name), spec, options, nullptr));
  LEPTON_RETURN_IF_ERROR(model->InitializeFiles());
  return model;
}

absl::StatusOr<std::shared_ptr<Model>> Model::CreateFromState(
    std::string name, ModelState state, const ModelOptions& options) {
  state.name = name;
  std::shared_ptr<Model> model(
      new Model(std::move(name), state.spec, options, &state));
  LEPTON_RETURN_IF_ERROR(model->init_status_);
  LEPTON_RETURN_IF_ERROR(model->InitializeFiles());
  return model;
}

absl::Status Model::InitializeFiles() {
  if (options_.files == nullptr) return absl::OkStatus();
  MutexLock lock(&update_mu_);
  absl::StatusOr<std::unique_ptr<ModelFiles>> files =
      ModelFiles::Create(options_.files, name_, StateOf(*head_));
  if (!files.ok()) return files.status();
  files_ = *std::move(files);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Model>> Model::Recover(
    std::string name, const ModelOptions& options,
    std::vector<std::string>* notes) {
  LEPTON_ASSIGN_OR_RETURN(ModelFiles::Recovered recovered,
                          ModelFiles::Read(options.files, name));
  std::shared_ptr<Model> model(
      new Model(name, recovered.state.spec, options, &recovered.state));
  if (!model->init_status_.ok()) {
    return absl::DataLossError(
        absl::StrCat("model \"", name,
                     "\": its checkpoint's adaptation state "
                     "does not load: ",
                     model->init_status_.message()));
  }
  MutexLock lock(&model->update_mu_);
  for (size_t s = 0; s < recovered.segments.size(); ++s) {
    for (const LoggedUpdate& record : recovered.segments[s].records) {
      const std::vector<ExampleView> examples = Views(record.examples);
      ModelCounters counters;
      UpdateResult result;
      std::vector<ModelEvent> events;
      absl::Status status =
          ValidateUpdate(*model->spec_, examples, record.options, "");
      if (status.ok()) {
        status = model->LearnLocked(examples, record.options, &counters,
                                    &result, &events);
      }
      if (!status.ok()) {
        return absl::DataLossError(
            absl::StrCat(recovered.segment_paths[s], ": offset ", record.offset,
                         ": the update that produced version ", record.version,
                         " cannot be replayed: ", status.message()));
      }
      model->CountLearnedLocked(counters);
      model->retained_.Publish(model->CommitLocked(counters));
      model->update_ids_.Remember(record.update_id, result, 0);
    }
  }
  absl::StatusOr<std::unique_ptr<ModelFiles>> files = ModelFiles::Reopen(
      options.files, name, recovered, model->head_->version());
  if (!files.ok()) return files.status();
  model->files_ = *std::move(files);
  model->last_checkpoint_ = recovered.state.version;
  if (notes != nullptr) {
    for (const std::string& note : recovered.notes) notes->push_back(note);
  }
  return model;
}

absl::StatusOr<Predictions> Model::Predict(
    absl::Span<const FeaturesView> instances, uint64_t version,
    const PredictOptions& options) const {
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v = Version(version);
  // Instances are checked first, against the version asked for (or the
  // newest, if it does not exist): only num_classes differs between
  // versions, and instances do not depend on it.
  const ModelSpec& spec = v.ok() ? (*v)->spec() : Latest()->spec();
  if (const int64_t bytes = static_cast<int64_t>(instances.size()) *
                            spec.num_outputs() * int64_t{sizeof(float)};
      options.max_output_bytes > 0 && bytes > options.max_output_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("instances: ", instances.size(), " predictions of ",
                     spec.num_outputs(), " outputs are ", bytes,
                     " bytes, more than the ", options.max_output_bytes,
                     " a response may hold; ask for fewer instances"));
  }
  std::vector<FeaturesView> hashed_views;
  HashedFeatures hashed;  // alive until the predictions are made
  if (HasNamespaces(instances)) {
    hashed_views.assign(instances.begin(), instances.end());
    LEPTON_RETURN_IF_ERROR(HashNamedBatch(
        spec, static_cast<int>(instances.size()), "instances",
        [&](int i) -> FeaturesView& { return hashed_views[i]; },
        [](int i) { return absl::StrCat("instances[", i, "]"); }, &hashed));
    instances = hashed_views;
  }
  if (absl::Status s = ValidateInstances(spec, instances); !s.ok()) return s;
  if (options.remember && !prediction_cache_.enabled()) {
    return absl::FailedPreconditionError(
        "return_prediction_ids: the server keeps no predictions "
        "(--prediction_cache_entries=0)");
  }
  if (!v.ok()) return v.status();
  std::shared_ptr<const ModelVersion> read = *std::move(v);
  ParamsPin pin = read->stored_params().ReadIfLive();
  // Both live copies moved on since: then a newer version is the newest.
  for (int retry = 0; !pin && version == 0 && retry < 3; ++retry) {
    read = Latest();
    pin = read->stored_params().ReadIfLive();
  }
  if (!pin) pin = read->stored_params().Read();
  if (!options.remember) return read->Predict(instances, nullptr, &pin);
  std::vector<float> raw;
  Predictions p = read->Predict(instances, &raw, &pin);
  p.prediction_ids.reserve(instances.size());
  for (size_t i = 0; i < instances.size(); ++i) {
    p.prediction_ids.push_back(prediction_cache_.Insert(
        instances[i],
        absl::MakeConstSpan(raw).subspan(i * p.num_outputs, p.num_outputs),
        p.version));
  }
  return p;
}

absl::Status Model::LearnLocked(absl::Span<const ExampleView> examples,
                                const UpdateOptions& options,
                                ModelCounters* counters, UpdateResult* result,
                                std::vector<ModelEvent>* events) {
  return GuardedLearner(*spec_, &learner_, &adaptation_, *head_,
                        head_->adaptation())
      .Learn(examples, options, counters, result, events);
}

void Model::ValidateLocked() {
  GuardedLearner(*spec_, &learner_, &adaptation_, *head_, head_->adaptation())
      .ScoreHoldout();
}

void Model::UndoLocked() {
  learner_.Restore();
  adaptation_.Reset(head_->adaptation());
}

void Model::CountLearnedLocked(const ModelCounters& counters) {
  const ModelCounters& before = head_->counters();
  examples_learned_total_ += counters.examples_seen - before.examples_seen;
  updates_applied_total_ += counters.updates - before.updates;
}

std::shared_ptr<const PublishedVersion> Model::CommitLocked(
    const ModelCounters& counters) {
  const uint64_t version = head_->version() + 1;
  head_ = std::make_shared<const PublishedVersion>(learner_.Commit(version),
                                                   spec_, counters, absl::Now(),
                                                   adaptation_.Commit(version));
  learner_bytes_ = learner_.memory_bytes();
  return head_;
}

absl::Status Model::SpecChangedLocked(
    const ModelSpec& validated, absl::Span<const ExampleView> examples) const {
  if (&validated == spec_.get()) return absl::OkStatus();
  LEPTON_RETURN_IF_ERROR(ValidateExamples(*spec_, examples));
  return ValidatePredictionReferences(examples, spec_->num_outputs());
}

void Model::StartUpdate(absl::Span<const ExampleView> examples,
                        const UpdateOptions& options,
                        absl::string_view update_id, UpdateCallback done) {
  // Validated without the lock, against the newest published spec; checked
  // again under it if AddClasses changed the spec meanwhile (which changes
  // nothing that hashing uses).
  const std::shared_ptr<const ModelVersion> validated_at = Latest();
  const ModelSpec& spec = validated_at->spec();
  // Named features are hashed first; the log records the hashed examples,
  // and the views need to live only until this call returns.
  std::vector<ExampleView> hashed_examples;
  HashedFeatures hashed;
  if (absl::Status s = HashExamples(spec, examples, &hashed_examples, &hashed);
      !s.ok()) {
    done(s);
    return;
  }
  if (absl::Status s = ValidateUpdate(spec, examples, options, update_id);
      !s.ok()) {
    done(s);
    return;
  }
  UpdateOutcome outcome;
  {
    MutexLock lock(&update_mu_);
    outcome = ApplyUpdateLocked(spec, examples, options, update_id, &done);
  }
  if (files_ != nullptr &&
      (!outcome.answer.has_value() ||
       (outcome.answer->ok() &&
        options_.files->fsync == FsyncPolicy::kInterval))) {
    RequestSync();
  }
  if (!outcome.events.empty()) {
    Emit(std::move(outcome.events), outcome.events_version);
  }
  if (outcome.answer.has_value()) done(*std::move(outcome.answer));
}

std::optional<UpdateResult> Model::AppliedUpdate(
    absl::string_view update_id) const {
  if (update_id.empty()) return std::nullopt;
  MutexLock lock(&update_mu_);
  const UpdateIdWindow::Entry* original = update_ids_.Find(update_id);
  if (original == nullptr) return std::nullopt;
  return original->result;
}

absl::StatusOr<std::vector<RememberedPrediction>> Model::Remembered(
    absl::Span<const uint64_t> ids) const {
  std::vector<RememberedPrediction> found;
  found.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    std::shared_ptr<const CachedPrediction> p = prediction_cache_.Find(ids[i]);
    if (p == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "prediction_ids[", i, "]: ", ids[i], " is unknown or expired"));
    }
    found.push_back(*p);
  }
  return found;
}

absl::Status Model::HashExamples(const ModelSpec& spec,
                                 absl::Span<const ExampleView>& examples,
                                 std::vector<ExampleView>* hashed_examples,
                                 HashedFeatures* hashed) {
  if (!HasNamespaces(examples)) return absl::OkStatus();
  hashed_examples->assign(examples.begin(), examples.end());
  LEPTON_RETURN_IF_ERROR(HashNamedBatch(
      spec, static_cast<int>(examples.size()), "examples",
      [&](int i) -> FeaturesView& { return (*hashed_examples)[i].features; },
      [](int i) { return absl::StrCat("examples[", i, "].features"); },
      hashed));
  examples = *hashed_examples;
  return absl::OkStatus();
}

absl::StatusOr<PreparedUpdate> Model::PrepareUpdate(
    absl::Span<const ExampleView> examples, const UpdateOptions& options,
    absl::string_view update_id) {
  const std::shared_ptr<const ModelVersion> validated_at = Latest();
  const ModelSpec& spec = validated_at->spec();
  std::vector<ExampleView> hashed_examples;
  HashedFeatures hashed;
  LEPTON_RETURN_IF_ERROR(
      HashExamples(spec, examples, &hashed_examples, &hashed));
  LEPTON_RETURN_IF_ERROR(ValidateUpdate(spec, examples, options, update_id));
  PreparedUpdate prepared;
  {
    MutexLock lock(&update_mu_);
    LEPTON_RETURN_IF_ERROR(CheckWritableLocked("this update"));
    if (const UpdateIdWindow::Entry* original = update_ids_.Find(update_id)) {
      prepared.original = original->result;
      return prepared;
    }
  }
  absl::StatusOr<PredictionCache::Claim> claim =
      prediction_cache_.Resolve(examples, spec.num_outputs());
  if (!claim.ok()) return claim.status();
  AppendUpdateRecord(0, update_id, options, claim->examples(),
                     &prepared.record);
  LEPTON_RETURN_IF_ERROR(FitsOneRecord(prepared.record));
  // The claim keeps the cache (and so the model) it points into alive.
  auto held = std::make_shared<PredictionCache::Claim>(*std::move(claim));
  prepared.settle = [held, self = shared_from_this()](bool applied) {
    if (applied) held->Commit();
    *held = PredictionCache::Claim();
  };
  return prepared;
}

Model::UpdateOutcome Model::ApplyUpdateLocked(
    const ModelSpec& validated, absl::Span<const ExampleView> examples,
    const UpdateOptions& options, absl::string_view update_id,
    UpdateCallback* done) {
  if (absl::Status s = CheckWritableLocked("this update"); !s.ok()) {
    return Answered(s);
  }
  if (absl::Status s = SpecChangedLocked(validated, examples); !s.ok()) {
    return Answered(s);
  }
  if (const UpdateIdWindow::Entry* original = update_ids_.Find(update_id)) {
    return AnswerRetryLocked(*original, done);
  }
  absl::StatusOr<PredictionCache::Claim> claim =
      prediction_cache_.Resolve(examples, spec_->num_outputs());
  if (!claim.ok()) return Answered(claim.status());
  // Delayed labels resolved to the cached features and served outputs;
  // the claim releases them again unless the update applies.
  const absl::Span<const ExampleView> resolved = claim->examples();
  ModelCounters counters;
  UpdateResult result;
  std::vector<ModelEvent> events;
  if (absl::Status s =
          LearnLocked(resolved, options, &counters, &result, &events);
      !s.ok()) {
    return RefusedLocked(std::move(s));
  }
  absl::StatusOr<uint64_t> log_position =
      LogUpdateLocked(result.version, update_id, options, resolved);
  if (!log_position.ok()) {
    UndoLocked();
    return RefusedLocked(log_position.status());
  }
  claim->Commit();
  return CommitUpdateLocked(counters, result, update_id, *log_position,
                            std::move(events), done);
}

absl::Status Model::CheckWritableLocked(absl::string_view what) const {
  if (retired_) {
    return absl::NotFoundError(absl::StrCat("model \"", name_, "\" not found"));
  }
  if (files_ != nullptr && !files_->journal().status().ok()) {
    return LogBroken(name_, what, files_->journal().status());
  }
  return absl::OkStatus();
}

Model::UpdateOutcome Model::AnswerRetryLocked(
    const UpdateIdWindow::Entry& original, UpdateCallback* done) {
  const bool sync_before_answer =
      files_ != nullptr && options_.files->fsync == FsyncPolicy::kAlways;
  if (sync_before_answer &&
      original.log_position > files_->journal().durable()) {
    CommitQueue::Pending retry;
    retry.log_position = original.log_position;
    retry.result = original.result;
    retry.done = std::move(*done);
    pending_.Add(std::move(retry));
    return {};
  }
  return Answered(original.result);
}

absl::StatusOr<uint64_t> Model::LogUpdateLocked(
    uint64_t version, absl::string_view update_id, const UpdateOptions& options,
    absl::Span<const ExampleView> examples) {
  if (files_ == nullptr) return 0;
  // Logged before the version is built: a failed append leaves nothing to
  // take back but the learner's changes.
  std::string record;
  AppendUpdateRecord(version, update_id, options, examples, &record);
  LEPTON_RETURN_IF_ERROR(FitsOneRecord(record));
  absl::StatusOr<uint64_t> appended = files_->journal().Append(record);
  if (!appended.ok() && !absl::IsInvalidArgument(appended.status())) {
    // A full disk is waited out, unless the failed append broke the log.
    const absl::Status cause =
        files_->journal().status().ok()
            ? appended.status()
            : absl::UnavailableError(appended.status().message());
    return NotApplied(name_, "this update", cause);
  }
  return appended;
}

Model::UpdateOutcome Model::CommitUpdateLocked(const ModelCounters& counters,
                                               const UpdateResult& result,
                                               absl::string_view update_id,
                                               uint64_t log_position,
                                               std::vector<ModelEvent> events,
                                               UpdateCallback* done) {
  CountLearnedLocked(counters);
  std::shared_ptr<const PublishedVersion> version = CommitLocked(counters);
  update_ids_.Remember(update_id, result, log_position);
  if (events_.has_listeners()) {
    ModelEvent published;
    published.kind = ModelEvent::Kind::kVersion;
    published.example = counters.examples_seen;
    events.push_back(std::move(published));
  }
  if (files_ != nullptr && options_.files->fsync == FsyncPolicy::kAlways) {
    CommitQueue::Pending pending;
    pending.version = std::move(version);
    pending.log_position = log_position;
    pending.result = result;
    pending.done = std::move(*done);
    pending.events = std::move(events);
    pending_.Add(std::move(pending));
    return {};
  }
  const uint64_t number = version->version();
  retained_.Publish(std::move(version));
  return Answered(result, std::move(events), number);
}

Model::UpdateOutcome Model::RefusedLocked(absl::Status status) {
  std::vector<ModelEvent> events;
  if (absl::IsResourceExhausted(status)) ++disk_full_refusals_;
  if (absl::IsFailedPrecondition(status)) {
    ++refused_updates_;
    ModelEvent refused;
    refused.kind = ModelEvent::Kind::kUpdateRefused;
    refused.example = head_->counters().examples_seen;
    refused.detail = std::string(status.message());
    events.push_back(std::move(refused));
  }
  return Answered(std::move(status), std::move(events), head_->version());
}

void Model::Emit(std::vector<ModelEvent> events, uint64_t version) {
  if (!events_.has_listeners()) return;
  const absl::Time now = absl::Now();
  for (ModelEvent& e : events) {
    e.version = version;
    e.time = now;
    events_.Publish(e);
  }
}

absl::StatusOr<UpdateResult> Model::Update(
    absl::Span<const ExampleView> examples, const UpdateOptions& options,
    absl::string_view update_id) {
  std::promise<absl::StatusOr<UpdateResult>> promise;
  std::future<absl::StatusOr<UpdateResult>> future = promise.get_future();
  StartUpdate(examples, options, update_id,
              [&promise](absl::StatusOr<UpdateResult> r) {
                promise.set_value(std::move(r));
              });
  return future.get();
}

void Model::RequestSync() {
  if (options_.syncer == nullptr) {
    SyncLog();  // no syncer thread (a store without one): sync inline
    return;
  }
  if (sync_requested_.exchange(true)) return;  // one is already queued
  options_.syncer->Request([self = shared_from_this()] { self->SyncLog(); });
}

void Model::SyncLog() {
  sync_requested_.store(false);
  if (files_ == nullptr) return;
  absl::StatusOr<uint64_t> durable = files_->journal().Sync();
  if (!durable.ok()) {
    FailPending(OutcomeUnknown(name_, durable.status()));
    return;
  }
  CompletePending(*durable);
}

void Model::CompletePending(uint64_t position) {
  AnswerAll(pending_.TakeDurable(position),
            [this](std::vector<ModelEvent> events, uint64_t version) {
              Emit(std::move(events), version);
            });
}

void Model::FailPending(const absl::Status& error) {
  // What an earlier sync made durable is answered as usual, even if this
  // sync failed before its caller got to it.
  CompletePending(files_->journal().durable());
  // The rest stay unpublished (in the learner and head_ too, which is safe
  // only because the journal is broken: the model takes no further change
  // until the server restarts and recovers from the disk).
  FailAll(pending_.TakeAll(), error);
}

void Model::FinishSync(CommitQueue::Batch answered,
                       const absl::Status& sync_error) {
  AnswerAll(std::move(answered),
            [this](std::vector<ModelEvent> events, uint64_t version) {
              Emit(std::move(events), version);
            });
  if (!sync_error.ok()) FailPending(OutcomeUnknown(name_, sync_error));
}

ModelState Model::StateOf(const PublishedVersion& v) const {
  ModelState state = v.State(name_, created_);
  state.recent_updates = update_ids_.UpTo(v.version());
  return state;
}

void Model::StopChanges() {
  CommitQueue::Batch answered;
  absl::Status sync_error;
  {
    MutexLock checkpoint_lock(&checkpoint_mu_);
    MutexLock lock(&update_mu_);
    retired_ = true;
    if (files_ != nullptr) {
      // A failed sync fails the updates that waited for it (FinishSync); the
      // model is being deleted either way.
      SyncBeforeCheckpointedVersionLocked("the deletion", &answered,
                                          &sync_error)
          .IgnoreError();
    }
  }
  FinishSync(std::move(answered), sync_error);
}

void Model::ResumeChanges() {
  MutexLock lock(&update_mu_);
  retired_ = false;
}

void Model::Retire() {
  uint64_t version = 0;
  ModelEvent deleted;
  deleted.kind = ModelEvent::Kind::kDeleted;
  {
    MutexLock checkpoint_lock(&checkpoint_mu_);
    MutexLock lock(&update_mu_);
    retired_ = true;
    version = head_->version();
    deleted.example = head_->counters().examples_seen;
  }
  Emit({std::move(deleted)}, version);
  retained_.WakeAll();
}

namespace {

// Exactly nonzero floats of array 0 (the weights).
int64_t CountNonzeroWeights(const ParamsVersion& params) {
  const ParamsPin pin = params.Read();
  const float* weights = pin.data();
  int64_t count = 0;
  for (int64_t i = 0; i < params.layout().array_floats(); ++i) {
    count += weights[i] != 0.0f;
  }
  return count;
}

// Bytes of `retained`'s parameters (each learner's VersionedParams once: more
// than one after AddClasses) and of the newest version's holdout set and
// held updates.
int64_t RetainedBytes(
    const std::vector<std::shared_ptr<const PublishedVersion>>& retained) {
  int64_t bytes = 0;
  const VersionedParams* counted = nullptr;
  for (const auto& v : retained) {
    const VersionedParams* owner = v->stored_params().owner();
    if (owner != counted) bytes += owner->memory_bytes();
    counted = owner;
  }
  const AdaptationSnapshot& a = retained.back()->adaptation();
  bytes += a.holdout->bytes();
  for (const auto& held : a.quarantine) {
    for (const Example& e : held->examples) bytes += OwnedBytes(e.view());
  }
  return bytes;
}

}  // namespace

int64_t Model::MemoryBytes() const {
  // The handles keep the versions' parameters alive until they are counted.
  return learner_bytes_.load() + RetainedBytes(retained_.All()) +
         prediction_cache_.bytes();
}

ModelInfo Model::Info() const { return Info(*retained_.Latest()); }

ModelInfo Model::Info(const PublishedVersion& described) const {
  ModelInfo info;
  info.name = name_;
  info.created = created_;
  const std::vector<std::shared_ptr<const PublishedVersion>> retained =
      retained_.All();
  for (const auto& v : retained) {
    info.retained_versions.push_back(v->version());
  }
  info.memory_bytes = MemoryBytes();
  info.spec = described.spec();
  info.version = described.version();
  info.counters = described.counters();
  info.updated = described.published();
  info.examples_learned_total = examples_learned_total_.load();
  info.updates_applied_total = updates_applied_total_.load();
  const AdaptationSnapshot& a = described.adaptation();
  ModelInfo::Adaptation& out = info.adaptation;
  static_cast<AdaptationCounters&>(out) = a.counters;
  out.mean_loss_after = a.detector != nullptr ? a.detector->mean() : 0;
  if (a.challenger != nullptr) {
    out.challenger_active = true;
    out.challenger_started_at = a.challenger->stats.started_at;
    out.challenger_examples = a.challenger->stats.examples;
  }
  out.holdout_examples = a.holdout->size();
  out.refused_updates = refused_updates_.load();
  info.disk_full_refusals = disk_full_refusals_.load();
  if (files_ != nullptr) info.update_log_error = files_->journal().status();
  out.quarantine_held = static_cast<int64_t>(a.quarantine.size());
  info.nonzero_weights = CountNonzeroWeights(described.stored_params());
  if (files_ != nullptr) {
    info.checkpointed_versions = files_->checkpoint_versions();
  }
  return info;
}

}  // namespace lepton
