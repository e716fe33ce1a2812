// Inputs of the core: the features of one instance and a labeled example.
//
// FeaturesView and ExampleView borrow their arrays (the caller keeps them alive
// for the duration of the call), so the server can hand the core the arrays
// of a request message without copying them. Features and Example own their
// arrays; view() lends them out.
//
// An instance is dense (exactly num_features values) or sparse (index/value
// pairs, each index < num_features, no index repeated). An instance with
// neither is a sparse instance with no nonzero feature. Dense and sparse
// instances may be mixed freely, within one batch too.
//
// Delayed labels: an example may name a prediction the model served earlier
// (prediction_id, from Predict with PredictOptions::remember) instead of
// carrying features; the model then learns from the features it cached with
// that prediction, and scores it (progressive validation) with the outputs it
// served then (served_outputs), not with its current weights.
#ifndef LEPTON_CORE_LEARNING_EXAMPLE_H_
#define LEPTON_CORE_LEARNING_EXAMPLE_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lepton {

// A named feature and a namespace of them (feature_hashing.h), borrowing the
// caller's strings.
struct NamedFeatureView {
  absl::string_view name;
  float value = 1;
};

struct NamespaceView {
  absl::string_view name;
  absl::Span<const NamedFeatureView> features;
};

struct FeaturesView {
  absl::Span<const float> dense;
  absl::Span<const uint32_t> indices;
  absl::Span<const float> values;
  // Named features: the model hashes them, with `indices`/`values`, into its
  // index space before it validates or uses the instance (feature_hashing.h).
  absl::Span<const NamespaceView> namespaces = {};

  bool is_dense() const { return !dense.empty(); }
};

struct ExampleView {
  FeaturesView features;
  // Linear: any finite value. Logistic: 0 or 1. Softmax: 0 .. K-1.
  float label = 0;
  // Importance weight, finite and >= 0: the example counts `weight` times in
  // the gradient and in the progressive metrics.
  float weight = 1;
  // The raw outputs z (1, or K for softmax) the model served for these
  // features: the progressive loss is computed from them. Empty = score with
  // the weights as they are before the update (the usual case).
  absl::Span<const float> served_outputs = {};
  // A validation example: the model keeps it in its holdout set (the newest
  // spec.guardrail.holdout_capacity) and never trains on it
  // (model_adaptation.h).
  bool holdout = false;
  // Nonzero: a prediction served earlier with an id; `features` and
  // `served_outputs` must then be empty, and the model fills them from its
  // prediction cache (prediction_cache.h).
  uint64_t prediction_id = 0;
};

struct Features {
  std::vector<float> dense;
  std::vector<uint32_t> indices;
  std::vector<float> values;

  FeaturesView view() const { return {dense, indices, values}; }
};

struct Example {
  Features features;
  float label = 0;
  float weight = 1;
  std::vector<float> served_outputs = {};
  bool holdout = false;
  uint64_t prediction_id = 0;

  ExampleView view() const {
    return {features.view(), label,   weight,
            served_outputs,  holdout, prediction_id};
  }
};

// Views of a whole batch; `owned` must outlive the result.
std::vector<FeaturesView> Views(const std::vector<Features>& owned);
std::vector<ExampleView> Views(const std::vector<Example>& owned);

// Bytes an Example copied from `v` holds (for memory accounting).
int64_t OwnedBytes(const ExampleView& v);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_EXAMPLE_H_
