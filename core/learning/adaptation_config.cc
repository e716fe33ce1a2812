#include "core/learning/adaptation_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::Status ValidateDriftConfig(const DriftConfig& c) {
  if (absl::Status s = ValidateDriftDetectorConfig(c.detector, "spec.drift");
      !s.ok()) {
    return s;
  }
  switch (c.policy) {
    case DriftPolicy::kAlert:
    case DriftPolicy::kBoost:
    case DriftPolicy::kChallenger:
      break;
    default:
      return Invalid("spec.drift.policy", "must be ALERT, BOOST or CHALLENGER");
  }
  if (!(std::isfinite(c.boost_factor) && c.boost_factor >= 1 &&
        c.boost_factor <= 1000)) {
    return Invalid("spec.drift.boost_factor",
                   absl::StrCat("must be in [1, 1000], got ", c.boost_factor));
  }
  if (c.boost_examples < 1) {
    return Invalid("spec.drift.boost_examples",
                   absl::StrCat("must be >= 1, got ", c.boost_examples));
  }
  if (c.challenger_window < 10 || c.challenger_window > 1000000) {
    return Invalid(
        "spec.drift.challenger_window",
        absl::StrCat("must be in [10, 1000000], got ", c.challenger_window));
  }
  if (c.challenger_max_examples < c.challenger_window) {
    return Invalid(
        "spec.drift.challenger_max_examples",
        absl::StrCat("must be >= challenger_window (", c.challenger_window,
                     "), got ", c.challenger_max_examples));
  }
  return absl::OkStatus();
}

absl::Status ValidateGuardrailConfig(const GuardrailConfig& c) {
  if (c.policy != GuardrailPolicy::kOff &&
      c.policy != GuardrailPolicy::kReject &&
      c.policy != GuardrailPolicy::kQuarantine) {
    return Invalid("spec.guardrail.policy",
                   "must be OFF, REJECT or QUARANTINE");
  }
  if (c.holdout_capacity < 0 || c.holdout_capacity > 1000000) {
    return Invalid(
        "spec.guardrail.holdout_capacity",
        absl::StrCat("must be in [0, 1000000], got ", c.holdout_capacity));
  }
  if (!(std::isfinite(c.tolerance) && c.tolerance >= 0)) {
    return Invalid("spec.guardrail.tolerance",
                   absl::StrCat("must be finite and >= 0, got ", c.tolerance));
  }
  if (c.min_holdout < 1) {
    return Invalid("spec.guardrail.min_holdout",
                   absl::StrCat("must be >= 1, got ", c.min_holdout));
  }
  if (c.quarantine_capacity < 1 || c.quarantine_capacity > 1000) {
    return Invalid(
        "spec.guardrail.quarantine_capacity",
        absl::StrCat("must be in [1, 1000], got ", c.quarantine_capacity));
  }
  if (c.recheck_holdout < 1 || c.recheck_holdout > 1000000) {
    return Invalid(
        "spec.guardrail.recheck_holdout",
        absl::StrCat("must be in [1, 1000000], got ", c.recheck_holdout));
  }
  return absl::OkStatus();
}

absl::string_view DriftPolicyName(DriftPolicy policy) {
  switch (policy) {
    case DriftPolicy::kAlert:
      return "ALERT";
    case DriftPolicy::kBoost:
      return "BOOST";
    case DriftPolicy::kChallenger:
      return "CHALLENGER";
    default:
      return "DRIFT_POLICY_UNSPECIFIED";
  }
}

absl::string_view GuardrailPolicyName(GuardrailPolicy policy) {
  switch (policy) {
    case GuardrailPolicy::kOff:
      return "OFF";
    case GuardrailPolicy::kReject:
      return "REJECT";
    case GuardrailPolicy::kQuarantine:
      return "QUARANTINE";
    default:
      return "GUARDRAIL_POLICY_UNSPECIFIED";
  }
}

}  // namespace lepton
