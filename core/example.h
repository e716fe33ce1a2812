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
#ifndef LEPTON_CORE_EXAMPLE_H_
#define LEPTON_CORE_EXAMPLE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace lepton {

struct FeaturesView {
  absl::Span<const float> dense;
  absl::Span<const uint32_t> indices;
  absl::Span<const float> values;

  bool is_dense() const { return !dense.empty(); }
};

struct ExampleView {
  FeaturesView features;
  // Linear: any finite value. Logistic: 0 or 1. Softmax: 0 .. K-1.
  float label = 0;
  // Importance weight, finite and >= 0: the example counts `weight` times in
  // the gradient and in the progressive metrics.
  float weight = 1;
  bool holdout = false;
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

  ExampleView view() const { return {features.view(), label, weight}; }
};

// Views of a whole batch; `owned` must outlive the result.
std::vector<FeaturesView> Views(const std::vector<Features>& owned);
std::vector<ExampleView> Views(const std::vector<Example>& owned);

}  // namespace lepton

#endif  // LEPTON_CORE_EXAMPLE_H_
