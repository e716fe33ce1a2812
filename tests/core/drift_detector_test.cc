// The drift detectors on seeded synthetic loss streams, at default settings:
//   (a) 0/1 errors, Bernoulli(0.15) then Bernoulli(0.45) from observation
//       50,000;
//   (b) log loss of a calibrated classifier, q ~ U(0.7, 0.95) then
//       q ~ U(0.5, 0.7) from 50,000 (mean 0.44 -> 0.67);
//   (c) the same two changes as ramps over observations 50,000 .. 70,000;
//   (d) stationary controls of 200,000 observations at both levels of both
//       kinds, and "learning" controls whose mean falls smoothly from ~0.7 to
//       ~0.3 over the first 20,000 observations, then stays.
// The calibration tests print one line per detector and stream (delays
// min/mean/max, false drifts, extra drifts after the first); run
//   build/tests/core/drift_detector_test --gtest_filter='*Calibration*'
// to see them. LEPTON_DRIFT_SEEDS=n overrides the number of seeds (10, or 3
// under sanitizers).
#include "core/adaptation/drift_detector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace lepton {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kDefaultSeeds = 3;
#else
constexpr int kDefaultSeeds = 10;
#endif

int NumSeeds() {
  if (const char* s = std::getenv("LEPTON_DRIFT_SEEDS")) {
    const int n = std::atoi(s);
    if (n > 0) return n;
  }
  return kDefaultSeeds;
}

constexpr int64_t kChangeAt = 50000;
constexpr int64_t kRamp = 20000;
constexpr int64_t kMaxDelay = 2000;
constexpr int64_t kAfter = 30000;  // observations fed after a change starts
constexpr int64_t kControlLength = 200000;

// Portable uniform doubles (the std distributions differ between libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  bool Bernoulli(double p) { return Uniform() < p; }

 private:
  std::mt19937_64 gen_;
};

// A loss stream: the loss of observation t (0-based).
using Stream = std::function<double(int64_t t, Rng& rng)>;

double Lerp(double a, double b, double f) { return a + (b - a) * f; }
// 0 before `start`, 1 after start + len, linear in between.
double Ramp(int64_t t, int64_t start, int64_t len) {
  if (t < start) return 0;
  if (t >= start + len) return 1;
  return static_cast<double>(t - start) / static_cast<double>(len);
}

double ErrorLoss(double p, Rng& rng) { return rng.Bernoulli(p) ? 1.0 : 0.0; }
// The log loss of a calibrated prediction q for the true class: the class is
// right with probability q.
double CalibratedLogLoss(double q, Rng& rng) {
  return rng.Bernoulli(q) ? -std::log(q) : -std::log1p(-q);
}
double LogLossBetween(double lo, double hi, Rng& rng) {
  return CalibratedLogLoss(Lerp(lo, hi, rng.Uniform()), rng);
}

// Abrupt (ramp = 0) or gradual changes of the two kinds.
Stream ErrorStream(int64_t ramp) {
  return [ramp](int64_t t, Rng& rng) {
    return ErrorLoss(Lerp(0.15, 0.45, Ramp(t, kChangeAt, ramp)), rng);
  };
}
Stream LogLossStream(int64_t ramp) {
  return [ramp](int64_t t, Rng& rng) {
    const double f = Ramp(t, kChangeAt, ramp);
    return LogLossBetween(Lerp(0.7, 0.5, f), Lerp(0.95, 0.7, f), rng);
  };
}

// Binary entropy: the expected log loss of a calibrated prediction q.
double Entropy(double q) { return -q * std::log(q) - (1 - q) * std::log1p(-q); }
// q in [0.5, 1) with Entropy(q) = h, h in (0, ln 2].
double InverseEntropy(double h) {
  double lo = 0.5, hi = 1 - 1e-12;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (Entropy(mid) > h ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
// A learning model: the mean loss falls linearly from 0.69 (0.7 for errors)
// to 0.3 over the first 20,000 observations, then stays.
Stream LearningErrorStream() {
  return [](int64_t t, Rng& rng) {
    return ErrorLoss(Lerp(0.7, 0.3, Ramp(t, 0, kRamp)), rng);
  };
}
Stream LearningLogLossStream() {
  auto q = std::make_shared<std::vector<double>>();
  for (int64_t t = 0; t <= kRamp; ++t) {
    q->push_back(InverseEntropy(Lerp(0.69, 0.3, Ramp(t, 0, kRamp))));
  }
  return [q](int64_t t, Rng& rng) {
    return CalibratedLogLoss((*q)[std::min(t, kRamp)], rng);
  };
}
Stream Stationary(std::function<double(Rng&)> f) {
  return [f](int64_t, Rng& rng) { return f(rng); };
}

DriftDetectorConfig Defaults(DriftDetectorKind kind) {
  DriftDetectorConfig c;
  c.kind = kind;
  return c;
}

// What one detector did on one stream.
struct StreamRun {
  int64_t first_drift = -1;  // 0-based index of the first kDrift, -1 if none
  int64_t drifts = 0;        // all kDrift results
  int64_t drifts_before_change = 0;
  bool warning_before_first_drift = false;  // at or after the change start
  int64_t warnings = 0;                     // all kWarning results
  double mean_at_end = 0;
};

StreamRun RunStream(const DriftDetectorConfig& config, const Stream& stream,
                    uint64_t seed, int64_t length, int64_t change_at) {
  Rng rng(seed);
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  StreamRun run;
  for (int64_t t = 0; t < length; ++t) {
    const DriftState s = d->Add(stream(t, rng));
    if (s == DriftState::kDrift) {
      ++run.drifts;
      if (t < change_at) ++run.drifts_before_change;
      if (run.first_drift < 0) run.first_drift = t;
    } else if (s == DriftState::kWarning) {
      ++run.warnings;
      if (run.first_drift < 0 && t >= change_at) {
        run.warning_before_first_drift = true;
      }
    }
  }
  run.mean_at_end = d->mean();
  return run;
}

struct Summary {
  std::vector<int64_t> delays;  // first drift - change start, change streams
  int64_t missed = 0;
  int64_t false_drifts = 0;     // before the change (or anywhere on a control)
  int64_t extra_drifts = 0;     // after the first drift, on change streams
  int64_t warned = 0;           // runs with a warning before the first drift
  double warning_fraction = 0;  // of the observations, on controls

  void Print(const char* detector, const char* stream, int seeds) const {
    if (delays.empty()) {
      std::printf(
          "[drift] %-12s %-26s seeds=%d false_drifts=%lld "
          "warning_fraction=%.4f\n",
          detector, stream, seeds, static_cast<long long>(false_drifts),
          warning_fraction);
      return;
    }
    double sum = 0;
    for (int64_t d : delays) sum += static_cast<double>(d);
    std::printf(
        "[drift] %-12s %-26s seeds=%d delay min=%lld mean=%.0f max=%lld "
        "missed=%lld false_drifts=%lld extra_drifts=%lld warned_first=%lld\n",
        detector, stream, seeds,
        static_cast<long long>(*std::min_element(delays.begin(), delays.end())),
        sum / static_cast<double>(delays.size()),
        static_cast<long long>(*std::max_element(delays.begin(), delays.end())),
        static_cast<long long>(missed), static_cast<long long>(false_drifts),
        static_cast<long long>(extra_drifts), static_cast<long long>(warned));
  }
};

class DriftCalibrationTest
    : public ::testing::TestWithParam<DriftDetectorKind> {
 protected:
  const char* Name() const {
    return GetParam() == DriftDetectorKind::kAdwin ? "adwin" : "page_hinkley";
  }

  // A change starting at kChangeAt: every seed must flag it within
  // `deadline` observations of kChangeAt, with no drift before it.
  Summary CheckChange(const char* name, const Stream& stream,
                      int64_t deadline) {
    const int seeds = NumSeeds();
    Summary sum;
    for (int seed = 1; seed <= seeds; ++seed) {
      const StreamRun run = RunStream(Defaults(GetParam()), stream, seed,
                                      kChangeAt + kAfter, kChangeAt);
      sum.false_drifts += run.drifts_before_change;
      if (run.first_drift < kChangeAt) {
        ++sum.missed;
      } else {
        sum.delays.push_back(run.first_drift - kChangeAt);
        sum.extra_drifts += run.drifts - 1;
      }
      if (run.warning_before_first_drift) ++sum.warned;
      EXPECT_EQ(run.drifts_before_change, 0) << name << " seed " << seed;
      EXPECT_GE(run.first_drift, kChangeAt) << name << " seed " << seed;
      EXPECT_LE(run.first_drift, kChangeAt + deadline)
          << name << " seed " << seed;
    }
    sum.Print(Name(), name, seeds);
    return sum;
  }

  void CheckControl(const char* name, const Stream& stream) {
    const int seeds = NumSeeds();
    Summary sum;
    for (int seed = 1; seed <= seeds; ++seed) {
      // Different seeds from the change streams.
      const StreamRun run = RunStream(Defaults(GetParam()), stream, 1000 + seed,
                                      kControlLength, kControlLength);
      sum.false_drifts += run.drifts;
      sum.warning_fraction += static_cast<double>(run.warnings) /
                              static_cast<double>(kControlLength * seeds);
      EXPECT_EQ(run.drifts, 0) << name << " seed " << seed;
    }
    sum.Print(Name(), name, seeds);
  }
};

// One drift per change (the detector continues from the new regime), with a
// warning first.
TEST_P(DriftCalibrationTest, AbruptErrorRate) {
  const Summary s =
      CheckChange("a:errors 0.15->0.45", ErrorStream(0), kMaxDelay);
  EXPECT_EQ(s.extra_drifts, 0);
  EXPECT_EQ(s.warned, NumSeeds());
}

TEST_P(DriftCalibrationTest, AbruptLogLoss) {
  const Summary s =
      CheckChange("b:logloss 0.44->0.67", LogLossStream(0), kMaxDelay);
  EXPECT_EQ(s.extra_drifts, 0);
  EXPECT_EQ(s.warned, NumSeeds());
}

TEST_P(DriftCalibrationTest, GradualErrorRate) {
  const Summary s =
      CheckChange("c:errors ramp 20k", ErrorStream(kRamp), kRamp + kMaxDelay);
  // A ramp is flagged before it has gone far, with a warning first.
  EXPECT_EQ(s.warned, NumSeeds());
}

TEST_P(DriftCalibrationTest, GradualLogLoss) {
  const Summary s = CheckChange("c:logloss ramp 20k", LogLossStream(kRamp),
                                kRamp + kMaxDelay);
  EXPECT_EQ(s.warned, NumSeeds());
}

TEST_P(DriftCalibrationTest, StationaryControls) {
  CheckControl("d:errors 0.15",
               Stationary([](Rng& r) { return ErrorLoss(0.15, r); }));
  CheckControl("d:errors 0.45",
               Stationary([](Rng& r) { return ErrorLoss(0.45, r); }));
  CheckControl("d:logloss q~U(.7,.95)",
               Stationary([](Rng& r) { return LogLossBetween(0.7, 0.95, r); }));
  CheckControl("d:logloss q~U(.5,.7)",
               Stationary([](Rng& r) { return LogLossBetween(0.5, 0.7, r); }));
}

TEST_P(DriftCalibrationTest, LearningControls) {
  CheckControl("d:learning errors .7->.3", LearningErrorStream());
  CheckControl("d:learning logloss .69->.3", LearningLogLossStream());
}

INSTANTIATE_TEST_SUITE_P(Kinds, DriftCalibrationTest,
                         ::testing::Values(DriftDetectorKind::kAdwin,
                                           DriftDetectorKind::kPageHinkley),
                         [](const auto& info) {
                           return std::string(info.param ==
                                                      DriftDetectorKind::kAdwin
                                                  ? "Adwin"
                                                  : "PageHinkley");
                         });

// The properties below hold for both detectors.
class DriftDetectorTest : public ::testing::TestWithParam<DriftDetectorKind> {};

INSTANTIATE_TEST_SUITE_P(Kinds, DriftDetectorTest,
                         ::testing::Values(DriftDetectorKind::kAdwin,
                                           DriftDetectorKind::kPageHinkley),
                         [](const auto& info) {
                           return std::string(info.param ==
                                                      DriftDetectorKind::kAdwin
                                                  ? "Adwin"
                                                  : "PageHinkley");
                         });

std::string EncodeOf(const DriftDetector& d) {
  std::string s;
  d.Encode(&s);
  return s;
}

// Feeds both detectors the same `n` observations of `stream` from t0 and
// asserts they agree bit for bit after every one.
void ExpectSameRun(DriftDetector& a, DriftDetector& b, const Stream& stream,
                   int64_t t0, int64_t n, uint64_t seed) {
  Rng rng_a(seed), rng_b(seed);
  for (int64_t t = t0; t < t0 + n; ++t) {
    const DriftState sa = a.Add(stream(t, rng_a));
    const DriftState sb = b.Add(stream(t, rng_b));
    ASSERT_EQ(sa, sb) << "t=" << t;
    ASSERT_EQ(a.state(), b.state()) << "t=" << t;
    ASSERT_EQ(a.observations(), b.observations()) << "t=" << t;
    ASSERT_EQ(std::bit_cast<uint64_t>(a.mean()),
              std::bit_cast<uint64_t>(b.mean()))
        << "t=" << t;
    ASSERT_EQ(a.last_change().has_value(), b.last_change().has_value());
    if (a.last_change().has_value()) {
      ASSERT_EQ(a.last_change()->observation, b.last_change()->observation);
      ASSERT_EQ(a.last_change()->mean_before, b.last_change()->mean_before);
      ASSERT_EQ(a.last_change()->mean_after, b.last_change()->mean_after);
    }
  }
  EXPECT_EQ(EncodeOf(a), EncodeOf(b));
}

TEST_P(DriftDetectorTest, EncodeDecodeContinuesBitIdentically) {
  const DriftDetectorConfig config = Defaults(GetParam());
  const Stream stream = LogLossStream(0);
  // Cut points: empty, mid-window, mid-change (warnings), after a drift.
  for (int64_t cut : {int64_t{0}, int64_t{777}, int64_t{kChangeAt + 150},
                      int64_t{kChangeAt + 2500}}) {
    SCOPED_TRACE(cut);
    std::unique_ptr<DriftDetector> a = DriftDetector::Create(config);
    Rng rng(7);
    for (int64_t t = 0; t < cut; ++t) a->Add(stream(t, rng));
    const std::string bytes = EncodeOf(*a);
    absl::StatusOr<std::unique_ptr<DriftDetector>> b =
        DriftDetector::Decode(config, bytes);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(EncodeOf(**b), bytes);
    EXPECT_EQ((*b)->state(), a->state());
    // The rest of the stream (a different rng from here on, the same for
    // both), through the change and beyond.
    ExpectSameRun(*a, **b, stream, cut, kChangeAt + 8000 - cut, 99);
    if (cut == kChangeAt + 2500) {
      ASSERT_TRUE(a->last_change().has_value());
    }
  }
}

TEST_P(DriftDetectorTest, DecodeRejectsBadBytes) {
  const DriftDetectorConfig config = Defaults(GetParam());
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  Rng rng(3);
  const Stream stream = ErrorStream(0);
  for (int64_t t = 0; t < kChangeAt + 3000; ++t) d->Add(stream(t, rng));
  ASSERT_TRUE(d->last_change().has_value());
  const std::string bytes = EncodeOf(*d);
  ASSERT_TRUE(DriftDetector::Decode(config, bytes).ok());

  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DriftDetector::Decode(config, bytes.substr(0, n)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "prefix " << n;
  }
  EXPECT_EQ(DriftDetector::Decode(config, bytes + "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string bad_version = bytes;
  bad_version[1] = 9;
  EXPECT_EQ(DriftDetector::Decode(config, bad_version).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Bytes of the other kind.
  DriftDetectorConfig other = config;
  other.kind = GetParam() == DriftDetectorKind::kAdwin
                   ? DriftDetectorKind::kPageHinkley
                   : DriftDetectorKind::kAdwin;
  EXPECT_EQ(DriftDetector::Decode(other, bytes).status().code(),
            absl::StatusCode::kInvalidArgument);
  DriftDetectorConfig none;
  none.kind = DriftDetectorKind::kNone;
  EXPECT_EQ(DriftDetector::Decode(none, bytes).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A state value out of range (byte 18: kind, version, 2 x i64).
  std::string bad_state = bytes;
  bad_state[18] = 7;
  EXPECT_EQ(DriftDetector::Decode(config, bad_state).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Corrupt bytes are rejected or give a detector that still works: never a
// crash (the sanitizer builds check the memory accesses).
TEST_P(DriftDetectorTest, DecodeSurvivesFlippedBytes) {
  const DriftDetectorConfig config = Defaults(GetParam());
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  Rng rng(13);
  const Stream stream = ErrorStream(0);
  for (int64_t t = 0; t < kChangeAt + 3000; ++t) d->Add(stream(t, rng));
  const std::string bytes = EncodeOf(*d);
  int accepted = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      absl::StatusOr<std::unique_ptr<DriftDetector>> decoded =
          DriftDetector::Decode(config, bad);
      if (!decoded.ok()) {
        EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      ++accepted;
      for (int64_t t = 0; t < 200; ++t) (*decoded)->Add(stream(t, rng));
      EXPECT_GE((*decoded)->observations(), 200);
      // What it holds then still encodes to bytes that decode.
      EXPECT_TRUE(DriftDetector::Decode(config, EncodeOf(**decoded)).ok())
          << "byte " << i << " ^ " << int{mask};
    }
  }
  // Most flips land in doubles and are accepted; the structural ones are not.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, static_cast<int>(3 * bytes.size()));
}

// Found by import_model_fuzzer (docs/fuzzing.md): a decoded state with sums
// near the double range (no stream of finite losses makes one; a crafted
// ImportModel blob can) overflowed to infinity with the next observations,
// and the model's next checkpoint did not decode; one that had counted
// INT64_MAX observations overflowed the count. The count is bounded now,
// and such sums restart the window.
TEST_P(DriftDetectorTest, DecodedExtremesNeverMakeAnUndecodableState) {
  const DriftDetectorConfig config = Defaults(GetParam());
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  Rng rng(21);
  const Stream stream = ErrorStream(0);
  for (int64_t t = 0; t < 100; ++t) d->Add(stream(t, rng));
  ASSERT_FALSE(d->last_change().has_value());
  const std::string bytes = EncodeOf(*d);
  // The header: kind, version, i64 observations, i64 since_drift, state,
  // has_change (0 here); the body from byte 20.
  const auto put = [](std::string& b, size_t at, auto v) {
    std::memcpy(b.data() + at, &v, sizeof(v));
  };
  std::string huge = bytes;
  if (GetParam() == DriftDetectorKind::kAdwin) {
    put(huge, 29, 1.7e308);  // total (after u8 warning, i64 width)
    put(huge, 37, 1.7e308);  // variance
  } else {
    put(huge, 28, 1.7e308);   // sum (after i64 n)
    put(huge, 36, -1.7e308);  // m
    huge[44] = 1;             // has_min
    put(huge, 45, -1.7e308);  // min
    put(huge, 53, int64_t{1});
  }
  absl::StatusOr<std::unique_ptr<DriftDetector>> decoded =
      DriftDetector::Decode(config, huge);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  for (int64_t t = 0; t < 300; ++t) (*decoded)->Add(stream(t, rng));
  absl::StatusOr<std::unique_ptr<DriftDetector>> again =
      DriftDetector::Decode(config, EncodeOf(**decoded));
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(std::isfinite((*decoded)->mean()));

  std::string counted = bytes;
  put(counted, 2, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(DriftDetector::Decode(config, counted).status().code(),
            absl::StatusCode::kInvalidArgument);
  put(counted, 2, (int64_t{1} << 56) + 1);
  EXPECT_EQ(DriftDetector::Decode(config, counted).status().code(),
            absl::StatusCode::kInvalidArgument);
  // At the limit it decodes, and the next observation starts it over (found
  // by import_model_fuzzer: it used to count past what decoding takes).
  put(counted, 2, int64_t{1} << 56);
  absl::StatusOr<std::unique_ptr<DriftDetector>> full =
      DriftDetector::Decode(config, counted);
  ASSERT_TRUE(full.ok()) << full.status();
  (*full)->Add(0.5);
  EXPECT_EQ((*full)->observations(), 1);
  EXPECT_TRUE(DriftDetector::Decode(config, EncodeOf(**full)).ok());
}

TEST_P(DriftDetectorTest, CloneIsIndependent) {
  const DriftDetectorConfig config = Defaults(GetParam());
  const Stream stream = ErrorStream(0);
  std::unique_ptr<DriftDetector> a = DriftDetector::Create(config);
  Rng rng(5);
  for (int64_t t = 0; t < kChangeAt - 1000; ++t) a->Add(stream(t, rng));
  std::unique_ptr<DriftDetector> clone = a->Clone();
  const std::string before = EncodeOf(*clone);
  EXPECT_EQ(EncodeOf(*a), before);

  // The original goes through the change; the clone does not move.
  for (int64_t t = kChangeAt - 1000; t < kChangeAt + 3000; ++t) {
    a->Add(stream(t, rng));
  }
  ASSERT_TRUE(a->last_change().has_value());
  EXPECT_FALSE(clone->last_change().has_value());
  EXPECT_EQ(clone->observations(), kChangeAt - 1000);
  EXPECT_EQ(EncodeOf(*clone), before);

  // And the clone then behaves exactly like a decoded copy of its state.
  auto copy = DriftDetector::Decode(config, before);
  ASSERT_TRUE(copy.ok());
  ExpectSameRun(*clone, **copy, stream, kChangeAt - 1000, 5000, 11);
  EXPECT_TRUE(clone->last_change().has_value());
}

TEST_P(DriftDetectorTest, LastChangeReportsTheMeans) {
  const DriftDetectorConfig config = Defaults(GetParam());
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  Rng rng(21);
  const Stream stream = ErrorStream(0);
  int64_t drift_at = -1;
  for (int64_t t = 0; t < kChangeAt + kMaxDelay && drift_at < 0; ++t) {
    if (d->Add(stream(t, rng)) == DriftState::kDrift) drift_at = t;
  }
  ASSERT_GE(drift_at, kChangeAt);
  ASSERT_TRUE(d->last_change().has_value());
  EXPECT_EQ(d->last_change()->observation, drift_at + 1);
  EXPECT_EQ(d->observations(), drift_at + 1);
  EXPECT_EQ(d->state(), DriftState::kDrift);
  EXPECT_NEAR(d->last_change()->mean_before, 0.15, 0.03);
  EXPECT_NEAR(d->last_change()->mean_after, 0.45, 0.12);
  // Stable or warning again right after.
  EXPECT_NE(d->Add(stream(drift_at + 1, rng)), DriftState::kDrift);
}

TEST_P(DriftDetectorTest, NothingButStableBeforeMinObservations) {
  DriftDetectorConfig config = Defaults(GetParam());
  config.min_observations = 3000;
  std::unique_ptr<DriftDetector> d = DriftDetector::Create(config);
  // A jump from 0 to 3 at observation 500 is flagged only once 3000
  // observations have been seen.
  int64_t first_other = -1;
  for (int64_t t = 0; t < 6000; ++t) {
    if (d->Add(t < 500 ? 0.0 : 3.0) != DriftState::kStable && first_other < 0) {
      first_other = t;
    }
  }
  EXPECT_GE(first_other, 2999);
  // The same stream with the default (30) is flagged early.
  d = DriftDetector::Create(Defaults(GetParam()));
  first_other = -1;
  for (int64_t t = 0; t < 6000; ++t) {
    if (d->Add(t < 500 ? 0.0 : 3.0) == DriftState::kDrift && first_other < 0) {
      first_other = t;
    }
  }
  EXPECT_GE(first_other, 500);
  EXPECT_LT(first_other, 700);
}

TEST_P(DriftDetectorTest, SameStreamSameBytes) {
  const DriftDetectorConfig config = Defaults(GetParam());
  std::unique_ptr<DriftDetector> a = DriftDetector::Create(config);
  std::unique_ptr<DriftDetector> b = DriftDetector::Create(config);
  ExpectSameRun(*a, *b, LogLossStream(kRamp), 0, kChangeAt + kRamp, 4);
}

TEST(AdwinTest, WindowShrinksToTheNewMeanAfterACut) {
  std::unique_ptr<DriftDetector> d =
      DriftDetector::Create(Defaults(DriftDetectorKind::kAdwin));
  Rng rng(8);
  const Stream stream = ErrorStream(0);
  int64_t t = 0;
  for (; t < kChangeAt; ++t) d->Add(stream(t, rng));
  EXPECT_NEAR(d->mean(), 0.15, 0.01);
  bool drift = false;
  for (; !drift && t < kChangeAt + kMaxDelay; ++t) {
    drift = d->Add(stream(t, rng)) == DriftState::kDrift;
  }
  ASSERT_TRUE(drift);
  // Without the cut, 50,000 old observations would hold the mean at 0.151
  // (and at 0.16 2,000 observations later).
  EXPECT_GT(d->mean(), 0.19);
  for (const int64_t end = t + 2000; t < end; ++t) d->Add(stream(t, rng));
  EXPECT_NEAR(d->mean(), 0.45, 0.04);
}

TEST(AdwinTest, ADecreaseShrinksTheWindowWithoutADrift) {
  std::unique_ptr<DriftDetector> d =
      DriftDetector::Create(Defaults(DriftDetectorKind::kAdwin));
  Rng rng(9);
  for (int64_t t = 0; t < 100000; ++t) {
    const DriftState s = d->Add(ErrorLoss(t < kChangeAt ? 0.45 : 0.15, rng));
    ASSERT_NE(s, DriftState::kDrift) << t;
    if (t == kChangeAt + 3000) {
      EXPECT_NEAR(d->mean(), 0.15, 0.03);
    }
  }
  EXPECT_FALSE(d->last_change().has_value());
}

TEST(AdwinTest, MemoryGrowsLogarithmically) {
  std::unique_ptr<DriftDetector> d =
      DriftDetector::Create(Defaults(DriftDetectorKind::kAdwin));
  Rng rng(10);
  for (int64_t t = 0; t < 1000; ++t) d->Add(ErrorLoss(0.2, rng));
  const int64_t at_1k = d->memory_bytes();
  for (int64_t t = 1000; t < 1000000; ++t) d->Add(ErrorLoss(0.2, rng));
  ASSERT_EQ(d->observations(), 1000000);
  // 1000x the observations: about log2(1000) ~ 10 more rows of 6 buckets x
  // 16 bytes (plus vector slack), where a plain window would need 8 MB.
  EXPECT_LT(d->memory_bytes() - at_1k, 3072);
  EXPECT_LT(d->memory_bytes(), 4096);
}

TEST(PageHinkleyTest, ConstantMemory) {
  std::unique_ptr<DriftDetector> d =
      DriftDetector::Create(Defaults(DriftDetectorKind::kPageHinkley));
  const int64_t empty = d->memory_bytes();
  Rng rng(10);
  for (int64_t t = 0; t < 100000; ++t) d->Add(ErrorLoss(0.2, rng));
  EXPECT_EQ(d->memory_bytes(), empty);
}

TEST(PageHinkleyTest, NoDriftOnADecrease) {
  std::unique_ptr<DriftDetector> d =
      DriftDetector::Create(Defaults(DriftDetectorKind::kPageHinkley));
  Rng rng(12);
  for (int64_t t = 0; t < 100000; ++t) {
    ASSERT_EQ(d->Add(ErrorLoss(t < kChangeAt ? 0.45 : 0.15, rng)),
              DriftState::kStable)
        << t;
  }
}

TEST(DriftDetectorConfigTest, CreateNoneIsNull) {
  DriftDetectorConfig c;
  c.kind = DriftDetectorKind::kNone;
  EXPECT_TRUE(ValidateDriftDetectorConfig(c, "spec.drift").ok());
  EXPECT_EQ(DriftDetector::Create(c), nullptr);
}

TEST(DriftDetectorConfigTest, Names) {
  EXPECT_EQ(DriftStateName(DriftState::kStable), "stable");
  EXPECT_EQ(DriftStateName(DriftState::kWarning), "warning");
  EXPECT_EQ(DriftStateName(DriftState::kDrift), "drift");
  EXPECT_EQ(DriftDetectorKindName(DriftDetectorKind::kNone), "none");
  EXPECT_EQ(DriftDetectorKindName(DriftDetectorKind::kAdwin), "adwin");
  EXPECT_EQ(DriftDetectorKindName(DriftDetectorKind::kPageHinkley),
            "page_hinkley");
}

TEST(DriftDetectorConfigTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateDriftDetectorConfig(Defaults(DriftDetectorKind::kAdwin),
                                          "spec.drift")
                  .ok());
  EXPECT_TRUE(ValidateDriftDetectorConfig(
                  Defaults(DriftDetectorKind::kPageHinkley), "spec.drift")
                  .ok());
}

// The message of an invalid config, "" if it is valid.
std::string Error(const DriftDetectorConfig& c) {
  absl::Status s = ValidateDriftDetectorConfig(c, "spec.drift");
  if (s.ok()) return "";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

TEST(DriftDetectorConfigTest, AdwinErrorsNameTheField) {
  const auto with = [](auto f) {
    DriftDetectorConfig c = Defaults(DriftDetectorKind::kAdwin);
    f(c);
    return Error(c);
  };
  EXPECT_EQ(with([](auto& c) { c.adwin_delta = 0; }),
            "spec.drift.adwin_delta: must be in (0, 1), got 0");
  EXPECT_EQ(with([](auto& c) { c.adwin_delta = 1; }),
            "spec.drift.adwin_delta: must be in (0, 1), got 1");
  EXPECT_EQ(with([](auto& c) {
              c.adwin_delta = NAN;
            }).rfind("spec.drift.adwin_delta: ", 0),
            0u);
  EXPECT_EQ(with([](auto& c) { c.adwin_warning_delta = 1e-6; }),
            "spec.drift.adwin_warning_delta: must be in (adwin_delta, 1), "
            "got 1e-06");
  EXPECT_EQ(with([](auto& c) {
              c.adwin_warning_delta = 1;
            }).rfind("spec.drift.adwin_warning_delta: ", 0),
            0u);
  EXPECT_EQ(with([](auto& c) { c.adwin_clock = 0; }),
            "spec.drift.adwin_clock: must be in [1, 1048576], got 0");
  EXPECT_EQ(with([](auto& c) { c.adwin_max_buckets = 1; }),
            "spec.drift.adwin_max_buckets: must be in [2, 64], got 1");
  EXPECT_EQ(with([](auto& c) { c.adwin_max_buckets = 65; }),
            "spec.drift.adwin_max_buckets: must be in [2, 64], got 65");
  EXPECT_EQ(with([](auto& c) { c.min_observations = -1; }),
            "spec.drift.min_observations: must be in [0, 1073741824], got -1");
  // Page-Hinkley's fields do not matter to ADWIN.
  EXPECT_EQ(with([](auto& c) { c.ph_lambda = -1; }), "");
}

TEST(DriftDetectorConfigTest, PageHinkleyErrorsNameTheField) {
  const auto with = [](auto f) {
    DriftDetectorConfig c = Defaults(DriftDetectorKind::kPageHinkley);
    f(c);
    return Error(c);
  };
  EXPECT_EQ(with([](auto& c) { c.ph_delta = -0.1; }),
            "spec.drift.ph_delta: must be finite and >= 0, got -0.1");
  EXPECT_EQ(with([](auto& c) {
              c.ph_delta = INFINITY;
            }).rfind("spec.drift.ph_delta: ", 0),
            0u);
  EXPECT_EQ(with([](auto& c) { c.ph_delta = 0; }), "");
  EXPECT_EQ(with([](auto& c) { c.ph_lambda = 0; }),
            "spec.drift.ph_lambda: must be finite and > 0, got 0");
  EXPECT_EQ(with([](auto& c) { c.ph_warning_lambda = c.ph_lambda; }),
            "spec.drift.ph_warning_lambda: must be in (0, ph_lambda), got 100");
  EXPECT_EQ(with([](auto& c) {
              c.ph_warning_lambda = 0;
            }).rfind("spec.drift.ph_warning_lambda: ", 0),
            0u);
  EXPECT_EQ(with([](auto& c) { c.ph_alpha = 0; }),
            "spec.drift.ph_alpha: must be in (0, 1], got 0");
  EXPECT_EQ(with([](auto& c) { c.ph_alpha = 1.5; }),
            "spec.drift.ph_alpha: must be in (0, 1], got 1.5");
  EXPECT_EQ(with([](auto& c) { c.ph_alpha = 1; }), "");
  EXPECT_EQ(with([](auto& c) { c.min_observations = 1 << 30; }), "");
  EXPECT_EQ(with([](auto& c) { c.adwin_delta = 5; }), "");
}

TEST(DriftDetectorConfigTest, UnknownKind) {
  DriftDetectorConfig c;
  c.kind = static_cast<DriftDetectorKind>(7);
  EXPECT_EQ(Error(c),
            "spec.drift.kind: must be NONE, ADWIN or PAGE_HINKLEY, got 7");
}

}  // namespace
}  // namespace lepton
