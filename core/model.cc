#include "core/model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/validation.h"

namespace lepton {
namespace {

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

}  // namespace

Model::Model(std::string name, const ModelSpec& spec, int32_t retained_versions)
    : name_(std::move(name)),
      spec_(std::make_shared<const ModelSpec>(spec)),
      retained_versions_(static_cast<size_t>(std::max(1, retained_versions))),
      created_(absl::Now()),
      learner_(spec),
      arena_(std::make_shared<PageArena>(learner_.layout())) {
  MutexLock lock(&update_mu_);
  ParamTable table = arena_->Publish(
      1, nullptr, {},
      [this](int64_t p, float* dst) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        learner_.FillPage(p, dst);  // runs inside Publish, under update_mu_
      });
  learner_bytes_ = learner_.memory_bytes();
  Publish(std::make_shared<const ModelVersion>(1, spec_, arena_, table,
                                               ModelCounters{}, created_));
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
    absl::Span<const FeaturesView> instances, uint64_t version) const {
  if (absl::Status s = ValidateInstances(*spec_, instances); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v = Version(version);
  if (!v.ok()) return v.status();
  return (*v)->Predict(instances);
}

absl::StatusOr<UpdateResult> Model::Update(
    absl::Span<const ExampleView> examples, const UpdateOptions& options) {
  if (absl::Status s = ValidateUpdateOptions(options); !s.ok()) return s;
  if (absl::Status s = ValidateExamples(*spec_, examples); !s.ok()) return s;

  MutexLock lock(&update_mu_);
  // Only this thread publishes, so the newest version stays `base`.
  const std::shared_ptr<const ModelVersion> base = Latest();
  ModelCounters counters = base->counters();
  const float learning_rate =
      options.learning_rate.value_or(spec_->optimizer.learning_rate);
  BatchMetrics metrics;
  if (!learner_.Learn(examples, options.epochs, learning_rate, &counters.steps,
                      &metrics)) {
    learner_.Restore(base->table());
    return absl::InvalidArgumentError(
        "examples: this update would make a weight non-finite (overflow), so "
        "none of it was applied; scale the features down or lower the "
        "learning rate");
  }
  counters.examples_seen += examples.size();
  counters.updates += 1;
  counters.weight_seen += metrics.weight;
  counters.loss_sum += metrics.loss_sum;
  counters.correct_weight += metrics.correct_weight;

  const uint64_t version = base->version() + 1;
  ParamTable table = arena_->Publish(
      version, &base->table(), learner_.dirty_pages(),
      [this](int64_t p, float* dst) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        learner_.FillPage(p, dst);  // runs inside Publish, under update_mu_
      });
  learner_.ClearDirty();
  learner_bytes_ = learner_.memory_bytes();
  Publish(std::make_shared<const ModelVersion>(version, spec_, arena_, table,
                                               counters, absl::Now()));

  UpdateResult result;
  result.version = version;
  result.examples = static_cast<int64_t>(examples.size());
  if (metrics.weight > 0) {
    result.loss_before = metrics.loss_sum / metrics.weight;
    if (spec_->is_classifier()) {
      result.accuracy_before = metrics.correct_weight / metrics.weight;
    }
  } else if (spec_->is_classifier()) {
    result.accuracy_before = 0;
  }
  return result;
}

void Model::Publish(std::shared_ptr<const ModelVersion> version) {
  std::shared_ptr<const ModelVersion> evicted;
  {
    MutexLock lock(&versions_mu_);
    retained_.push_back(std::move(version));
    if (retained_.size() > retained_versions_) {
      evicted = std::move(retained_.front());
      retained_.pop_front();
    }
  }
  // If no reader holds it, the evicted version (and the pages only it
  // reached) is freed here, outside the lock.
}

ModelInfo Model::Info() const {
  ModelInfo info;
  info.name = name_;
  info.spec = *spec_;
  info.created = created_;
  {
    ReaderMutexLock lock(&versions_mu_);
    for (const auto& v : retained_)
      info.retained_versions.push_back(v->version());
    const ModelVersion& newest = *retained_.back();
    info.version = newest.version();
    info.counters = newest.counters();
    info.updated = newest.published();
  }
  info.memory_bytes = arena_->memory_bytes() + learner_bytes_.load();
  return info;
}

}  // namespace lepton
