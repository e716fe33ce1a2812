// DriftDetectorConfig: which drift detector watches a model's progressive
// loss and its parameters, as part of the model's spec (adaptation_config.h).
// The detectors themselves live in core/adaptation/drift_detector.h.
//
// Thread safety: plain values and pure functions.
#ifndef LEPTON_CORE_LEARNING_DRIFT_DETECTOR_CONFIG_H_
#define LEPTON_CORE_LEARNING_DRIFT_DETECTOR_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lepton {

enum class DriftDetectorKind { kNone = 0, kAdwin = 1, kPageHinkley = 2 };
enum class DriftState { kStable = 0, kWarning = 1, kDrift = 2 };

// Every default is calibrated on synthetic loss streams (tests/core/
// drift_detector_test.cc): 0/1 errors 0.15 -> 0.45 and log loss ~0.44 ->
// ~0.67 are flagged within 2,000 observations, and stationary streams of
// 200,000 observations, as well as a learning model's falling loss, are not.
struct DriftDetectorConfig {
  DriftDetectorKind kind = DriftDetectorKind::kAdwin;

  // ADWIN (Bifet & Gavalda 2007, ADWIN2 with exponential histograms).
  // Confidence of a drift cut, (0, 1): smaller = fewer false alarms, later
  // detection (the delay grows like ln(1/delta)). Not the paper's 0.002: its
  // bound assumes observations in [0, 1], and skewed log losses (mostly
  // ~0.1, sometimes ~2.5) then raise false drifts (4 in 50 stationary streams
  // of 200,000 at 0.002, none in 100 at 1e-5).
  double adwin_delta = 1e-5;
  // Looser confidence for kWarning, (adwin_delta, 1).
  double adwin_warning_delta = 0.05;
  // Check for cuts every `clock` observations, 1 .. 2^20 (the check costs
  // O(M log W), so 32 keeps Add() amortized O(1)).
  int32_t adwin_clock = 32;
  // M: buckets per row of the histogram, 2 .. 64 (more = finer cut points,
  // more memory).
  int32_t adwin_max_buckets = 5;

  // Page-Hinkley (Page 1954), detecting an INCREASE of the mean loss, in
  // loss units.
  // Tolerated magnitude of change, finite and >= 0: increases of the mean
  // smaller than delta are never flagged.
  double ph_delta = 0.05;
  // Drift threshold, finite and > 0. The delay after a jump of the mean by
  // d is about lambda / (d - delta) observations; false alarms fall like
  // exp(-2 delta lambda / variance), so both scale with the loss's variance
  // (defaults: losses of variance up to ~0.5).
  double ph_lambda = 100.0;
  // Warning threshold, (0, ph_lambda).
  double ph_warning_lambda = 50.0;
  // Fading factor of the cumulative sum, (0, 1]; 1 is the classic test.
  double ph_alpha = 1.0;

  // Both: no state other than stable before this many observations since
  // creation or the last drift, 0 .. 2^30.
  int32_t min_observations = 30;
};

// INVALID_ARGUMENT naming `path` + field, e.g.
// "spec.drift.adwin_delta: must be in (0, 1), got 2". Checks only the fields
// of the configured kind (and min_observations); kNone is always valid.
absl::Status ValidateDriftDetectorConfig(const DriftDetectorConfig& config,
                                         absl::string_view path);
// "none", "adwin", "page_hinkley".
absl::string_view DriftDetectorKindName(DriftDetectorKind kind);
// "stable", "warning", "drift".
absl::string_view DriftStateName(DriftState state);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_DRIFT_DETECTOR_CONFIG_H_
