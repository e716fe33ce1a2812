// One optimizer step over a run of coordinates: the update rules of
// OptimizerKind (model_spec.h) applied to contiguous weights.
//
// `g` is the mean gradient of the step's examples for these coordinates; the
// step adds l2 * w to it (pass l2 = 0 for the bias). `acc` is AdaGrad's
// per-coordinate sum of squared gradients (unused by SGD).
//
// Returns true if every weight and accumulator it wrote is finite. (The check
// is an integer OR over the run, which the compiler keeps vectorized.)
#ifndef LEPTON_CORE_OPTIMIZER_H_
#define LEPTON_CORE_OPTIMIZER_H_

#include <cstdint>

#include "core/model_spec.h"

namespace lepton {

struct StepRule {
  OptimizerKind kind = OptimizerKind::kSgd;
  float learning_rate = 0;  // already decayed for this step (SGD)
  float epsilon = 0;        // AdaGrad
};

// The rule for the model's step number `t` (0-based), with `learning_rate`
// replacing the spec's base rate.
StepRule RuleForStep(const OptimizerConfig& config, float learning_rate,
                     uint64_t t);

bool ApplyStep(const StepRule& rule, float l2, int64_t n, const float* g,
               float* w, float* acc);

}  // namespace lepton

#endif  // LEPTON_CORE_OPTIMIZER_H_
