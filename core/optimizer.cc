#include "core/optimizer.h"

#include <cmath>
#include <limits>

namespace lepton {

StepRule RuleForStep(const OptimizerConfig& config, float learning_rate,
                     uint64_t t) {
  StepRule rule;
  rule.kind = config.kind;
  rule.epsilon = config.epsilon;
  rule.learning_rate = learning_rate;
  if (config.kind == OptimizerKind::kSgd && config.power_t > 0) {
    rule.learning_rate = static_cast<float>(
        learning_rate / std::pow(1.0 + static_cast<double>(t), config.power_t));
  }
  return rule;
}

namespace {
// 1 if x is NaN or infinite.
inline uint32_t NotFinite(float x) {
  return !(std::fabs(x) <= std::numeric_limits<float>::max());
}
}  // namespace

bool ApplyStep(const StepRule& rule, float l2, int64_t n, const float* g,
               float* w, float* acc) {
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
      bad |= NotFinite(wi) | NotFinite(a);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float wi = w[i] - lr * (g[i] + l2 * w[i]);
      w[i] = wi;
      bad |= NotFinite(wi);
    }
  }
  return bad == 0;
}

}  // namespace lepton
