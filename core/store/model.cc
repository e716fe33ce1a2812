#include "core/store/model.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/learning/feature_hashing.h"
#include "core/learning/validation.h"
#include "core/storage/update_log_format.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

constexpr size_t kMaxUpdateIdLength = 128;

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

// A change that failed before anything of it reached the model's files.
absl::Status NotApplied(absl::string_view model, absl::string_view what,
                        const absl::Status& error) {
  return absl::UnavailableError(
      absl::StrCat("model \"", model, "\": the update log failed (",
                   error.message(), "); ", what, " was not applied"));
}

// An update whose record was written but could not be made durable: what
// the disk holds is unknown, so is whether a restart will find it.
absl::Status OutcomeUnknown(absl::string_view model,
                            const absl::Status& error) {
  return absl::UnavailableError(absl::StrCat(
      "model \"", model, "\": the update log could not be synced (",
      error.message(),
      "); this update may or may not be applied once the server has "
      "restarted: retry it then with the same update_id"));
}

UpdateResult ResultOf(const ModelSpec& spec, uint64_t version, size_t examples,
                      const BatchMetrics& metrics) {
  UpdateResult result;
  result.version = version;
  result.examples = static_cast<int64_t>(examples);
  if (metrics.weight > 0) {
    result.loss_before = metrics.loss_sum / metrics.weight;
    if (spec.is_classifier()) {
      result.accuracy_before = metrics.correct_weight / metrics.weight;
    }
  } else if (spec.is_classifier()) {
    result.accuracy_before = 0;
  }
  return result;
}

// Everything of `v` but the remembered update ids.
ModelState CaptureState(const ModelVersion& v, const std::string& name,
                        absl::Time created) {
  ModelState state;
  state.name = name;
  state.spec = v.spec();
  state.version = v.version();
  state.counters = v.counters();
  state.created = created;
  state.published = v.published();
  state.params = v.params();
  state.adaptation = CaptureAdaptation(*v.adaptation());
  return state;
}

// A weighted mean of `m`, 0 without weight.
double MeanLoss(const BatchMetrics& m) {
  return m.weight > 0 ? m.loss_sum / m.weight : 0;
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
      prediction_cache_(options.prediction_cache),
      arena_(std::make_shared<PageArena>(learner_.layout())) {
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
      Remember(r.update_id, r.result, 0);
    }
  }
  ParamTable table = arena_->Publish(
      version, nullptr, {},
      [this](int64_t p, float* dst) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        learner_.FillPage(p, dst);  // runs inside Publish, under update_mu_
      });
  learner_.ClearDirty();
  learner_bytes_ = learner_.memory_bytes();
  head_ = std::make_shared<const ModelVersion>(version, spec_, arena_, table,
                                               counters, published,
                                               adaptation_.Commit(version));
  last_checkpoint_ = version;
  last_checkpoint_time_ = absl::Now();
  Publish(head_);
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
      absl::Status status = ValidateUpdateOptions(record.options);
      if (status.ok()) status = ValidateExamples(*model->spec_, examples);
      if (status.ok()) {
        status =
            ValidatePredictionReferences(examples, model->spec_->num_outputs());
      }
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
      model->Publish(model->CommitLocked(counters));
      model->Remember(record.update_id, result, 0);
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

std::shared_ptr<const ModelVersion> Model::Latest() const {
  ReaderMutexLock lock(&versions_mu_);
  return retained_.back();
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> Model::Version(
    uint64_t version) const {
  ReaderMutexLock lock(&versions_mu_);
  if (version == 0) return retained_.back();
  const uint64_t oldest = retained_.front()->version();
  const uint64_t newest = retained_.back()->version();
  if (version > newest) {
    return absl::NotFoundError(
        absl::StrCat("version ", version, " of model \"", name_,
                     "\" does not exist; the newest is ", newest));
  }
  if (version < oldest) {
    return absl::NotFoundError(
        absl::StrCat("version ", version, " of model \"", name_,
                     "\" is no longer retained; retained versions are ", oldest,
                     " to ", newest));
  }
  return retained_[version - oldest];
}

absl::StatusOr<Predictions> Model::Predict(
    absl::Span<const FeaturesView> instances, uint64_t version,
    const PredictOptions& options) const {
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v = Version(version);
  // Instances are checked first, against the version asked for (or the
  // newest, if it does not exist): only num_classes differs between
  // versions, and instances do not depend on it.
  const ModelSpec& spec = v.ok() ? (*v)->spec() : Latest()->spec();
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
  if (!options.remember) return (*v)->Predict(instances);
  std::vector<float> raw;
  Predictions p = (*v)->Predict(instances, &raw);
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
  *counters = head_->counters();
  // Holdout examples join the validation set; the others are learned.
  absl::Span<const ExampleView> trained = examples;
  std::vector<ExampleView> trained_split, holdout;
  if (std::any_of(examples.begin(), examples.end(),
                  [](const ExampleView& e) { return e.holdout; })) {
    if (spec_->guardrail.holdout_capacity == 0) {
      return absl::InvalidArgumentError(
          "examples: holdout examples sent to a model that keeps none "
          "(spec.guardrail.holdout_capacity is 0)");
    }
    for (const ExampleView& e : examples) {
      (e.holdout ? holdout : trained_split).push_back(e);
    }
    trained = trained_split;
  }
  const GuardrailConfig& guardrail = spec_->guardrail;
  const bool quarantine = guardrail.policy == GuardrailPolicy::kQuarantine;
  const float rate_scale = adaptation_.learning_rate_scale();
  std::vector<ReleasedUpdate> released;
  int32_t dropped = 0;
  if (quarantine) {
    // The update's holdout examples join the validation set first, so that
    // the checks below see the freshest validation data: that is what can
    // clear an update held back before.
    if (!holdout.empty()) {
      adaptation_.AddHoldout(holdout);
      ValidateLocked();
    }
  }
  double validation_loss = adaptation_.validation_loss();
  if (quarantine) {
    RecheckQuarantineLocked(rate_scale, counters, &validation_loss, &released,
                            &dropped, events);
  }
  const float learning_rate =
      options.learning_rate.value_or(spec_->optimizer.learning_rate);
  BatchMetrics metrics;
  std::vector<float> losses;
  if (!trained.empty()) {
    if (!learner_.Learn(trained, options.epochs, learning_rate * rate_scale,
                        &counters->steps, &metrics)) {
      UndoLocked();
      return absl::InvalidArgumentError(
          "examples: this update would make a weight non-finite (overflow), "
          "so none of it was applied; scale the features down or lower the "
          "learning rate");
    }
    const absl::Span<const float> l = learner_.example_losses();
    losses.assign(l.begin(), l.end());
  }
  bool held_back = false;
  const std::shared_ptr<const HoldoutSet> validation = adaptation_.holdout();
  if (guardrail.policy != GuardrailPolicy::kOff && !trained.empty() &&
      validation->size() >= guardrail.min_holdout) {
    const double after = MeanLoss(learner_.Evaluate(validation->Views()));
    if (after > validation_loss * (1.0 + guardrail.tolerance)) {
      const std::string losses_text = absl::StrFormat(
          "this update would raise the validation loss on %d holdout "
          "examples from %.6g to %.6g (more than the tolerated %.4g%%)",
          validation->size(), validation_loss, after,
          100.0 * guardrail.tolerance);
      if (!quarantine) {
        learner_.Restore(head_->table());
        return absl::FailedPreconditionError(absl::StrCat(
            "guardrail: ", losses_text, ", so none of it was applied"));
      }
      RelearnLocked(released, rate_scale, counters);
      held_back = true;
      ModelEvent held;
      held.kind = ModelEvent::Kind::kUpdateQuarantined;
      held.example = counters->examples_seen;
      held.detail = absl::StrCat(losses_text, ": held back until ",
                                 guardrail.recheck_holdout,
                                 " newer holdout examples have arrived");
      events->push_back(std::move(held));
      adaptation_.Quarantine(head_->version() + 1, trained, options,
                             counters->examples_seen, events);
    }
  }
  // The drift detector and policy see what was learned, in order: the
  // released updates, then this one's examples.
  for (const ReleasedUpdate& r : released) {
    adaptation_.Observe(r.views, r.losses, counters->examples_seen,
                        r.update->options.epochs, r.learning_rate, events);
    counters->examples_seen += r.views.size();
    counters->weight_seen += r.metrics.weight;
    counters->loss_sum += r.metrics.loss_sum;
    counters->correct_weight += r.metrics.correct_weight;
  }
  if (!held_back) {
    adaptation_.Observe(trained, losses, counters->examples_seen,
                        options.epochs, learning_rate, events);
    counters->examples_seen += trained.size();
    counters->weight_seen += metrics.weight;
    counters->loss_sum += metrics.loss_sum;
    counters->correct_weight += metrics.correct_weight;
  }
  if (adaptation_.promotion_due()) {
    learner_.Load(adaptation_.challenger_params());
    adaptation_.Promoted();
  }
  if (!quarantine) adaptation_.AddHoldout(holdout);
  if (!trained.empty() || !holdout.empty() || !released.empty()) {
    ValidateLocked();
  }
  counters->updates += 1;
  *result = ResultOf(*spec_, head_->version() + 1, examples.size(), metrics);
  result->quarantined = held_back;
  result->quarantine_released = static_cast<int32_t>(released.size());
  result->quarantine_dropped = dropped;
  return absl::OkStatus();
}

void Model::RecheckQuarantineLocked(float rate_scale, ModelCounters* counters,
                                    double* validation_loss,
                                    std::vector<ReleasedUpdate>* released,
                                    int32_t* dropped,
                                    std::vector<ModelEvent>* events) {
  const GuardrailConfig& guardrail = spec_->guardrail;
  const std::shared_ptr<const HoldoutSet> validation = adaptation_.holdout();
  if (validation->size() < guardrail.min_holdout) return;
  const QuarantineList held = adaptation_.quarantine();
  std::vector<size_t> released_at, dropped_at;
  for (size_t i = 0; i < held.size(); ++i) {
    const QuarantinedUpdate& q = *held[i];
    if (adaptation_.holdout_added() - q.holdout_mark <
        static_cast<uint64_t>(guardrail.recheck_holdout)) {
      continue;
    }
    ReleasedUpdate r;
    r.update = held[i];
    r.views = Views(q.examples);
    r.learning_rate =
        q.options.learning_rate.value_or(spec_->optimizer.learning_rate);
    const bool finite =
        learner_.Learn(r.views, q.options.epochs, r.learning_rate * rate_scale,
                       &counters->steps, &r.metrics);
    if (finite) {
      // Before Evaluate, which scores into the same buffer.
      const absl::Span<const float> l = learner_.example_losses();
      r.losses.assign(l.begin(), l.end());
    }
    const double after =
        finite ? MeanLoss(learner_.Evaluate(validation->Views())) : 0;
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
      RelearnLocked(*released, rate_scale, counters);
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
  adaptation_.EndQuarantine(released_at, dropped_at);
  *dropped = static_cast<int32_t>(dropped_at.size());
}

void Model::RelearnLocked(absl::Span<const ReleasedUpdate> released,
                          float rate_scale, ModelCounters* counters) {
  learner_.Restore(head_->table());
  counters->steps = head_->counters().steps;
  for (const ReleasedUpdate& r : released) {
    BatchMetrics again;
    // Learned once already from the same weights: it cannot overflow now.
    learner_.Learn(r.views, r.update->options.epochs,
                   r.learning_rate * rate_scale, &counters->steps, &again);
  }
}

void Model::ValidateLocked() {
  const HoldoutSet& validation = *adaptation_.holdout();
  if (validation.size() == 0) return;
  const BatchMetrics m = learner_.Evaluate(validation.Views());
  adaptation_.SetValidation(MeanLoss(m), m.weight > 0 && spec_->is_classifier()
                                             ? m.correct_weight / m.weight
                                             : 0);
}

void Model::UndoLocked() {
  learner_.Restore(head_->table());
  adaptation_.Reset(*head_->adaptation());
}

std::shared_ptr<const ModelVersion> Model::CommitLocked(
    const ModelCounters& counters) {
  const uint64_t version = head_->version() + 1;
  // The first version in a new arena (after AddClasses) has no base.
  const ParamTable* base =
      head_->arena() == arena_.get() ? &head_->table() : nullptr;
  ParamTable table = arena_->Publish(
      version, base, learner_.dirty_pages(),
      [this](int64_t p, float* dst) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        learner_.FillPage(p, dst);  // runs inside Publish, under update_mu_
      });
  learner_.ClearDirty();
  learner_bytes_ = learner_.memory_bytes();
  head_ = std::make_shared<const ModelVersion>(version, spec_, arena_, table,
                                               counters, absl::Now(),
                                               adaptation_.Commit(version));
  return head_;
}

absl::Status Model::SpecChangedLocked(
    const ModelSpec& validated, absl::Span<const ExampleView> examples) const {
  if (&validated == spec_.get()) return absl::OkStatus();
  LEPTON_RETURN_IF_ERROR(ValidateExamples(*spec_, examples));
  return ValidatePredictionReferences(examples, spec_->num_outputs());
}

void Model::Remember(absl::string_view update_id, const UpdateResult& result,
                     uint64_t log_position) {
  if (update_id.empty() || options_.remembered_update_ids <= 0) return;
  auto [it, inserted] = remembered_.try_emplace(
      update_id, RememberedUpdate{result, log_position});
  if (!inserted) return;
  remembered_order_.emplace_back(update_id);
  while (remembered_order_.size() >
         static_cast<size_t>(options_.remembered_update_ids)) {
    remembered_.erase(remembered_order_.front());
    remembered_order_.pop_front();
  }
}

void Model::StartUpdate(absl::Span<const ExampleView> examples,
                        const UpdateOptions& options,
                        absl::string_view update_id, UpdateCallback done) {
  // Validated without the lock, against the newest published spec; checked
  // again under it if AddClasses changed the spec meanwhile (which changes
  // nothing that hashing uses).
  const std::shared_ptr<const ModelVersion> validated_at = Latest();
  const ModelSpec* validated_spec = &validated_at->spec();
  // Named features are hashed first; the log records the hashed examples,
  // and the views need to live only until this call returns.
  std::vector<ExampleView> hashed_examples;
  HashedFeatures hashed;
  if (HasNamespaces(examples)) {
    hashed_examples.assign(examples.begin(), examples.end());
    absl::Status s = HashNamedBatch(
        *validated_spec, static_cast<int>(examples.size()), "examples",
        [&](int i) -> FeaturesView& { return hashed_examples[i].features; },
        [](int i) { return absl::StrCat("examples[", i, "].features"); },
        &hashed);
    if (!s.ok()) {
      done(s);
      return;
    }
    examples = hashed_examples;
  }
  absl::Status invalid = ValidateUpdateOptions(options);
  if (invalid.ok() && update_id.size() > kMaxUpdateIdLength) {
    invalid = absl::InvalidArgumentError(
        absl::StrCat("update_id: at most ", kMaxUpdateIdLength, " bytes, got ",
                     update_id.size()));
  }
  if (invalid.ok()) invalid = ValidateExamples(*validated_spec, examples);
  if (invalid.ok()) {
    invalid =
        ValidatePredictionReferences(examples, validated_spec->num_outputs());
  }
  if (!invalid.ok()) {
    done(invalid);
    return;
  }
  const bool sync_before_answer =
      files_ != nullptr && options_.files->fsync == FsyncPolicy::kAlways;
  std::optional<absl::StatusOr<UpdateResult>> answer;
  std::vector<ModelEvent> events;
  uint64_t events_version = 0;
  {
    MutexLock lock(&update_mu_);
    if (retired_) {
      answer =
          absl::NotFoundError(absl::StrCat("model \"", name_, "\" not found"));
    } else if (files_ != nullptr && !files_->journal().status().ok()) {
      answer = NotApplied(name_, "this update", files_->journal().status());
    } else if (absl::Status changed =
                   SpecChangedLocked(*validated_spec, examples);
               !changed.ok()) {
      answer = changed;
    } else if (auto it = remembered_.find(update_id); it != remembered_.end()) {
      // A retry: the original's answer, once the original's record is
      // durable.
      const RememberedUpdate& original = it->second;
      if (sync_before_answer &&
          original.log_position > files_->journal().durable()) {
        MutexLock pending_lock(&pending_mu_);
        pending_.push_back({nullptr,
                            original.log_position,
                            original.result,
                            std::move(done),
                            {}});
      } else {
        answer = original.result;
      }
    } else if (absl::StatusOr<PredictionCache::Claim> claim =
                   prediction_cache_.Resolve(examples, spec_->num_outputs());
               !claim.ok()) {
      answer = claim.status();
    } else {
      // Delayed labels resolved to the cached features and served outputs;
      // claim releases them again unless the update applies.
      const absl::Span<const ExampleView> resolved = claim->examples();
      ModelCounters counters;
      UpdateResult result;
      absl::Status status =
          LearnLocked(resolved, options, &counters, &result, &events);
      uint64_t log_position = 0;
      if (status.ok() && files_ != nullptr) {
        // Logged before the version is built: a failed append leaves nothing
        // to take back but the learner's changes.
        std::string record;
        AppendUpdateRecord(result.version, update_id, options, resolved,
                           &record);
        absl::StatusOr<uint64_t> appended =
            record.size() - kRecordHeaderBytes > kMaxRecordPayloadBytes
                ? absl::InvalidArgumentError(absl::StrCat(
                      "examples: this update takes ", record.size(),
                      " bytes to log, more than a log record holds (",
                      kMaxRecordPayloadBytes, "); split it"))
                : files_->journal().Append(record);
        if (appended.ok()) {
          log_position = *appended;
        } else {
          UndoLocked();
          status = absl::IsInvalidArgument(appended.status())
                       ? appended.status()
                       : NotApplied(name_, "this update", appended.status());
        }
      }
      if (!status.ok()) {
        answer = status;
        events.clear();
        events_version = head_->version();
        if (absl::IsFailedPrecondition(status)) {
          ++refused_updates_;
          ModelEvent refused;
          refused.kind = ModelEvent::Kind::kUpdateRefused;
          refused.example = head_->counters().examples_seen;
          refused.detail = std::string(status.message());
          events.push_back(std::move(refused));
        }
      } else {
        std::shared_ptr<const ModelVersion> version = CommitLocked(counters);
        Remember(update_id, result, log_position);
        claim->Commit();
        if (events_.has_listeners()) {
          ModelEvent published;
          published.kind = ModelEvent::Kind::kVersion;
          published.example = counters.examples_seen;
          events.push_back(std::move(published));
        }
        events_version = version->version();
        if (sync_before_answer) {
          MutexLock pending_lock(&pending_mu_);
          pending_.push_back({std::move(version), log_position, result,
                              std::move(done), std::move(events)});
          events.clear();
        } else {
          Publish(std::move(version));
          answer = result;
        }
      }
    }
  }
  if (files_ != nullptr && !answer.has_value()) RequestSync();
  if (files_ != nullptr && answer.has_value() && answer->ok() &&
      options_.files->fsync == FsyncPolicy::kInterval) {
    RequestSync();
  }
  if (!events.empty()) Emit(std::move(events), events_version);
  if (answer.has_value()) done(*std::move(answer));
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

std::vector<Model::Pending> Model::TakeDurable(uint64_t position) {
  std::vector<Pending> done;
  MutexLock lock(&pending_mu_);
  // In log order: publish every version the log made durable.
  while (!pending_.empty() && pending_.front().log_position <= position) {
    if (pending_.front().version != nullptr) Publish(pending_.front().version);
    done.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  // Retries queued behind later updates need not wait for those.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->version == nullptr && it->log_position <= position) {
      done.push_back(std::move(*it));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

void Model::CompletePending(uint64_t position) {
  for (Pending& p : TakeDurable(position)) {
    if (p.version != nullptr) Emit(std::move(p.events), p.version->version());
    p.done(p.result);
  }
}

void Model::FailPending(const absl::Status& error) {
  // What an earlier sync made durable is answered as usual, even if this
  // sync failed before its caller got to it.
  std::vector<Pending> durable = TakeDurable(files_->journal().durable());
  std::deque<Pending> failed;
  {
    MutexLock lock(&pending_mu_);
    failed.swap(pending_);
  }
  for (Pending& p : durable) {
    if (p.version != nullptr) Emit(std::move(p.events), p.version->version());
    p.done(p.result);
  }
  // Their versions stay unpublished (in the learner and head_ too, which is
  // safe only because the journal is broken: the model takes no further
  // change until the server restarts and recovers from the disk).
  for (Pending& p : failed) p.done(error);
}

std::vector<RecentUpdate> Model::RememberedUpTo(uint64_t version) const {
  std::vector<RecentUpdate> recent;
  for (const std::string& id : remembered_order_) {
    const RememberedUpdate& r = remembered_.at(id);
    if (r.result.version <= version) recent.push_back({id, r.result});
  }
  return recent;
}

ModelState Model::StateOf(const ModelVersion& v) const {
  ModelState state = CaptureState(v, name_, created_);
  state.recent_updates = RememberedUpTo(v.version());
  return state;
}

absl::StatusOr<ModelState> Model::State(uint64_t version) const {
  absl::StatusOr<std::shared_ptr<const ModelVersion>> retained =
      Version(version);
  if (retained.ok()) {
    std::vector<RecentUpdate> recent;
    {
      MutexLock lock(&update_mu_);
      recent = RememberedUpTo((*retained)->version());
    }
    // The version is immutable: copied without blocking updates.
    ModelState state = CaptureState(**retained, name_, created_);
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

absl::StatusOr<uint64_t> Model::Rollback(uint64_t version) {
  if (version == 0) {
    return absl::InvalidArgumentError("version: must be > 0");
  }
  LEPTON_ASSIGN_OR_RETURN(ModelState target, State(version));
  // Callers of updates this rollback makes durable (or fails) are answered
  // after the locks are released: their callbacks may call the model.
  std::vector<Pending> answered;
  absl::Status sync_error;
  ModelEvent rollback_event;
  absl::StatusOr<uint64_t> result = [&]() -> absl::StatusOr<uint64_t> {
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
      state.recent_updates = RememberedUpTo(new_version);
      state.adaptation = CaptureAdaptation(*head_->adaptation());
      state.adaptation.validation_loss = adaptation_.validation_loss();
      state.adaptation.validation_accuracy = adaptation_.validation_accuracy();
      if (absl::Status s =
              WriteCheckpointedVersionLocked("the rollback", state);
          !s.ok()) {
        UndoLocked();
        return s;
      }
    }
    rollback_event.example = counters.examples_seen;
    rollback_event.detail = absl::StrCat("rolled back to version ", version);
    Publish(CommitLocked(counters));
    return new_version;
  }();
  for (Pending& p : answered) {
    if (p.version != nullptr) Emit(std::move(p.events), p.version->version());
    p.done(p.result);
  }
  if (result.ok()) Emit({std::move(rollback_event)}, *result);
  if (!sync_error.ok()) FailPending(OutcomeUnknown(name_, sync_error));
  return result;
}

absl::Status Model::SyncBeforeCheckpointedVersionLocked(
    absl::string_view what, std::vector<Pending>* answered,
    absl::Status* sync_error) {
  if (!files_->journal().status().ok()) {
    return NotApplied(name_, what, files_->journal().status());
  }
  absl::StatusOr<uint64_t> durable = files_->journal().Sync();
  if (!durable.ok()) {
    *sync_error = durable.status();
    return NotApplied(name_, what, durable.status());
  }
  *answered = TakeDurable(*durable);
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

absl::StatusOr<uint64_t> Model::AddClasses(int32_t num_classes) {
  // As in Rollback: the callers of the updates it makes durable are answered
  // once the locks are released.
  std::vector<Pending> answered;
  absl::Status sync_error;
  std::vector<ModelEvent> events;
  bool grown = false;
  absl::StatusOr<uint64_t> result = [&]() -> absl::StatusOr<uint64_t> {
    MutexLock checkpoint_lock(&checkpoint_mu_);
    MutexLock lock(&update_mu_);
    if (retired_) {
      return absl::NotFoundError(
          absl::StrCat("model \"", name_, "\" not found"));
    }
    const ModelSpec& spec = *spec_;
    if (spec.type != ModelType::kSoftmaxRegression) {
      return absl::FailedPreconditionError(absl::StrCat(
          "num_classes: only SOFTMAX_REGRESSION models have classes; model \"",
          name_, "\" is ", ModelTypeName(spec.type)));
    }
    const int32_t k = spec.num_classes;
    if (num_classes < k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_classes: must be greater than the model's ", k,
          " classes (classes are never removed), got ", num_classes));
    }
    // Already that many: a retry of a call that succeeded.
    if (num_classes == k) return head_->version();
    if (num_classes > kMaxClasses) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_classes: must be at most ", kMaxClasses, ", got ", num_classes));
    }
    const int64_t rows = spec.num_features + 1;
    if (rows * num_classes > kMaxParameters) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_classes: (num_features + 1) * num_classes must be at most ",
          kMaxParameters, ", got ", rows, " * ", num_classes));
    }
    auto grown_spec = std::make_shared<ModelSpec>(spec);
    grown_spec->num_classes = num_classes;
    LEPTON_RETURN_IF_ERROR(ValidateModelSpec(*grown_spec));
    if (files_ != nullptr) {
      LEPTON_RETURN_IF_ERROR(SyncBeforeCheckpointedVersionLocked(
          "adding classes", &answered, &sync_error));
    }
    // The grown learner: the initial state (zero weights, the optimizer's
    // initial state), then every existing row copied into the new stride.
    // A full copy: this is a rare administrative change.
    Learner learner(*grown_spec);
    {
      const absl::Span<const float> from = learner_.params();
      std::vector<float> to(learner.params().begin(), learner.params().end());
      const int64_t arrays = learner_.layout().arrays;
      for (int64_t r = 0; r < arrays * rows; ++r) {
        std::copy_n(from.data() + r * k, k, to.data() + r * num_classes);
      }
      learner.Load(to);
    }
    // The holdout set, scored by the grown weights (the new classes' logits
    // of 0 change the old classes' probabilities through the normalization).
    const HoldoutSet& validation = *adaptation_.holdout();
    BatchMetrics scored;
    if (validation.size() > 0) scored = learner.Evaluate(validation.Views());
    const double validation_loss = validation.size() > 0
                                       ? MeanLoss(scored)
                                       : adaptation_.validation_loss();
    const double validation_accuracy =
        validation.size() > 0
            ? (scored.weight > 0 ? scored.correct_weight / scored.weight : 0)
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
      state.params.assign(learner.params().begin(), learner.params().end());
      state.recent_updates = RememberedUpTo(new_version);
      // What ClassesAdded below leaves (see ClassesAddedState).
      AdaptationState& a = state.adaptation;
      a = ClassesAddedState(CaptureAdaptation(*head_->adaptation()),
                            grown_spec->num_outputs());
      a.validation_loss = validation_loss;
      a.validation_accuracy = validation_accuracy;
      LEPTON_RETURN_IF_ERROR(
          WriteCheckpointedVersionLocked("adding classes", state));
    }
    // Nothing can fail from here on.
    spec_ = grown_spec;
    learner_ = std::move(learner);
    arena_ = std::make_shared<PageArena>(learner_.layout());
    adaptation_.ClassesAdded(spec_, counters.examples_seen, &events);
    if (validation.size() > 0) {
      adaptation_.SetValidation(validation_loss, validation_accuracy);
    }
    ModelEvent added;
    added.kind = ModelEvent::Kind::kClassesAdded;
    added.example = counters.examples_seen;
    added.detail = absl::StrCat("num_classes ", k, " -> ", num_classes);
    events.push_back(std::move(added));
    Publish(CommitLocked(counters));
    grown = true;
    return new_version;
  }();
  for (Pending& p : answered) {
    if (p.version != nullptr) Emit(std::move(p.events), p.version->version());
    p.done(p.result);
  }
  if (grown) Emit(std::move(events), *result);
  if (!sync_error.ok()) FailPending(OutcomeUnknown(name_, sync_error));
  return result;
}

absl::Status Model::Checkpoint(bool force) {
  if (files_ == nullptr) return absl::OkStatus();
  MutexLock checkpoint_lock(&checkpoint_mu_);
  std::shared_ptr<const ModelVersion> version;
  std::vector<RecentUpdate> recent;
  {
    MutexLock lock(&update_mu_);
    if (retired_) return absl::OkStatus();
    version = Latest();
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
    recent = RememberedUpTo(version->version());
  }
  // The version is immutable: copy and write it without blocking updates.
  ModelState state = CaptureState(*version, name_, created_);
  state.recent_updates = std::move(recent);
  LEPTON_RETURN_IF_ERROR(files_->WriteCheckpoint(state));
  {
    MutexLock lock(&update_mu_);
    last_checkpoint_ = std::max(last_checkpoint_, version->version());
    last_checkpoint_time_ = absl::Now();
  }
  return files_->RemoveObsolete();
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
}

void Model::Publish(std::shared_ptr<const ModelVersion> version) {
  std::shared_ptr<const ModelVersion> evicted;
  {
    MutexLock lock(&versions_mu_);
    retained_.push_back(std::move(version));
    if (retained_.size() >
        static_cast<size_t>(std::max(1, options_.retained_versions))) {
      evicted = std::move(retained_.front());
      retained_.pop_front();
    }
  }
  // If no reader holds it, the evicted version (and the pages only it
  // reached) is freed here, outside the lock.
}

namespace {

// Exactly nonzero floats of array 0 (the weights), page by page.
int64_t CountNonzeroWeights(const ParamTable& table) {
  const PageLayout& layout = table.layout();
  int64_t count = 0;
  for (int64_t p = 0; p < layout.num_pages; ++p) {
    const int64_t first = p << layout.row_shift;
    const int64_t rows = std::min(layout.rows_per_page(), layout.rows - first);
    const float* weights = table.page(p);  // block 0 = the weights
    for (int64_t i = 0; i < rows * layout.outputs; ++i) {
      count += weights[i] != 0.0f;
    }
  }
  return count;
}

}  // namespace

ModelInfo Model::Info() const {
  ModelInfo info;
  info.name = name_;
  info.created = created_;
  std::shared_ptr<const ModelVersion> newest;
  // One retained version per arena (more than one arena after AddClasses):
  // the handles keep the arenas alive until they are counted.
  std::vector<std::shared_ptr<const ModelVersion>> arenas;
  {
    ReaderMutexLock lock(&versions_mu_);
    for (const auto& v : retained_) {
      info.retained_versions.push_back(v->version());
      if (arenas.empty() || arenas.back()->arena() != v->arena()) {
        arenas.push_back(v);
      }
    }
    newest = retained_.back();
  }
  info.spec = newest->spec();
  info.version = newest->version();
  info.counters = newest->counters();
  info.updated = newest->published();
  const AdaptationSnapshot& a = *newest->adaptation();
  ModelInfo::Adaptation& out = info.adaptation;
  out.drift_state = a.drift_state;
  out.drifts = a.drifts;
  out.change_example = a.change_example;
  out.mean_loss_before = a.mean_before;
  out.mean_loss_after = a.detector != nullptr ? a.detector->mean() : 0;
  out.boost_remaining = a.boost_remaining;
  if (a.challenger != nullptr) {
    out.challenger_active = true;
    out.challenger_started_at = a.challenger->started_at;
    out.challenger_examples = a.challenger->examples;
  }
  out.promotions = a.promotions;
  out.holdout_examples = a.holdout->size();
  out.validation_loss = a.validation_loss;
  out.validation_accuracy = a.validation_accuracy;
  out.refused_updates = refused_updates_.load();
  out.quarantine_held = static_cast<int64_t>(a.quarantine.size());
  out.quarantined_updates = a.quarantined;
  out.quarantine_released = a.released;
  out.quarantine_dropped = a.dropped;
  // Outside the lock: the handle keeps the version's pages alive.
  info.nonzero_weights = CountNonzeroWeights(newest->table());
  if (files_ != nullptr) {
    info.checkpointed_versions = files_->checkpoint_versions();
  }
  info.memory_bytes = learner_bytes_.load();
  for (const auto& v : arenas) info.memory_bytes += v->arena()->memory_bytes();
  return info;
}

}  // namespace lepton
