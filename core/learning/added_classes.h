// Classes added to a softmax model (ModelStore::AddClasses): the grown
// learner, which keeps every existing weight, and how a raw output served
// before a class existed is extended to cover it, so that its delayed label,
// even one of the added class, can still be learned from.
//
// Thread safety: pure functions; GrowClasses reads `from` only.
#ifndef LEPTON_CORE_LEARNING_ADDED_CLASSES_H_
#define LEPTON_CORE_LEARNING_ADDED_CLASSES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/learning/learner.h"
#include "core/learning/model_spec.h"

namespace lepton {

// How far below the largest served raw output an added class's padded raw
// output lies: its probability is then below e^-30 (about 1e-13), too
// small to change the float sum of the others' exponentials, so the other
// classes' losses stay bit-identical, while a label of an added class costs
// a finite loss of 30 + log(sum of the others' exp(z - max)) (>= 30),
// the stand-in for -log(0).
inline constexpr float kAddedClassLogitGap = 30.0f;

// Whether model `name` of `spec` may grow to `num_classes` classes (the
// same number is allowed: nothing to do): FAILED_PRECONDITION for a model
// that is not softmax, INVALID_ARGUMENT "num_classes: ..." for fewer classes
// or beyond kMaxClasses or kMaxParameters.
absl::Status CheckAddClasses(const ModelSpec& spec, int32_t num_classes,
                             absl::string_view name);

// `served` (the raw outputs of a softmax prediction) extended to
// `num_outputs` values: each added class gets max(served) -
// kAddedClassLogitGap. `served` unchanged if it has num_outputs values or
// more, or none.
std::vector<float> PadServedOutputs(absl::Span<const float> served,
                                    int32_t num_outputs);

// A learner of `grown` (a softmax spec with more classes than `from`'s, the
// rest equal) that starts from the initial state (zero weights, the
// optimizer's initial state) with every existing row of `from` copied into
// the new stride: existing weights, biases and optimizer state bit for bit.
Learner GrowClasses(const Learner& from, const ModelSpec& grown);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_ADDED_CLASSES_H_
