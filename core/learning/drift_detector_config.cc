#include "core/learning/drift_detector_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

absl::Status Invalid(absl::string_view path, absl::string_view field,
                     absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ".", field, ": ", what));
}

bool InOpenUnit(double v) { return std::isfinite(v) && v > 0 && v < 1; }

constexpr int32_t kMaxAdwinBuckets = 64;
constexpr int32_t kMaxAdwinClock = 1 << 20;
constexpr int32_t kMaxMinObservations = 1 << 30;

}  // namespace

absl::Status ValidateDriftDetectorConfig(const DriftDetectorConfig& c,
                                         absl::string_view path) {
  switch (c.kind) {
    case DriftDetectorKind::kNone:
      return absl::OkStatus();
    case DriftDetectorKind::kAdwin:
      if (!InOpenUnit(c.adwin_delta)) {
        return Invalid(path, "adwin_delta",
                       absl::StrCat("must be in (0, 1), got ", c.adwin_delta));
      }
      if (!(InOpenUnit(c.adwin_warning_delta) &&
            c.adwin_warning_delta > c.adwin_delta)) {
        return Invalid(path, "adwin_warning_delta",
                       absl::StrCat("must be in (adwin_delta, 1), got ",
                                    c.adwin_warning_delta));
      }
      if (c.adwin_clock < 1 || c.adwin_clock > kMaxAdwinClock) {
        return Invalid(path, "adwin_clock",
                       absl::StrCat("must be in [1, ", kMaxAdwinClock,
                                    "], got ", c.adwin_clock));
      }
      if (c.adwin_max_buckets < 2 || c.adwin_max_buckets > kMaxAdwinBuckets) {
        return Invalid(path, "adwin_max_buckets",
                       absl::StrCat("must be in [2, ", kMaxAdwinBuckets,
                                    "], got ", c.adwin_max_buckets));
      }
      break;
    case DriftDetectorKind::kPageHinkley:
      if (!(std::isfinite(c.ph_delta) && c.ph_delta >= 0)) {
        return Invalid(
            path, "ph_delta",
            absl::StrCat("must be finite and >= 0, got ", c.ph_delta));
      }
      if (!(std::isfinite(c.ph_lambda) && c.ph_lambda > 0)) {
        return Invalid(
            path, "ph_lambda",
            absl::StrCat("must be finite and > 0, got ", c.ph_lambda));
      }
      if (!(std::isfinite(c.ph_warning_lambda) && c.ph_warning_lambda > 0 &&
            c.ph_warning_lambda < c.ph_lambda)) {
        return Invalid(path, "ph_warning_lambda",
                       absl::StrCat("must be in (0, ph_lambda), got ",
                                    c.ph_warning_lambda));
      }
      if (!(std::isfinite(c.ph_alpha) && c.ph_alpha > 0 && c.ph_alpha <= 1)) {
        return Invalid(path, "ph_alpha",
                       absl::StrCat("must be in (0, 1], got ", c.ph_alpha));
      }
      break;
    default:
      return Invalid(path, "kind",
                     absl::StrCat("must be NONE, ADWIN or PAGE_HINKLEY, got ",
                                  static_cast<int>(c.kind)));
  }
  if (c.min_observations < 0 || c.min_observations > kMaxMinObservations) {
    return Invalid(path, "min_observations",
                   absl::StrCat("must be in [0, ", kMaxMinObservations,
                                "], got ", c.min_observations));
  }
  return absl::OkStatus();
}

absl::string_view DriftDetectorKindName(DriftDetectorKind kind) {
  switch (kind) {
    case DriftDetectorKind::kNone:
      return "none";
    case DriftDetectorKind::kAdwin:
      return "adwin";
    case DriftDetectorKind::kPageHinkley:
      return "page_hinkley";
  }
  return "unknown";
}

absl::string_view DriftStateName(DriftState state) {
  switch (state) {
    case DriftState::kStable:
      return "stable";
    case DriftState::kWarning:
      return "warning";
    case DriftState::kDrift:
      return "drift";
  }
  return "unknown";
}

}  // namespace lepton
