// Predictions and one optimizer step of the model store checked against a
// plain double-precision recomputation, over the shapes that exercise every
// path of the dense kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/model_store_test_support.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

// ------------------------------------------------------------ Reference math

// Predictions and one optimizer step checked against a plain double-precision
// recomputation from the version's weights, over output counts and model
// sizes that exercise every path of the dense kernels (1 output; a partial,
// a full, one-and-a-bit and two-and-a-bit vectors of outputs; single-page and
// many-page layouts).
struct ReferenceCase {
  int32_t outputs;   // 1: logistic regression; K >= 2: softmax
  int64_t features;  // D
  bool with_dense;   // the step's batch holds dense examples
};

void PrintTo(const ReferenceCase& c, std::ostream* os) {
  *os << "K" << c.outputs << "_D" << c.features
      << (c.with_dense ? "_mixed" : "_sparse");
}

class ReferenceTest : public ::testing::TestWithParam<ReferenceCase> {};

// Raw outputs z = W^T x + b in double; W is feature-major (AllWeights).
std::vector<double> ReferenceOutputs(const std::vector<float>& w, int64_t d,
                                     int32_t k, const Features& f) {
  std::vector<double> z(k);
  for (int32_t o = 0; o < k; ++o) z[o] = w[d * k + o];
  if (!f.dense.empty()) {
    for (int64_t j = 0; j < d; ++j) {
      for (int32_t o = 0; o < k; ++o) z[o] += double{f.dense[j]} * w[j * k + o];
    }
  } else {
    for (size_t t = 0; t < f.indices.size(); ++t) {
      for (int32_t o = 0; o < k; ++o) {
        z[o] += double{f.values[t]} * w[int64_t{f.indices[t]} * k + o];
      }
    }
  }
  return z;
}

// Served probabilities: sigmoid for one output, softmax otherwise.
std::vector<double> ReferenceProbabilities(std::vector<double> z) {
  if (z.size() == 1) return {1 / (1 + std::exp(-z[0]))};
  double max = z[0];
  for (double v : z) max = std::max(max, v);
  double sum = 0;
  for (double& v : z) {
    v = std::exp(v - max);
    sum += v;
  }
  for (double& v : z) v /= sum;
  return z;
}

TEST_P(ReferenceTest, PredictionAndStepMatchPlainRecomputation) {
  const ReferenceCase& c = GetParam();
  const int32_t k = c.outputs;
  const int64_t d = c.features;
  const ModelType type =
      k == 1 ? ModelType::kLogisticRegression : ModelType::kSoftmaxRegression;
  constexpr int kBatch = 7;  // one tile of 4 rows and 3 single rows
  constexpr float kLearningRate = 0.5f;
  constexpr float kL2 = 0.01f;
  ModelStore store;
  ASSERT_TRUE(store
                  .CreateModel("m", SpecBuilder(type, d, k == 1 ? 0 : k)
                                        .Sgd(kLearningRate)
                                        .L2(kL2)
                                        .Minibatch(kBatch))
                  .ok());

  std::mt19937 rng(static_cast<uint32_t>(k * 1000 + d));
  // Feature values ~ N(0, 1/D) keep the outputs O(1) for any D.
  std::normal_distribution<float> normal(0, 1.0f / std::sqrt(float(d)));
  std::normal_distribution<float> unit_normal(0, 1);
  auto make_batch = [&](bool dense_too) {
    std::vector<Example> batch;
    for (int i = 0; i < kBatch; ++i) {
      const float label = static_cast<float>(rng() % std::max(2, k));
      const float weight = 0.5f + static_cast<float>(rng() % 4) / 2;
      if (dense_too && i % 3 != 1) {
        std::vector<float> x(d);
        for (float& v : x) v = normal(rng);
        batch.push_back(Dense(x, label, weight));
      } else {
        std::vector<uint32_t> idx;
        std::vector<float> val;
        for (int t = 0; t < 4; ++t) {
          const uint32_t j = static_cast<uint32_t>(rng() % d);
          if (std::find(idx.begin(), idx.end(), j) != idx.end()) continue;
          idx.push_back(j);
          val.push_back(unit_normal(rng));
        }
        batch.push_back(Sparse(idx, val, label, weight));
      }
    }
    return batch;
  };
  // Warm-up: nonzero weights everywhere (dense examples touch every row).
  MustUpdate(store, "m", make_batch(true));
  MustUpdate(store, "m", make_batch(true));
  auto before = MustAcquire(store, "m");
  ASSERT_NE(before, nullptr);
  const std::vector<float> w0 = AllWeights(*before);

  // Predictions: 9 dense instances (two tiles of 4 and one single) and 2
  // sparse ones, in one batch.
  std::vector<Features> instances;
  for (int i = 0; i < 11; ++i) {
    Features f;
    if (i == 4 || i == 10) {
      f.indices = {0, static_cast<uint32_t>(d - 1)};
      f.values = {1.5f, -2};
    } else {
      f.dense.resize(d);
      for (float& v : f.dense) v = normal(rng);
    }
    instances.push_back(f);
  }
  const Predictions p = MustPredict(store, "m", instances);
  ASSERT_EQ(p.size(), instances.size());
  for (size_t i = 0; i < instances.size(); ++i) {
    const std::vector<double> q =
        ReferenceProbabilities(ReferenceOutputs(w0, d, k, instances[i]));
    for (int32_t o = 0; o < k; ++o) {
      ASSERT_NEAR(p.probabilities(i)[o], q[o], 1e-5)
          << "instance " << i << " output " << o;
    }
  }

  // One step over the whole batch: W -= lr (g + l2 W) on the touched rows,
  // g = (1/n) sum_i weight_i (p_i - e_{y_i}) x_i; the bias without l2.
  const std::vector<Example> batch = make_batch(c.with_dense);
  MustUpdate(store, "m", batch);
  auto after = MustAcquire(store, "m");
  ASSERT_NE(after, nullptr);
  const std::vector<float> w1 = AllWeights(*after);

  std::vector<double> g((d + 1) * k, 0.0);
  std::vector<uint8_t> touched(d + 1, 0);
  touched[d] = 1;
  for (const Example& e : batch) {
    std::vector<double> dz =
        ReferenceProbabilities(ReferenceOutputs(w0, d, k, e.features));
    if (k == 1) {
      dz[0] -= e.label;
    } else {
      dz[static_cast<int>(e.label)] -= 1;
    }
    const double scale = double{e.weight} / kBatch;
    for (int32_t o = 0; o < k; ++o) g[d * k + o] += scale * dz[o];
    if (!e.features.dense.empty()) {
      std::fill(touched.begin(), touched.end(), 1);
      for (int64_t j = 0; j < d; ++j) {
        for (int32_t o = 0; o < k; ++o) {
          g[j * k + o] += scale * dz[o] * e.features.dense[j];
        }
      }
    } else {
      for (size_t t = 0; t < e.features.indices.size(); ++t) {
        const int64_t j = e.features.indices[t];
        touched[j] = 1;
        for (int32_t o = 0; o < k; ++o) {
          g[j * k + o] += scale * dz[o] * e.features.values[t];
        }
      }
    }
  }
  int64_t changed = 0;
  for (int64_t j = 0; j <= d; ++j) {
    for (int32_t o = 0; o < k; ++o) {
      const int64_t i = j * k + o;
      if (!touched[j]) {
        ASSERT_EQ(w1[i], w0[i]) << "untouched row " << j << " output " << o;
        continue;
      }
      const double l2 = j == d ? 0.0 : kL2;
      const double expected = w0[i] - kLearningRate * (g[i] + l2 * w0[i]);
      ASSERT_NEAR(w1[i], expected, 1e-5 + 1e-5 * std::fabs(expected))
          << "row " << j << " output " << o;
      changed += w1[i] != w0[i];
    }
  }
  EXPECT_GT(changed, 0);
}

std::vector<ReferenceCase> ReferenceCases() {
  std::vector<ReferenceCase> cases;
  for (int32_t k : {1, 2, 3, 8, 9, 16, 17, 25}) {
    for (int64_t d : {5, 37, 3000}) {
      cases.push_back({k, d, true});
    }
    cases.push_back({k, 37, false});
  }
  // Many-page layouts: 1 output (256 rows a page) and 25 (8 rows a page).
  cases.push_back({1, 70000, true});
  cases.push_back({1, 70000, false});
  cases.push_back({25, 3001, false});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, ReferenceTest, ::testing::ValuesIn(ReferenceCases()),
    [](const ::testing::TestParamInfo<ReferenceCase>& info) {
      return absl::StrCat("K", info.param.outputs, "_D", info.param.features,
                          info.param.with_dense ? "_mixed" : "_sparse");
    });

}  // namespace
}  // namespace lepton
