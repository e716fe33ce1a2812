// Classes added to a softmax model (ModelStore::AddClasses): how a raw output
// served before a class existed is extended to cover it, so that its delayed
// label, even one of the added class, can still be learned from.
//
// Thread safety: pure functions.
#ifndef LEPTON_CORE_LEARNING_ADDED_CLASSES_H_
#define LEPTON_CORE_LEARNING_ADDED_CLASSES_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace lepton {

// How far below the largest served raw output an added class's padded raw
// output lies: its probability is then below e^-30 (about 1e-13), too
// small to change the float sum of the others' exponentials, so the other
// classes' losses stay bit-identical, while a label of an added class costs
// a finite loss of 30 + log(sum of the others' exp(z - max)) (>= 30),
// the stand-in for -log(0).
inline constexpr float kAddedClassLogitGap = 30.0f;

// `served` (the raw outputs of a softmax prediction) extended to
// `num_outputs` values: each added class gets max(served) -
// kAddedClassLogitGap. `served` unchanged if it has num_outputs values or
// more, or none.
std::vector<float> PadServedOutputs(absl::Span<const float> served,
                                    int32_t num_outputs);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_ADDED_CLASSES_H_
