#include "core/optimizer.h"

#include <cmath>

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

}  // namespace lepton
