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

#include <cmath>
#include <cstdint>
#include <limits>

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

// Inline: the sparse path calls it once per row of a few floats.
inline bool ApplyStep(const StepRule& rule, float l2, int64_t n, const float* g,
                      float* w, float* acc) {
  // 1 if x is NaN or infinite.
  auto not_finite = [](float x) -> uint32_t {
    return !(std::fabs(x) <= std::numeric_limits<float>::max());
  };
  const float lr = rule.learning_rate;
  uint32_t bad = 0;
  if (rule.kind == OptimizerKind::kAdagrad) {
    const float eps = rule.epsilon;
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] + l2 * w[i];
      const float a = acc[i] + gi * gi;
      const float wi = w[i] - lr * gi / (std::sqrt(a) + eps);
      acc[i] = a;
      w[i] = wi;
      bad |= not_finite(wi) | not_finite(a);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float wi = w[i] - lr * (g[i] + l2 * w[i]);
      w[i] = wi;
      bad |= not_finite(wi);
    }
  }
  return bad == 0;
}

}  // namespace lepton

#endif  // LEPTON_CORE_OPTIMIZER_H_
