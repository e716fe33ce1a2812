// Seeded synthetic classification streams with a known concept change, for
// the drift tests: x ~ N(0, I_d), y = 1 if w_t . x > 0 (flipped with
// probability `noise`), where the labeling hyperplane w_t
//   - stationary: never changes (the control);
//   - abrupt: rotates by `angle` radians at example `change_at`;
//   - gradual: rotates linearly from 0 to `angle` over the `ramp` examples
//     that start at `change_at`.
// The same seed gives the same stream on any machine with this toolchain.
#ifndef LEPTON_TESTS_CORE_CONCEPT_STREAM_H_
#define LEPTON_TESTS_CORE_CONCEPT_STREAM_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/learning/example.h"

namespace lepton {

class ConceptStream {
 public:
  enum class Change { kStationary, kAbrupt, kGradual };
  struct Options {
    Change change = Change::kStationary;
    int dims = 20;
    uint64_t seed = 1;
    double noise = 0.05;
    int64_t change_at = 50000;
    int64_t ramp = 20000;
    double angle = 1.5707963267948966;  // pi / 2
  };

  explicit ConceptStream(const Options& o) : o_(o), rng_(o.seed) {
    // Two orthonormal directions: the concept before (u) and the direction
    // it turns towards (v).
    std::normal_distribution<double> normal;
    u_.resize(o.dims);
    v_.resize(o.dims);
    for (double& x : u_) x = normal(rng_);
    for (double& x : v_) x = normal(rng_);
    Normalize(u_);
    double dot = 0;
    for (int i = 0; i < o.dims; ++i) dot += u_[i] * v_[i];
    for (int i = 0; i < o.dims; ++i) v_[i] -= dot * u_[i];
    Normalize(v_);
  }

  // The angle of the concept at example t (0-based).
  double AngleAt(int64_t t) const {
    if (o_.change == Change::kStationary || t < o_.change_at) return 0;
    if (o_.change == Change::kAbrupt) return o_.angle;
    const double f = std::min(1.0, static_cast<double>(t - o_.change_at) /
                                       static_cast<double>(o_.ramp));
    return f * o_.angle;
  }

  Example Next() {
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform;
    const double a = AngleAt(t_++);
    Example e;
    e.features.dense.resize(o_.dims);
    double score = 0;
    for (int i = 0; i < o_.dims; ++i) {
      const double x = normal(rng_);
      e.features.dense[i] = static_cast<float>(x);
      score += (std::cos(a) * u_[i] + std::sin(a) * v_[i]) * x;
    }
    bool y = score > 0;
    if (uniform(rng_) < o_.noise) y = !y;
    e.label = y ? 1.0f : 0.0f;
    return e;
  }

  std::vector<Example> Batch(int n) {
    std::vector<Example> batch;
    batch.reserve(n);
    for (int i = 0; i < n; ++i) batch.push_back(Next());
    return batch;
  }

 private:
  static void Normalize(std::vector<double>& x) {
    double n = 0;
    for (double v : x) n += v * v;
    n = std::sqrt(n);
    for (double& v : x) v /= n;
  }

  const Options o_;
  std::mt19937_64 rng_;
  std::vector<double> u_, v_;
  int64_t t_ = 0;
};

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_CONCEPT_STREAM_H_
