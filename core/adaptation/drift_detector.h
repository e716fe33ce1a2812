// Drift detectors over a model's progressive loss stream: one observation per
// trained example, that example's loss under the model before it learned from
// it (log loss, squared loss, cross-entropy or 0/1 errors; finite, >= 0). A
// detector answers "has the mean loss gone UP?", i.e. has the model stopped
// fitting the data it now sees. A falling loss (the model is learning) is
// never reported.
//
//   ADWIN (Bifet & Gavalda 2007, ADWIN2): keeps an adaptive window of recent
//     losses in an exponential histogram (O(M log W) memory for a window of W)
//     and, every `adwin_clock` observations, cuts the oldest part of the
//     window while an older and a newer sub-window have means that differ
//     more than the variance-based Hoeffding/Bernstein bound allows at
//     confidence delta' = delta / ln(W). A cut where the newer mean is higher
//     is a drift; a cut where it is lower only shrinks the window.
//   Page-Hinkley (Page 1954): cumulative sum of (x_t - mean_t - delta), faded
//     by alpha; a drift when it rises more than lambda above its minimum.
//
//   DriftDetectorConfig config;  // ADWIN with the defaults below
//   std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
//   for (double loss : losses) {
//     if (d->Add(loss) == DriftState::kDrift) { ... d->last_change() ... }
//   }
//
// Determinism: plain double arithmetic, no randomness, no clocks: the same
// observations in the same order give bit-identical states, means and
// encodings on every host (the build fixes -march). Encode() / Decode()
// round-trips the whole state, so a decoded detector continues exactly like
// the original.
//
// Ownership and thread safety: a detector is a plain value owned by its
// caller; const methods may run concurrently, Add() needs exclusive access
// (the owning model's lock).
#ifndef LEPTON_CORE_ADAPTATION_DRIFT_DETECTOR_H_
#define LEPTON_CORE_ADAPTATION_DRIFT_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/learning/drift_detector_config.h"

namespace lepton {

// What the detector saw at its last drift.
struct DriftChange {
  // observations() when the drift was flagged (1-based index of the
  // observation whose Add returned kDrift).
  int64_t observation = 0;
  // The means before and after the estimated change point. ADWIN: the older
  // and newer sub-windows of the split where the increase was most
  // significant (before the cut). Page-Hinkley: the observations since the
  // previous reset up to where the cumulative sum was lowest, and after.
  double mean_before = 0;
  double mean_after = 0;
};

class DriftDetector {
 public:
  // nullptr for kNone. `config` must be valid.
  static std::unique_ptr<DriftDetector> Create(
      const DriftDetectorConfig& config);
  // The inverse of Encode() for a detector of `config`; INVALID_ARGUMENT if
  // bytes are not one (wrong kind, truncated, trailing bytes, inconsistent
  // or non-finite state, more than 2^56 observations). A decoded state whose
  // sums would overflow as observations arrive (sums near the double range,
  // which no stream of finite losses produces) restarts its window or test
  // when they do, and one that reaches 2^56 observations starts over, so
  // that every state a detector holds encodes to bytes that decode.
  static absl::StatusOr<std::unique_ptr<DriftDetector>> Decode(
      const DriftDetectorConfig& config, absl::string_view bytes);

  virtual ~DriftDetector() = default;

  // Adds one observation (finite, >= 0; the caller validates) and returns the
  // state after it. kDrift is returned on the one observation where a change
  // is detected; the detector then continues from the data after the change
  // point (ADWIN: the window after the cut; Page-Hinkley: the cumulative sum
  // is reset and the mean restarts from the observations after the estimated
  // change point), so later calls return stable/warning again until the next
  // change.
  //
  // ADWIN decides only on its clock (every adwin_clock-th observation); in
  // between it repeats the last check's warning (kWarning) or kStable.
  virtual DriftState Add(double x) = 0;
  // The last Add's result (kStable before any).
  virtual DriftState state() const = 0;
  // Total observations added since creation.
  virtual int64_t observations() const = 0;
  // Mean of the current window (since the last change); 0 if it is empty.
  virtual double mean() const = 0;
  virtual std::optional<DriftChange> last_change() const = 0;
  // A deep copy.
  virtual std::unique_ptr<DriftDetector> Clone() const = 0;
  // Appends a compact, portable (little-endian) encoding of the whole state.
  virtual void Encode(std::string* out) const = 0;
  // Heap and object bytes held by the detector.
  virtual int64_t memory_bytes() const = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_ADAPTATION_DRIFT_DETECTOR_H_
