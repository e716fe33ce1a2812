#include "server/convert.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/convert_adaptation.h"

namespace lepton::server {
namespace {

void TimeToProto(absl::Time t, google::protobuf::Timestamp* proto) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  proto->set_seconds(seconds);
  proto->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

}  // namespace

absl::StatusOr<ModelSpec> SpecFromProto(const v1::ModelSpec& proto) {
  // Open proto3 enums carry any integer; the core's enums hold only these.
  if (!v1::ModelType_IsValid(proto.type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.type: unknown value ", proto.type()));
  }
  if (!v1::OptimizerKind_IsValid(proto.optimizer().kind())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.optimizer.kind: unknown value ", proto.optimizer().kind()));
  }
  ModelSpec spec;  // its defaults are the wire's defaults for unset fields
  spec.type = static_cast<ModelType>(proto.type());
  spec.num_features = proto.num_features();
  spec.num_classes = proto.num_classes();
  spec.l2 = proto.l2();
  if (proto.minibatch_size() != 0) spec.minibatch_size = proto.minibatch_size();
  const v1::Optimizer& o = proto.optimizer();
  if (o.kind() != v1::OPTIMIZER_KIND_UNSPECIFIED) {
    spec.optimizer.kind = static_cast<OptimizerKind>(o.kind());
  }
  if (o.learning_rate() != 0) spec.optimizer.learning_rate = o.learning_rate();
  if (o.epsilon() != 0) spec.optimizer.epsilon = o.epsilon();
  spec.optimizer.power_t = o.power_t();
  spec.optimizer.initial_accumulator = o.initial_accumulator();
  // beta, beta1 and beta2 have nonzero defaults, so 0 (unset) means those.
  if (o.beta() != 0) spec.optimizer.beta = o.beta();
  spec.optimizer.l1 = o.l1();
  if (o.beta1() != 0) spec.optimizer.beta1 = o.beta1();
  if (o.beta2() != 0) spec.optimizer.beta2 = o.beta2();
  spec.max_gradient_norm = proto.max_gradient_norm();
  spec.max_step = proto.max_step();
  if (absl::Status s = AdaptationFromProto(proto, &spec); !s.ok()) return s;
  spec.hash_seed = proto.hash_seed();
  spec.interactions.assign(proto.interactions().begin(),
                           proto.interactions().end());
  return spec;
}

void SpecToProto(const ModelSpec& spec, v1::ModelSpec* proto) {
  proto->set_type(static_cast<v1::ModelType>(spec.type));
  proto->set_num_features(spec.num_features);
  proto->set_num_classes(spec.num_classes);
  proto->set_l2(spec.l2);
  proto->set_minibatch_size(spec.minibatch_size);
  v1::Optimizer* o = proto->mutable_optimizer();
  o->set_kind(static_cast<v1::OptimizerKind>(spec.optimizer.kind));
  o->set_learning_rate(spec.optimizer.learning_rate);
  o->set_power_t(spec.optimizer.power_t);
  o->set_epsilon(spec.optimizer.epsilon);
  o->set_initial_accumulator(spec.optimizer.initial_accumulator);
  o->set_beta(spec.optimizer.beta);
  o->set_l1(spec.optimizer.l1);
  o->set_beta1(spec.optimizer.beta1);
  o->set_beta2(spec.optimizer.beta2);
  proto->set_max_gradient_norm(spec.max_gradient_norm);
  proto->set_max_step(spec.max_step);
  AdaptationToProto(spec, proto);
  proto->set_hash_seed(spec.hash_seed);
  for (const std::string& pair : spec.interactions) {
    proto->add_interactions(pair);
  }
}

void InfoToProto(const ModelInfo& info, v1::ModelInfo* proto) {
  proto->set_name(info.name);
  SpecToProto(info.spec, proto->mutable_spec());
  proto->set_version(info.version);
  const ModelCounters& c = info.counters;
  proto->set_examples_seen(c.examples_seen);
  proto->set_progressive_loss(c.progressive_loss());
  proto->set_progressive_accuracy(
      info.spec.is_classifier() ? c.progressive_accuracy() : 0);
  for (uint64_t v : info.retained_versions) proto->add_retained_versions(v);
  for (uint64_t v : info.checkpointed_versions) {
    proto->add_checkpointed_versions(v);
  }
  proto->set_updates(c.updates);
  proto->set_steps(c.steps);
  proto->set_weight_seen(c.weight_seen);
  proto->set_memory_bytes(info.memory_bytes);
  proto->set_nonzero_weights(info.nonzero_weights);
  TimeToProto(info.created, proto->mutable_create_time());
  TimeToProto(info.updated, proto->mutable_update_time());
  if (!info.update_log_error.ok()) {
    proto->set_update_log_error(std::string(info.update_log_error.message()));
  }
  AdaptationInfoToProto(info, proto);
}

absl::Span<const NamespaceView> NamedFeatureViews::Add(
    const v1::Features& proto) {
  if (proto.namespaces_size() == 0) return {};
  size_t total = 0;
  for (const v1::Namespace& ns : proto.namespaces()) {
    total += ns.features_size();
  }
  // Sized first, so that the namespaces' spans into it stay valid.
  std::vector<NamedFeatureView>& features = features_.emplace_back();
  features.reserve(total);
  std::vector<NamespaceView>& namespaces = namespaces_.emplace_back();
  namespaces.reserve(proto.namespaces_size());
  for (const v1::Namespace& ns : proto.namespaces()) {
    const size_t start = features.size();
    for (const v1::NamedFeature& f : ns.features()) {
      features.push_back({f.name(), f.has_value() ? f.value() : 1.0f});
    }
    namespaces.push_back(
        {ns.name(), absl::MakeConstSpan(features.data() + start,
                                        features.size() - start)});
  }
  return namespaces;
}

FeaturesView FeaturesOf(const v1::Features& proto, NamedFeatureViews* named) {
  return {absl::MakeConstSpan(proto.dense().data(), proto.dense_size()),
          absl::MakeConstSpan(proto.indices().data(), proto.indices_size()),
          absl::MakeConstSpan(proto.values().data(), proto.values_size()),
          named->Add(proto)};
}

std::vector<FeaturesView> InstancesOf(const v1::PredictRequest& request,
                                      NamedFeatureViews* named) {
  std::vector<FeaturesView> views;
  views.reserve(request.instances_size());
  for (const v1::Features& f : request.instances()) {
    views.push_back(FeaturesOf(f, named));
  }
  return views;
}

std::vector<ExampleView> ExamplesOf(const v1::UpdateRequest& request,
                                    NamedFeatureViews* named) {
  std::vector<ExampleView> views;
  views.reserve(request.examples_size());
  for (const v1::Example& e : request.examples()) {
    ExampleView v;
    v.features = FeaturesOf(e.features(), named);
    v.label = e.label();
    v.weight = e.has_weight() ? e.weight() : 1.0f;
    v.holdout = e.holdout();
    v.prediction_id = e.prediction_id();
    views.push_back(v);
  }
  return views;
}

PredictOptions PredictOptionsOf(const v1::PredictRequest& request) {
  PredictOptions options;
  options.remember = request.return_prediction_ids();
  return options;
}

UpdateOptions UpdateOptionsOf(const v1::UpdateRequest& request) {
  UpdateOptions options;
  if (request.epochs() != 0) options.epochs = request.epochs();
  if (request.learning_rate() != 0) {
    options.learning_rate = request.learning_rate();
  }
  return options;
}

void PredictionsToProto(const Predictions& predictions,
                        v1::PredictResponse* proto) {
  proto->set_version(predictions.version);
  const size_t n = predictions.size();
  proto->mutable_predictions()->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) {
    v1::Prediction* p = proto->add_predictions();
    if (!predictions.prediction_ids.empty()) {
      p->set_prediction_id(predictions.prediction_ids[i]);
    }
    if (!predictions.labels.empty()) p->set_label(predictions.labels[i]);
    if (predictions.num_outputs > 1) {
      absl::Span<const float> probs = predictions.probabilities(i);
      p->mutable_probabilities()->Add(probs.begin(), probs.end());
      p->set_value(probs[predictions.labels[i]]);
    } else {
      p->set_value(predictions.value(i));
    }
  }
}

void UpdateResultToProto(const UpdateResult& result,
                         v1::UpdateResponse* proto) {
  proto->set_version(result.version);
  proto->set_examples(result.examples);
  proto->set_loss_before(result.loss_before);
  if (result.accuracy_before.has_value()) {
    proto->set_accuracy_before(*result.accuracy_before);
  }
  proto->set_quarantined(result.quarantined);
  proto->set_quarantine_released(result.quarantine_released);
  proto->set_quarantine_dropped(result.quarantine_dropped);
}

}  // namespace lepton::server
