// Validation of inputs against a model's spec, done in full before any state
// changes, so that a bad request is rejected whole.
//
// Every error is INVALID_ARGUMENT and its message starts with the 0-based path
// of the offending field as the client named it, e.g.
//   "examples[7].features.dense[0]: not finite"
//   "instances[2].indices[5]: 900 is out of range [0, 784)"
// The caller passes the path prefix of each item ("examples[7].features") as
// a function, so that the string is built only when there is an error.
#ifndef LEPTON_CORE_LEARNING_VALIDATION_H_
#define LEPTON_CORE_LEARNING_VALIDATION_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"

namespace lepton {

using PathFn = absl::FunctionRef<std::string()>;

absl::Status ValidateFeatures(const ModelSpec& spec, const FeaturesView& f,
                              PathFn path);

// Label and weight of one example; `path` returns e.g. "examples[3]".
absl::Status ValidateLabelAndWeight(const ModelSpec& spec, float label,
                                    float weight, PathFn path);

// A Predict batch: at least one instance, each valid ("instances[i]...").
absl::Status ValidateInstances(const ModelSpec& spec,
                               absl::Span<const FeaturesView> instances);

// An Update batch: at least one example, each valid ("examples[i]...").
absl::Status ValidateExamples(const ModelSpec& spec,
                              absl::Span<const ExampleView> examples);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_VALIDATION_H_
