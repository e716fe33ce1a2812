// One optimizer step over a run of coordinates: the update rules of
// OptimizerKind (model_spec.h) applied to contiguous weights.
//
// `g` is the mean loss gradient of the step's examples for these coordinates
// (already clipped, see ModelSpec::max_gradient_norm). SGD, AdaGrad and Adam
// add l2 * w to it; FTRL uses l2 in its closed form instead. Pass l2 = 0 and
// a rule with l1 = 0 for the bias (BiasRule). The per-coordinate state is
// `s1` and `s2`, each n floats where the optimizer has them:
//   SGD      none (both may be null)
//   AdaGrad  s1 = the sum of squared gradients (s2 unused)
//   FTRL     s1 = z, s2 = n
//   Adam     s1 = m, s2 = v
// With rule.max_step > 0 no weight changes by more than max_step (to within
// float rounding); FTRL's z and n are updated as without it.
//
// Returns true if every weight and state value it wrote is finite. (The
// check is an integer OR over the run, which the compiler keeps vectorized.)
//
// Thread safety: pure functions over the caller's arrays.
#ifndef LEPTON_CORE_LEARNING_OPTIMIZER_H_
#define LEPTON_CORE_LEARNING_OPTIMIZER_H_

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/learning/model_spec.h"

namespace lepton {

struct StepRule {
  OptimizerKind kind = OptimizerKind::kSgd;
  // Already decayed for this step (SGD); FTRL's alpha.
  float learning_rate = 0;
  float epsilon = 0;  // AdaGrad, Adam
  float l1 = 0;       // FTRL; 0 for the bias
  float beta = 0;     // FTRL
  float beta1 = 0;    // Adam
  float beta2 = 0;    // Adam
  // Adam's bias corrections for this step: 1 - beta1^t and 1 - beta2^t,
  // t = the 1-based step number (computed in double, then rounded).
  float correction1 = 1;
  float correction2 = 1;
  float max_step = 0;  // 0 = no clamp (ModelSpec::max_step)
};

// The rule for the model's step number `t` (0-based: the steps taken before
// this one), with `learning_rate` replacing the spec's base rate. max_step
// is left 0: it is a ModelSpec field, which the caller copies in.
StepRule RuleForStep(const OptimizerConfig& config, float learning_rate,
                     uint64_t t);

// `rule` for the bias, which is never L1-regularized.
inline StepRule BiasRule(StepRule rule) {
  rule.l1 = 0;
  return rule;
}

namespace optimizer_internal {

// 1 if x is NaN or infinite.
inline uint32_t NotFinite(float x) {
  return !(std::fabs(x) <= std::numeric_limits<float>::max());
}

// w_new moved at most max_step away from w_old. NaN stays NaN (so the
// finiteness check still sees it).
template <bool kClamp>
inline float Limit(float w_old, float w_new, float max_step) {
  if constexpr (kClamp) {
    const float low = w_old - max_step;
    const float high = w_old + max_step;
    return w_new < low ? low : (w_new > high ? high : w_new);
  } else {
    return w_new;
  }
}

// Coordinate (r, o), r < rows and o < k, has gradient g[r * k + o] and its
// weight and state at offset r * stride + o of w, s1 and s2.
template <bool kClamp>
inline bool Step(const StepRule& rule, float l2, int64_t rows, int64_t k,
                 int64_t stride, const float* g, float* w, float* s1,
                 float* s2) {
  const float lr = rule.learning_rate;
  const float max_step = rule.max_step;
  uint32_t bad = 0;
  switch (rule.kind) {
    case OptimizerKind::kAdagrad: {
      const float eps = rule.epsilon;
      for (int64_t r = 0; r < rows; ++r, g += k) {
        float* const wr = w + r * stride;
        float* const ar = s1 + r * stride;
        for (int64_t i = 0; i < k; ++i) {
          const float gi = g[i] + l2 * wr[i];
          const float a = ar[i] + gi * gi;
          const float wi = Limit<kClamp>(
              wr[i], wr[i] - lr * gi / (std::sqrt(a) + eps), max_step);
          ar[i] = a;
          wr[i] = wi;
          bad |= NotFinite(wi) | NotFinite(a);
        }
      }
      break;
    }
    case OptimizerKind::kFtrl: {
      const float alpha = lr;
      const float beta = rule.beta;
      const float l1 = rule.l1;
      for (int64_t r = 0; r < rows; ++r, g += k) {
        float* const wr = w + r * stride;
        float* const zr = s1 + r * stride;
        float* const nr = s2 + r * stride;
        for (int64_t i = 0; i < k; ++i) {
          const float gi = g[i];
          const float n_old = nr[i];
          const float n_new = n_old + gi * gi;
          const float root = std::sqrt(n_new);
          const float sigma = (root - std::sqrt(n_old)) / alpha;
          const float z = zr[i] + gi - sigma * wr[i];
          // Exactly 0 inside the L1 ball: this is where sparsity comes from.
          const float closed =
              std::fabs(z) <= l1
                  ? 0.0f
                  : -(z - std::copysign(l1, z)) / ((beta + root) / alpha + l2);
          const float wi = Limit<kClamp>(wr[i], closed, max_step);
          zr[i] = z;
          nr[i] = n_new;
          wr[i] = wi;
          bad |= NotFinite(wi) | NotFinite(z) | NotFinite(n_new);
        }
      }
      break;
    }
    case OptimizerKind::kAdam: {
      const float eps = rule.epsilon;
      const float b1 = rule.beta1;
      const float b2 = rule.beta2;
      const float one_minus_b1 = 1.0f - b1;
      const float one_minus_b2 = 1.0f - b2;
      const float c1 = rule.correction1;
      const float c2 = rule.correction2;
      for (int64_t r = 0; r < rows; ++r, g += k) {
        float* const wr = w + r * stride;
        float* const mr = s1 + r * stride;
        float* const vr = s2 + r * stride;
        for (int64_t i = 0; i < k; ++i) {
          const float gi = g[i] + l2 * wr[i];
          const float m = b1 * mr[i] + one_minus_b1 * gi;
          const float v = b2 * vr[i] + one_minus_b2 * (gi * gi);
          const float step = lr * (m / c1) / (std::sqrt(v / c2) + eps);
          const float wi = Limit<kClamp>(wr[i], wr[i] - step, max_step);
          mr[i] = m;
          vr[i] = v;
          wr[i] = wi;
          bad |= NotFinite(wi) | NotFinite(m) | NotFinite(v);
        }
      }
      break;
    }
    default: {  // SGD
      for (int64_t r = 0; r < rows; ++r, g += k) {
        float* const wr = w + r * stride;
        for (int64_t i = 0; i < k; ++i) {
          const float wi =
              Limit<kClamp>(wr[i], wr[i] - lr * (g[i] + l2 * wr[i]), max_step);
          wr[i] = wi;
          bad |= NotFinite(wi);
        }
      }
      break;
    }
  }
  return bad == 0;
}

}  // namespace optimizer_internal

// Inline: the sparse path calls it once per row of a few floats. The n
// coordinates of w, s1 and s2 (the state arrays the rule uses) are
// contiguous.
inline bool ApplyStep(const StepRule& rule, float l2, int64_t n, const float* g,
                      float* w, float* s1, float* s2 = nullptr) {
  // Two instantiations, so the common unclamped loops carry no clamp.
  return rule.max_step > 0
             ? optimizer_internal::Step<true>(rule, l2, 1, n, n, g, w, s1, s2)
             : optimizer_internal::Step<false>(rule, l2, 1, n, n, g, w, s1, s2);
}

// The same on `rows` rows of k coordinates each, the gradient contiguous
// (rows x k) and row r's coordinates at r * stride of w, s1 and s2.
inline bool ApplyStepToRows(const StepRule& rule, float l2, int64_t rows,
                            int64_t k, int64_t stride, const float* g, float* w,
                            float* s1, float* s2) {
  return rule.max_step > 0 ? optimizer_internal::Step<true>(
                                 rule, l2, rows, k, stride, g, w, s1, s2)
                           : optimizer_internal::Step<false>(
                                 rule, l2, rows, k, stride, g, w, s1, s2);
}

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_OPTIMIZER_H_
