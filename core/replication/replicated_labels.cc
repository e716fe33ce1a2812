// ReplicatedStore's delayed labels across nodes (replicated_store.h): the
// predictions a node keeps are shared in the log's value store, and an
// update takes them from there, each once.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/learning/added_classes.h"
#include "core/learning/model_version.h"
#include "core/replication/replicated_store.h"

namespace lepton {
namespace {

// Where a prediction kept for a delayed label is shared.
std::string PredictionKey(absl::string_view name, uint64_t id) {
  return absl::StrCat("prediction:", name, ":", id);
}

}  // namespace

absl::Status ReplicatedStore::SharePredictions(absl::string_view name,
                                               absl::Span<const uint64_t> ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<RememberedPrediction>> kept =
      store_->RememberedPredictions(name, ids);
  if (!kept.ok()) return kept.status();
  const absl::Duration ttl = store_->options().prediction_ttl;
  const absl::Time expires = absl::Now() + ttl;
  std::vector<std::pair<std::string, std::string>> values;
  values.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    values.emplace_back(PredictionKey(name, ids[i]),
                        EncodeSharedPrediction((*kept)[i], expires));
  }
  absl::Status shared = log_->PutAll(values, ttl);
  if (!shared.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the prediction ids could not be shared with the cluster (",
        shared.message(), "): ask again"));
  }
  return absl::OkStatus();
}

absl::Status ReplicatedStore::TakePredictions(
    absl::string_view name, std::vector<ExampleView>* views,
    std::vector<Example>* owned,
    std::vector<std::pair<std::string, std::string>>* taken) {
  int32_t num_outputs = 0;
  for (size_t i = 0; i < views->size(); ++i) {
    ExampleView& v = (*views)[i];
    if (v.prediction_id == 0) continue;
    if (num_outputs == 0) {
      absl::StatusOr<std::shared_ptr<const ModelVersion>> newest =
          store_->AcquireVersion(name);
      if (!newest.ok()) return newest.status();
      num_outputs = (*newest)->spec().num_outputs();
    }
    if (!v.features.dense.empty() || !v.features.indices.empty() ||
        !v.features.namespaces.empty() || !v.served_outputs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i,
                       "]: an example with a prediction_id carries no "
                       "features and no served outputs"));
    }
    const std::string key = PredictionKey(name, v.prediction_id);
    absl::StatusOr<std::optional<std::string>> value = log_->Take(key);
    if (!value.ok()) {
      return absl::UnavailableError(
          absl::StrCat("examples[", i,
                       "].prediction_id: the cluster's kept predictions "
                       "could not be reached (",
                       value.status().message(), ")"));
    }
    absl::Time expires;
    absl::StatusOr<RememberedPrediction> p =
        value->has_value() ? DecodeSharedPrediction(**value, &expires)
                           : absl::NotFoundError("");
    if (!p.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "examples[", i, "].prediction_id: ", v.prediction_id,
          " is unknown or expired, or its label was already given"));
    }
    taken->emplace_back(key, **value);
    Example& e = (*owned)[i];
    e.features = std::move(p->features);
    e.served_outputs = PadServedOutputs(p->outputs, num_outputs);
    v.features = e.features.view();
    v.served_outputs = e.served_outputs;
    v.prediction_id = 0;
  }
  return absl::OkStatus();
}

void ReplicatedStore::GiveBack(
    const std::vector<std::pair<std::string, std::string>>& taken) {
  for (const auto& [key, value] : taken) {
    absl::Time expires;
    if (!DecodeSharedPrediction(value, &expires).ok()) continue;
    const absl::Duration left = expires - absl::Now();
    if (left > absl::ZeroDuration()) log_->Put(key, value, left).IgnoreError();
  }
}

}  // namespace lepton
