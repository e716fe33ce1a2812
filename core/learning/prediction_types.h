// PredictOptions and Predictions: how Predict serves a batch and what it
// answers, from the model version that produced the answer.
//
// Thread safety: plain values.
#ifndef LEPTON_CORE_LEARNING_PREDICTION_TYPES_H_
#define LEPTON_CORE_LEARNING_PREDICTION_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace lepton {

// How Predict serves a batch.
struct PredictOptions {
  // Keep each instance's features and served outputs in the model's
  // prediction cache and return an id per prediction (delayed labels).
  bool remember = false;
  // The most bytes of outputs the caller can send back (0: no limit): a
  // batch whose outputs, 4 bytes each (instances x num_outputs), pass it is
  // refused before anything is computed or allocated for it
  // (RESOURCE_EXHAUSTED). A softmax model's K outputs per instance make a
  // small request ask for a large answer: 16384 empty instances of a model
  // of 65536 classes would be 4 GiB.
  int64_t max_output_bytes = 0;
};

// Predictions for a batch of instances, in order.
struct Predictions {
  uint64_t version = 0;  // the version that produced them
  int32_t num_outputs = 1;
  // Row-major size() x num_outputs: the regression value, P(y = 1) for
  // logistic, or the K class probabilities for softmax.
  std::vector<float> scores;
  // Predicted label per instance (classifiers only; empty for linear): 1 if
  // z >= 0, i.e. P(y = 1) >= 0.5, for logistic; the arg-max class for softmax.
  std::vector<int32_t> labels;
  // With PredictOptions::remember: the id of each prediction, in order, for
  // a later update to send its label by (ExampleView::prediction_id). Empty
  // otherwise.
  std::vector<uint64_t> prediction_ids;

  size_t size() const { return scores.size() / num_outputs; }
  float value(size_t i) const { return scores[i * num_outputs]; }
  absl::Span<const float> probabilities(size_t i) const {
    return absl::MakeConstSpan(scores).subspan(i * num_outputs, num_outputs);
  }
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_PREDICTION_TYPES_H_
