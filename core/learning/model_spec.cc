#include "core/learning/model_spec.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool FiniteAtLeast(float v, float low) { return std::isfinite(v) && v >= low; }

// [0, 1); false for NaN.
bool InUnitInterval(float v) { return v >= 0 && v < 1; }

absl::Status ValidateOptimizer(const OptimizerConfig& o) {
  if (o.kind != OptimizerKind::kSgd && o.kind != OptimizerKind::kAdagrad &&
      o.kind != OptimizerKind::kFtrl && o.kind != OptimizerKind::kAdam) {
    return Invalid("spec.optimizer.kind", "must be SGD, ADAGRAD, FTRL or ADAM");
  }
  if (!(std::isfinite(o.learning_rate) && o.learning_rate > 0)) {
    return Invalid(
        "spec.optimizer.learning_rate",
        absl::StrCat("must be finite and > 0, got ", o.learning_rate));
  }
  if (!FiniteAtLeast(o.power_t, 0)) {
    return Invalid("spec.optimizer.power_t",
                   absl::StrCat("must be finite and >= 0, got ", o.power_t));
  }
  if (!(std::isfinite(o.epsilon) && o.epsilon > 0)) {
    return Invalid("spec.optimizer.epsilon",
                   absl::StrCat("must be finite and > 0, got ", o.epsilon));
  }
  if (!FiniteAtLeast(o.initial_accumulator, 0)) {
    return Invalid(
        "spec.optimizer.initial_accumulator",
        absl::StrCat("must be finite and >= 0, got ", o.initial_accumulator));
  }
  if (!(std::isfinite(o.beta) && o.beta > 0)) {
    return Invalid("spec.optimizer.beta",
                   absl::StrCat("must be finite and > 0, got ", o.beta));
  }
  if (!FiniteAtLeast(o.l1, 0)) {
    return Invalid("spec.optimizer.l1",
                   absl::StrCat("must be finite and >= 0, got ", o.l1));
  }
  if (!InUnitInterval(o.beta1)) {
    return Invalid("spec.optimizer.beta1",
                   absl::StrCat("must be in [0, 1), got ", o.beta1));
  }
  if (!InUnitInterval(o.beta2)) {
    return Invalid("spec.optimizer.beta2",
                   absl::StrCat("must be in [0, 1), got ", o.beta2));
  }
  return absl::OkStatus();
}

absl::Status ValidateInteractions(const std::vector<std::string>& pairs) {
  if (pairs.size() > kMaxInteractions) {
    return Invalid("spec.interactions",
                   absl::StrCat("at most ", kMaxInteractions, " entries, got ",
                                pairs.size()));
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string field = absl::StrCat("spec.interactions[", i, "]");
    const std::string& p = pairs[i];
    const auto printable = [](char c) { return c >= ' ' && c <= '~'; };
    if (p.size() != 2 || !printable(p[0]) || !printable(p[1])) {
      return Invalid(field,
                     absl::StrCat("must be 2 printable ASCII characters "
                                  "(namespace initials, e.g. \"ua\"), got \"",
                                  absl::CEscape(p), "\""));
    }
    for (size_t j = 0; j < i; ++j) {
      if (pairs[j] == p) {
        return Invalid(field, absl::StrCat("repeats \"", p,
                                           "\" (spec.interactions[", j, "])"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelSpec(const ModelSpec& spec) {
  switch (spec.type) {
    case ModelType::kLinearRegression:
    case ModelType::kLogisticRegression:
      if (spec.num_classes != 0) {
        return Invalid("spec.num_classes",
                       absl::StrCat("must be 0 for ", ModelTypeName(spec.type),
                                    ", got ", spec.num_classes));
      }
      break;
    case ModelType::kSoftmaxRegression:
      if (spec.num_classes < 2 || spec.num_classes > kMaxClasses) {
        return Invalid(
            "spec.num_classes",
            absl::StrCat("must be in [2, ", kMaxClasses,
                         "] for SOFTMAX_REGRESSION, got ", spec.num_classes));
      }
      break;
    default:
      return Invalid("spec.type",
                     "must be LINEAR_REGRESSION, LOGISTIC_REGRESSION or "
                     "SOFTMAX_REGRESSION");
  }
  if (spec.num_features < 1 || spec.num_features > kMaxFeatures) {
    return Invalid("spec.num_features",
                   absl::StrCat("must be in [1, ", kMaxFeatures, "], got ",
                                spec.num_features));
  }
  if ((spec.num_features + 1) * spec.num_outputs() > kMaxParameters) {
    return Invalid("spec.num_features",
                   absl::StrCat("(num_features + 1) * num_classes must be at "
                                "most ",
                                kMaxParameters));
  }
  if (absl::Status s = ValidateOptimizer(spec.optimizer); !s.ok()) return s;
  if (!FiniteAtLeast(spec.l2, 0)) {
    return Invalid("spec.l2",
                   absl::StrCat("must be finite and >= 0, got ", spec.l2));
  }
  if (spec.minibatch_size < 1 || spec.minibatch_size > kMaxMinibatch) {
    return Invalid("spec.minibatch_size",
                   absl::StrCat("must be in [1, ", kMaxMinibatch, "], got ",
                                spec.minibatch_size));
  }
  if (!FiniteAtLeast(spec.max_gradient_norm, 0)) {
    return Invalid(
        "spec.max_gradient_norm",
        absl::StrCat("must be finite and >= 0, got ", spec.max_gradient_norm));
  }
  if (!FiniteAtLeast(spec.max_step, 0)) {
    return Invalid(
        "spec.max_step",
        absl::StrCat("must be finite and >= 0, got ", spec.max_step));
  }
  if (absl::Status s = ValidateInteractions(spec.interactions); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateDriftConfig(spec.drift); !s.ok()) return s;
  return ValidateGuardrailConfig(spec.guardrail);
}

int32_t ParamArrays(const ModelSpec& spec) {
  switch (spec.optimizer.kind) {
    case OptimizerKind::kAdagrad:
      return 2;
    case OptimizerKind::kFtrl:
    case OptimizerKind::kAdam:
      return 3;
    default:
      return 1;
  }
}

absl::Status ValidateModelName(absl::string_view name) {
  if (name.empty()) return Invalid("name", "must not be empty");
  if (name.size() > kMaxModelNameLength) {
    return Invalid("name", absl::StrCat("must be at most ", kMaxModelNameLength,
                                        " characters, got ", name.size()));
  }
  if (name.front() == '.') return Invalid("name", "must not start with '.'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Invalid("name", "may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::string_view ModelTypeName(ModelType type) {
  switch (type) {
    case ModelType::kLinearRegression:
      return "LINEAR_REGRESSION";
    case ModelType::kLogisticRegression:
      return "LOGISTIC_REGRESSION";
    case ModelType::kSoftmaxRegression:
      return "SOFTMAX_REGRESSION";
    default:
      return "MODEL_TYPE_UNSPECIFIED";
  }
}

absl::string_view OptimizerKindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return "SGD";
    case OptimizerKind::kAdagrad:
      return "ADAGRAD";
    case OptimizerKind::kFtrl:
      return "FTRL";
    case OptimizerKind::kAdam:
      return "ADAM";
    default:
      return "OPTIMIZER_KIND_UNSPECIFIED";
  }
}

}  // namespace lepton
