#include "core/adaptation/drift_detector.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/byte_io.h"

namespace lepton {
namespace {

absl::Status Corrupt(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("drift detector encoding: ", what));
}

constexpr uint8_t kFormatVersion = 1;
// Neither sub-window of an ADWIN cut may be shorter than this (MOA's
// mintMinWinLength): the variance bound means nothing on a handful of points.
constexpr int64_t kAdwinMinSubWindow = 5;
// Rows of 2^i-sized buckets a decoded window may have: 56 rows hold 2^57
// observations (far beyond any stream) and keep the width's sum in int64.
constexpr uint32_t kMaxAdwinRows = 56;
// Observations a detector counts: far beyond any stream (2,000 years at a
// million a second). A decoded state may have counted at most this many, and
// a detector that reaches it starts over, so the count never overflows and
// an ADWIN window, at most this wide, always fits kMaxAdwinRows.
constexpr int64_t kMaxObservations = int64_t{1} << 56;

void EncodeHeader(ByteWriter& w, DriftDetectorKind kind, int64_t observations,
                  int64_t since_drift, DriftState state,
                  const std::optional<DriftChange>& change) {
  w.U8(static_cast<uint8_t>(kind));
  w.U8(kFormatVersion);
  w.I64(observations);
  w.I64(since_drift);
  w.U8(static_cast<uint8_t>(state));
  w.U8(change.has_value() ? 1 : 0);
  if (change.has_value()) {
    w.I64(change->observation);
    w.F64(change->mean_before);
    w.F64(change->mean_after);
  }
}

struct Header {
  int64_t observations = 0;
  int64_t since_drift = 0;
  DriftState state = DriftState::kStable;
  std::optional<DriftChange> change;
};

absl::Status DecodeHeader(ByteReader& r, DriftDetectorKind kind, Header* h) {
  uint8_t k, version, state, has_change;
  if (!r.U8(&k) || !r.U8(&version)) return Corrupt("truncated header");
  if (k != static_cast<uint8_t>(kind)) {
    return Corrupt(absl::StrCat("kind ", k, " does not match the config's ",
                                DriftDetectorKindName(kind)));
  }
  if (version != kFormatVersion) {
    return Corrupt(absl::StrCat("unknown format version ", version));
  }
  if (!r.I64(&h->observations) || !r.I64(&h->since_drift) || !r.U8(&state) ||
      !r.U8(&has_change)) {
    return Corrupt("truncated header");
  }
  if (h->observations < 0 || h->observations > kMaxObservations ||
      h->since_drift < 0 || h->since_drift > h->observations) {
    return Corrupt("bad observation counts");
  }
  if (state > static_cast<uint8_t>(DriftState::kDrift) || has_change > 1) {
    return Corrupt("bad state");
  }
  h->state = static_cast<DriftState>(state);
  if (has_change == 1) {
    DriftChange c;
    if (!r.I64(&c.observation) || !r.F64(&c.mean_before) ||
        !r.F64(&c.mean_after)) {
      return Corrupt("truncated last change");
    }
    if (c.observation < 1 || c.observation > h->observations ||
        !std::isfinite(c.mean_before) || !std::isfinite(c.mean_after)) {
      return Corrupt("bad last change");
    }
    h->change = c;
  }
  return absl::OkStatus();
}

// ADWIN2 (Bifet & Gavalda, "Learning from Time-Changing Data with Adaptive
// Windowing", SDM 2007), following the reference MOA implementation
// (moa.classifiers.core.driftdetection.ADWIN): the window is an exponential
// histogram whose row i holds up to M buckets of 2^i observations each, every
// bucket keeping the sum of its observations and the sum of their squared
// deviations from its mean (so the window's variance stays exact under merges
// and deletions). Row 0 holds the newest observations; inside a row, index 0
// is the oldest bucket.
class Adwin final : public DriftDetector {
 public:
  explicit Adwin(const DriftDetectorConfig& c)
      : delta_(c.adwin_delta),
        warning_delta_(c.adwin_warning_delta),
        clock_(c.adwin_clock),
        max_buckets_(c.adwin_max_buckets),
        min_observations_(c.min_observations) {}

  DriftState Add(double x) override {
    if (observations_ >= kMaxObservations) {
      // Only a decoded state gets here (no stream is that long): start over,
      // so that the count stays within what decoding takes.
      Restart();
      observations_ = 0;
      since_drift_ = 0;
      last_change_.reset();
    }
    ++observations_;
    ++since_drift_;
    Insert(x);
    if (observations_ % clock_ != 0) {
      // Between checks the last check's warning stands; a drift is reported
      // on its own observation only.
      state_ = warning_ ? DriftState::kWarning : DriftState::kStable;
    } else {
      state_ = Check();
    }
    if (!Finite()) Restart();
    return state_;
  }

  DriftState state() const override { return state_; }
  int64_t observations() const override { return observations_; }
  double mean() const override {
    return width_ > 0 ? total_ / static_cast<double>(width_) : 0.0;
  }
  std::optional<DriftChange> last_change() const override {
    return last_change_;
  }
  std::unique_ptr<DriftDetector> Clone() const override {
    return std::make_unique<Adwin>(*this);
  }
  int64_t memory_bytes() const override {
    return static_cast<int64_t>(sizeof(*this) +
                                totals_.capacity() * sizeof(double) +
                                variances_.capacity() * sizeof(double) +
                                counts_.capacity() * sizeof(int32_t));
  }

  void Encode(std::string* out) const override {
    ByteWriter w(out);
    EncodeHeader(w, DriftDetectorKind::kAdwin, observations_, since_drift_,
                 state_, last_change_);
    w.U8(warning_ ? 1 : 0);
    w.I64(width_);
    w.F64(total_);
    w.F64(variance_);
    w.U32(static_cast<uint32_t>(counts_.size()));
    for (size_t i = 0; i < counts_.size(); ++i) {
      w.U32(static_cast<uint32_t>(counts_[i]));
      for (int32_t k = 0; k < counts_[i]; ++k) {
        w.F64(totals_[Slot(i, k)]);
        w.F64(variances_[Slot(i, k)]);
      }
    }
  }

  absl::Status DecodeBody(ByteReader& r, const Header& h) {
    observations_ = h.observations;
    since_drift_ = h.since_drift;
    state_ = h.state;
    last_change_ = h.change;
    uint8_t warning;
    uint32_t rows;
    if (!r.U8(&warning) || !r.I64(&width_) || !r.F64(&total_) ||
        !r.F64(&variance_) || !r.U32(&rows)) {
      return Corrupt("truncated window");
    }
    if (warning > 1 || width_ < 0 || width_ > observations_ ||
        !std::isfinite(total_) || !std::isfinite(variance_) ||
        rows > kMaxAdwinRows) {
      return Corrupt("bad window");
    }
    warning_ = warning == 1;
    int64_t width = 0;
    for (uint32_t i = 0; i < rows; ++i) {
      uint32_t count;
      if (!r.U32(&count)) return Corrupt("truncated histogram");
      if (count > static_cast<uint32_t>(max_buckets_) ||
          (i + 1 == rows && count == 0)) {
        return Corrupt("bad bucket count");
      }
      AddRow();
      counts_[i] = static_cast<int32_t>(count);
      for (uint32_t k = 0; k < count; ++k) {
        double t, v;
        if (!r.F64(&t) || !r.F64(&v)) return Corrupt("truncated histogram");
        if (!std::isfinite(t) || !std::isfinite(v) || t < 0 || v < 0) {
          return Corrupt("bad bucket");
        }
        totals_[Slot(i, k)] = t;
        variances_[Slot(i, k)] = v;
      }
      width += static_cast<int64_t>(count) << i;
    }
    if (width != width_) return Corrupt("histogram does not match the width");
    return absl::OkStatus();
  }

 private:
  size_t Slot(size_t row, int32_t k) const {
    return row * static_cast<size_t>(max_buckets_ + 1) + static_cast<size_t>(k);
  }
  void AddRow() {
    counts_.push_back(0);
    totals_.resize(totals_.size() + max_buckets_ + 1, 0.0);
    variances_.resize(variances_.size() + max_buckets_ + 1, 0.0);
  }
  // Whether every sum the window holds is finite. Observations of finite
  // losses keep them so; only a decoded state no such stream produces (sums
  // near the double range, from a crafted import) can overflow them.
  bool Finite() const {
    return std::isfinite(total_) && std::isfinite(variance_) &&
           !bucket_overflow_ &&
           (!last_change_.has_value() ||
            (std::isfinite(last_change_->mean_before) &&
             std::isfinite(last_change_->mean_after)));
  }
  // Starts the window afresh (the counts of observations stay), rather than
  // keep a value that would make the state's encoding undecodable.
  void Restart() {
    counts_.clear();
    totals_.clear();
    variances_.clear();
    width_ = 0;
    total_ = 0;
    variance_ = 0;
    bucket_overflow_ = false;
    warning_ = false;
    if (last_change_.has_value() &&
        !(std::isfinite(last_change_->mean_before) &&
          std::isfinite(last_change_->mean_after))) {
      last_change_.reset();
    }
    state_ = DriftState::kStable;
  }

  // Drops the `n` oldest buckets of row `row`.
  void DropOldest(size_t row, int32_t n) {
    const size_t base = Slot(row, 0);
    for (int32_t k = n; k < counts_[row]; ++k) {
      totals_[base + k - n] = totals_[base + k];
      variances_[base + k - n] = variances_[base + k];
    }
    counts_[row] -= n;
  }

  void Insert(double x) {
    ++width_;
    if (width_ > 1) {
      // Welford-style update of the sum of squared deviations.
      const double w = static_cast<double>(width_);
      const double d = x - total_ / (w - 1);
      variance_ += (w - 1) * d * d / w;
    }
    total_ += x;
    if (counts_.empty()) AddRow();
    totals_[Slot(0, counts_[0])] = x;
    variances_[Slot(0, counts_[0])] = 0.0;
    ++counts_[0];
    // Merge the two oldest buckets of a full row into one of the next row.
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] <= max_buckets_) break;
      if (i + 1 == counts_.size()) AddRow();
      const double n = std::ldexp(1.0, static_cast<int>(i));
      const double t0 = totals_[Slot(i, 0)], t1 = totals_[Slot(i, 1)];
      const double d = t0 / n - t1 / n;
      const size_t dst = Slot(i + 1, counts_[i + 1]);
      totals_[dst] = t0 + t1;
      variances_[dst] = variances_[Slot(i, 0)] + variances_[Slot(i, 1)] +
                        n * n * d * d / (2 * n);
      bucket_overflow_ |=
          !std::isfinite(totals_[dst]) || !std::isfinite(variances_[dst]);
      ++counts_[i + 1];
      DropOldest(i, 2);
    }
  }

  // Removes the oldest bucket of the window.
  void DeleteOldest() {
    const size_t row = counts_.size() - 1;
    const int64_t n1 = int64_t{1} << row;
    const double t = totals_[Slot(row, 0)];
    const double v = variances_[Slot(row, 0)];
    width_ -= n1;
    total_ -= t;
    if (width_ > 0) {
      const double w = static_cast<double>(width_);
      const double n = static_cast<double>(n1);
      const double d = t / n - total_ / w;
      variance_ -= v + n * w * d * d / (n + w);
    } else {
      total_ = 0;
      variance_ = 0;
    }
    DropOldest(row, 1);
    if (counts_[row] == 0) {
      counts_.pop_back();
      totals_.resize(totals_.size() - (max_buckets_ + 1));
      variances_.resize(variances_.size() - (max_buckets_ + 1));
    }
  }

  // eps_cut of the paper for sub-windows with 1/m = 1/n0 + 1/n1 (m: the
  // harmonic mean of their lengths), the window's variance sigma2 and
  // log_term = ln(2 / delta'), delta' = delta / ln(W).
  static double EpsCut(double inv_m, double sigma2, double log_term) {
    return std::sqrt(2.0 * inv_m * sigma2 * log_term) +
           2.0 / 3.0 * inv_m * log_term;
  }
  double LogTerm(double delta) const {
    return std::log(2.0 * std::log(static_cast<double>(width_)) / delta);
  }

  // Scans the split points oldest first (as MOA). Returns true at the first
  // one whose sub-window means differ by more than eps_cut at adwin_delta,
  // with *increase = whether the newer mean is the higher. Otherwise returns
  // false, with *warning = whether some split has a newer mean higher by more
  // than eps_cut at the looser adwin_warning_delta. One pass serves both: the
  // warning bound is the smaller, so only splits past it need the cut bound.
  bool Scan(bool* increase, bool* warning) const {
    *warning = false;
    if (width_ < 2 * kAdwinMinSubWindow) return false;
    const double w = static_cast<double>(width_);
    const double log_cut = LogTerm(delta_);
    const double log_warning = LogTerm(warning_delta_);
    const double sigma2 = std::max(variance_ / w, 0.0);
    int64_t n0 = 0, n1 = width_;
    double u0 = 0, u1 = total_;
    for (size_t i = counts_.size(); i-- > 0;) {
      const int64_t n2 = int64_t{1} << i;
      for (int32_t k = 0; k < counts_[i]; ++k) {
        const double u2 = totals_[Slot(i, k)];
        n0 += n2;
        n1 -= n2;
        u0 += u2;
        u1 -= u2;
        if (i == 0 && k == counts_[i] - 1) return false;  // no newer part
        if (n0 < kAdwinMinSubWindow || n1 < kAdwinMinSubWindow) continue;
        const double mean0 = u0 / static_cast<double>(n0);
        const double mean1 = u1 / static_cast<double>(n1);
        const double diff = std::abs(mean0 - mean1);
        const double inv_m =
            1.0 / static_cast<double>(n0) + 1.0 / static_cast<double>(n1);
        if (!(diff > EpsCut(inv_m, sigma2, log_warning))) continue;
        if (diff > EpsCut(inv_m, sigma2, log_cut)) {
          *increase = mean1 > mean0;
          return true;
        }
        if (mean1 > mean0) *warning = true;
      }
    }
    return false;
  }

  // The sub-window means at the split where an increase is most significant
  // (largest (mean1 - mean0) / eps_cut): the estimated change point.
  void MostSignificantIncrease(double* mean0_out, double* mean1_out) const {
    const double log_term = LogTerm(delta_);
    const double sigma2 =
        std::max(variance_ / static_cast<double>(width_), 0.0);
    double best = -1;
    int64_t n0 = 0, n1 = width_;
    double u0 = 0, u1 = total_;
    for (size_t i = counts_.size(); i-- > 0;) {
      const int64_t n2 = int64_t{1} << i;
      for (int32_t k = 0; k < counts_[i]; ++k) {
        n0 += n2;
        n1 -= n2;
        u0 += totals_[Slot(i, k)];
        u1 -= totals_[Slot(i, k)];
        if (i == 0 && k == counts_[i] - 1) return;
        if (n0 < kAdwinMinSubWindow || n1 < kAdwinMinSubWindow) continue;
        const double mean0 = u0 / static_cast<double>(n0);
        const double mean1 = u1 / static_cast<double>(n1);
        const double inv_m =
            1.0 / static_cast<double>(n0) + 1.0 / static_cast<double>(n1);
        const double score = (mean1 - mean0) / EpsCut(inv_m, sigma2, log_term);
        if (score > best) {
          best = score;
          *mean0_out = mean0;
          *mean1_out = mean1;
        }
      }
    }
  }

  DriftState Check() {
    if (since_drift_ < min_observations_) {
      warning_ = false;
      return DriftState::kStable;
    }
    // Cut while some split is significant, one oldest bucket at a time.
    bool reported = false;
    bool increase = false;
    double mean_before = 0, mean_after = 0;
    // Observations up to here belong to the last drift already reported.
    const int64_t drift_end =
        last_change_.has_value() ? last_change_->observation : 0;
    bool warning = false;
    while (Scan(&increase, &warning)) {
      const int64_t first = observations_ - width_ + 1;
      const int64_t last = first + (int64_t{1} << (counts_.size() - 1)) - 1;
      // An increase is a new drift unless the cut only finishes the previous
      // one: it drops data seen before that drift was flagged (the old
      // regime's residue a bucket-granular cut left behind).
      if (increase && last > drift_end && !reported) {
        reported = true;
        MostSignificantIncrease(&mean_before, &mean_after);
      }
      DeleteOldest();
    }
    if (reported) {
      last_change_ = DriftChange{observations_, mean_before, mean_after};
      since_drift_ = 0;
      warning_ = false;
      return DriftState::kDrift;
    }
    warning_ = warning;
    return warning_ ? DriftState::kWarning : DriftState::kStable;
  }

  double delta_;
  double warning_delta_;
  int64_t clock_;
  int32_t max_buckets_;
  int64_t min_observations_;

  int64_t observations_ = 0;
  int64_t since_drift_ = 0;
  DriftState state_ = DriftState::kStable;
  bool warning_ = false;  // the last check found a warning-level increase
  std::optional<DriftChange> last_change_;

  int64_t width_ = 0;
  double total_ = 0;
  double variance_ = 0;  // sum of squared deviations from the window's mean
  bool bucket_overflow_ = false;  // a merge made a non-finite bucket
  // Row-major [rows][M + 1] (a row briefly holds M + 1 before a merge).
  std::vector<int32_t> counts_;
  std::vector<double> totals_;
  std::vector<double> variances_;
};

// Page-Hinkley test for an increase of the mean (Page 1954; the form of Gama
// et al. 2013 with a fading factor):
//   m_T = alpha * m_{T-1} + (x_T - mean_T - delta),  M_T = min_t m_t,
//   PH_T = m_T - M_T;  drift if PH_T > lambda, warning if > warning_lambda.
// The time of the minimum estimates the change point, so the detector keeps
// the running sum there to report the means before and after it, and restarts
// its mean from the observations after it on a drift.
class PageHinkley final : public DriftDetector {
 public:
  explicit PageHinkley(const DriftDetectorConfig& c)
      : delta_(c.ph_delta),
        lambda_(c.ph_lambda),
        warning_lambda_(c.ph_warning_lambda),
        alpha_(c.ph_alpha),
        min_observations_(c.min_observations) {}

  DriftState Add(double x) override {
    if (observations_ >= kMaxObservations) {
      // Only a decoded state gets here (see Adwin::Add): start over.
      observations_ = 0;
      since_drift_ = 0;
      last_change_.reset();
      RestartTest();
    }
    ++observations_;
    ++since_drift_;
    ++n_;
    sum_ += x;
    m_ = alpha_ * m_ + (x - sum_ / static_cast<double>(n_) - delta_);
    if (!has_min_ || m_ < min_) {
      has_min_ = true;
      min_ = m_;
      n_at_min_ = n_;
      sum_at_min_ = sum_;
    }
    const double ph = m_ - min_;
    if (since_drift_ < min_observations_) {
      state_ = DriftState::kStable;
    } else if (ph > lambda_) {
      // n_at_min_ < n_ here: the minimum is never the current point when
      // ph > lambda > 0.
      const int64_t after_n = n_ - n_at_min_;
      const double after_sum = sum_ - sum_at_min_;
      last_change_ = DriftChange{observations_,
                                 sum_at_min_ / static_cast<double>(n_at_min_),
                                 after_sum / static_cast<double>(after_n)};
      n_ = after_n;
      sum_ = after_sum;
      m_ = 0;
      has_min_ = false;
      min_ = 0;
      n_at_min_ = 0;
      sum_at_min_ = 0;
      since_drift_ = 0;
      state_ = DriftState::kDrift;
    } else if (ph > warning_lambda_) {
      state_ = DriftState::kWarning;
    } else {
      state_ = DriftState::kStable;
    }
    // Finite losses keep these finite; a decoded state near the double
    // range (a crafted import) restarts the test instead (see Adwin).
    if (!std::isfinite(sum_) || !std::isfinite(m_) ||
        !std::isfinite(sum_at_min_) ||
        (last_change_.has_value() &&
         !(std::isfinite(last_change_->mean_before) &&
           std::isfinite(last_change_->mean_after)))) {
      if (last_change_.has_value() &&
          !(std::isfinite(last_change_->mean_before) &&
            std::isfinite(last_change_->mean_after))) {
        last_change_.reset();
      }
      RestartTest();
    }
    return state_;
  }

  DriftState state() const override { return state_; }
  int64_t observations() const override { return observations_; }
  double mean() const override {
    return n_ > 0 ? sum_ / static_cast<double>(n_) : 0.0;
  }
  std::optional<DriftChange> last_change() const override {
    return last_change_;
  }
  std::unique_ptr<DriftDetector> Clone() const override {
    return std::make_unique<PageHinkley>(*this);
  }
  int64_t memory_bytes() const override { return sizeof(*this); }

  void Encode(std::string* out) const override {
    ByteWriter w(out);
    EncodeHeader(w, DriftDetectorKind::kPageHinkley, observations_,
                 since_drift_, state_, last_change_);
    w.I64(n_);
    w.F64(sum_);
    w.F64(m_);
    w.U8(has_min_ ? 1 : 0);
    w.F64(min_);
    w.I64(n_at_min_);
    w.F64(sum_at_min_);
  }

  absl::Status DecodeBody(ByteReader& r, const Header& h) {
    observations_ = h.observations;
    since_drift_ = h.since_drift;
    state_ = h.state;
    last_change_ = h.change;
    uint8_t has_min;
    if (!r.I64(&n_) || !r.F64(&sum_) || !r.F64(&m_) || !r.U8(&has_min) ||
        !r.F64(&min_) || !r.I64(&n_at_min_) || !r.F64(&sum_at_min_)) {
      return Corrupt("truncated Page-Hinkley state");
    }
    has_min_ = has_min == 1;
    if (n_ < 0 || n_ > observations_ || has_min > 1 || n_at_min_ < 0 ||
        n_at_min_ > n_ || (has_min_ && n_at_min_ < 1) || !std::isfinite(sum_) ||
        !std::isfinite(m_) || !std::isfinite(min_) ||
        !std::isfinite(sum_at_min_) || sum_ < 0 || sum_at_min_ < 0 ||
        (has_min_ && min_ > m_)) {
      return Corrupt("bad Page-Hinkley state");
    }
    return absl::OkStatus();
  }

 private:
  // The test from scratch: no mean, no cumulative sum, no minimum (the
  // counts of observations stay).
  void RestartTest() {
    n_ = 0;
    sum_ = 0;
    m_ = 0;
    has_min_ = false;
    min_ = 0;
    n_at_min_ = 0;
    sum_at_min_ = 0;
    state_ = DriftState::kStable;
  }

  double delta_;
  double lambda_;
  double warning_lambda_;
  double alpha_;
  int64_t min_observations_;

  int64_t observations_ = 0;
  int64_t since_drift_ = 0;
  DriftState state_ = DriftState::kStable;
  std::optional<DriftChange> last_change_;

  int64_t n_ = 0;   // observations in the running mean
  double sum_ = 0;  // their sum
  double m_ = 0;    // the faded cumulative sum m_T
  bool has_min_ = false;
  double min_ = 0;         // M_T, valid if has_min_
  int64_t n_at_min_ = 0;   // n_ when m_ was at its minimum
  double sum_at_min_ = 0;  // sum_ then
};

template <typename T>
absl::StatusOr<std::unique_ptr<DriftDetector>> DecodeAs(
    const DriftDetectorConfig& config, absl::string_view bytes) {
  ByteReader r(bytes);
  Header h;
  if (absl::Status s = DecodeHeader(r, config.kind, &h); !s.ok()) return s;
  auto d = std::make_unique<T>(config);
  if (absl::Status s = d->DecodeBody(r, h); !s.ok()) return s;
  if (r.remaining() != 0) return Corrupt("trailing bytes");
  return std::unique_ptr<DriftDetector>(std::move(d));
}

}  // namespace

std::unique_ptr<DriftDetector> DriftDetector::Create(
    const DriftDetectorConfig& config) {
  switch (config.kind) {
    case DriftDetectorKind::kAdwin:
      return std::make_unique<Adwin>(config);
    case DriftDetectorKind::kPageHinkley:
      return std::make_unique<PageHinkley>(config);
    default:
      return nullptr;
  }
}

absl::StatusOr<std::unique_ptr<DriftDetector>> DriftDetector::Decode(
    const DriftDetectorConfig& config, absl::string_view bytes) {
  switch (config.kind) {
    case DriftDetectorKind::kAdwin:
      return DecodeAs<Adwin>(config, bytes);
    case DriftDetectorKind::kPageHinkley:
      return DecodeAs<PageHinkley>(config, bytes);
    default:
      return absl::InvalidArgumentError(
          "drift detector encoding: the config's kind has no detector");
  }
}

}  // namespace lepton
