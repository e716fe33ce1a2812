#include "core/learning/optimizer.h"

#include <cmath>

namespace lepton {

StepRule RuleForStep(const OptimizerConfig& config, float learning_rate,
                     uint64_t t) {
  StepRule rule;
  rule.kind = config.kind;
  rule.epsilon = config.epsilon;
  rule.learning_rate = learning_rate;
  switch (config.kind) {
    case OptimizerKind::kSgd:
      if (config.power_t > 0) {
        rule.learning_rate = static_cast<float>(
            learning_rate /
            std::pow(1.0 + static_cast<double>(t), config.power_t));
      }
      break;
    case OptimizerKind::kFtrl:
      rule.l1 = config.l1;
      rule.beta = config.beta;
      break;
    case OptimizerKind::kAdam: {
      rule.beta1 = config.beta1;
      rule.beta2 = config.beta2;
      // Adam counts steps from 1. In double: beta2^t is close to 1 for
      // thousands of steps, and 1 - beta2^t must not lose its digits.
      const double step = static_cast<double>(t) + 1.0;
      rule.correction1 =
          static_cast<float>(1.0 - std::pow(double{config.beta1}, step));
      rule.correction2 =
          static_cast<float>(1.0 - std::pow(double{config.beta2}, step));
      break;
    }
    default:
      break;
  }
  return rule;
}

}  // namespace lepton
