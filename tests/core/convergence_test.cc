// Convergence of the model store's learners on data with a known answer:
// linear regression (dense, sparse, mixed), logistic regression over
// minibatch sizes, softmax on Gaussian blobs.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/model_store_test_support.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

// Updates `name` with `data` in consecutive batches of `batch` examples
// (data.size() must be a multiple), each for `epochs` passes.
void TrainInBatches(ModelStore& store, absl::string_view name,
                    const std::vector<Example>& data, size_t batch,
                    int32_t epochs) {
  UpdateOptions options;
  options.epochs = epochs;
  for (size_t i = 0; i < data.size(); i += batch) {
    MustUpdate(store, name,
               std::vector<Example>(data.begin() + i, data.begin() + i + batch),
               options);
  }
}

// ------------------------------------------------------------ Convergence

// y = 2 x0 - 3 x1 + 0.5, noise-free.
float Target(float x0, float x1) { return 2 * x0 - 3 * x1 + 0.5f; }

void ExpectRecovered(const ModelVersion& v, int64_t bias_row) {
  EXPECT_NEAR(v.weight(0), 2.0f, 1e-2);
  EXPECT_NEAR(v.weight(1), -3.0f, 1e-2);
  EXPECT_NEAR(v.weight(bias_row), 0.5f, 1e-2);
}

TEST(ConvergenceTest, LinearRegressionDense) {
  ModelStore store;
  ASSERT_TRUE(store
                  .CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 2)
                                        .Sgd(0.1f)
                                        .Minibatch(8))
                  .ok());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<Example> data;
  for (int i = 0; i < 2000; ++i) {
    const float x0 = u(rng), x1 = u(rng);
    data.push_back(Dense({x0, x1}, Target(x0, x1)));
  }
  TrainInBatches(store, "m", data, 100, /*epochs=*/2);
  auto v = MustAcquire(store, "m");
  ASSERT_NE(v, nullptr);
  ExpectRecovered(*v, 2);
  std::vector<Features> x(1);
  x[0].dense = {0.3f, -0.7f};
  EXPECT_NEAR(MustPredict(store, "m", x).value(0), Target(0.3f, -0.7f), 2e-2);
}

TEST(ConvergenceTest, LinearRegressionSparse) {
  constexpr int64_t kD = 1000;
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel("m", SpecBuilder(ModelType::kLinearRegression, kD)
                                .Sgd(0.1f)
                                .Minibatch(4))
          .ok());
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<Example> data;
  for (int i = 0; i < 3000; ++i) {
    const float x0 = u(rng), x1 = u(rng);
    // Features 2 .. 9 have true weight 0; 10 .. kD-1 never appear.
    const uint32_t noise = 2 + rng() % 8;
    const float xn = u(rng);
    if (i % 3 == 0) {
      data.push_back(Sparse({noise, 1, 0}, {xn, x1, x0}, Target(x0, x1)));
    } else {
      data.push_back(Sparse({0, 1, noise}, {x0, x1, xn}, Target(x0, x1)));
    }
  }
  TrainInBatches(store, "m", data, 250, /*epochs=*/3);
  auto v = MustAcquire(store, "m");
  ASSERT_NE(v, nullptr);
  ExpectRecovered(*v, kD);
  for (int64_t f = 2; f < 10; ++f) EXPECT_NEAR(v->weight(f), 0.0f, 1e-2) << f;
  for (int64_t f = 10; f < kD; ++f) ASSERT_EQ(v->weight(f), 0.0f) << f;
}

TEST(ConvergenceTest, LinearRegressionMixedDenseAndSparse) {
  ModelStore store;
  ASSERT_TRUE(store
                  .CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 3)
                                        .Sgd(0.1f)
                                        .Minibatch(5))
                  .ok());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<Example> data;
  for (int i = 0; i < 2000; ++i) {
    const float x0 = u(rng), x1 = u(rng), x2 = u(rng);
    if (i % 2 == 0) {
      data.push_back(Dense({x0, x1, x2}, Target(x0, x1)));
    } else {
      data.push_back(Sparse({1, 0, 2}, {x1, x0, x2}, Target(x0, x1)));
    }
  }
  TrainInBatches(store, "m", data, 200, /*epochs=*/2);
  auto v = MustAcquire(store, "m");
  ASSERT_NE(v, nullptr);
  ExpectRecovered(*v, 3);
  EXPECT_NEAR(v->weight(2), 0.0f, 1e-2);
}

class LogisticConvergenceTest : public ::testing::TestWithParam<int32_t> {};

TEST_P(LogisticConvergenceTest, SeparableDataIsLearned) {
  const int32_t minibatch = GetParam();
  constexpr int64_t kD = 10;
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> truth(kD);
  for (float& w : truth) w = normal(rng);
  auto make = [&](int n) {
    std::vector<Example> data;
    for (int i = 0; i < n; ++i) {
      std::vector<float> x(kD);
      double z = 0.3;
      for (int64_t j = 0; j < kD; ++j) {
        x[j] = normal(rng);
        z += truth[j] * x[j];
      }
      data.push_back(Dense(x, z > 0 ? 1.0f : 0.0f));
    }
    return data;
  };
  const std::vector<Example> train = make(2000);
  const std::vector<Example> test = make(1000);
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, kD)
                                .Sgd(0.5f)
                                .Minibatch(minibatch))
          .ok());
  TrainInBatches(store, "m", train, 200, /*epochs=*/4);
  const Predictions p = MustPredict(store, "m", FeaturesOf(test));
  int correct = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    correct += p.labels[i] == static_cast<int32_t>(test[i].label);
  }
  EXPECT_GT(correct / 1000.0, 0.95);
  const ModelInfo info = *store.GetModel("m");
  EXPECT_EQ(
      info.counters.steps,
      10u * 4u * static_cast<uint64_t>((200 + minibatch - 1) / minibatch));
}

INSTANTIATE_TEST_SUITE_P(Minibatch, LogisticConvergenceTest,
                         ::testing::Values(1, 16));

TEST(ConvergenceTest, SoftmaxOnGaussianBlobs) {
  constexpr int64_t kD = 5;
  constexpr int32_t kK = 4;
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0, 1);
  auto make = [&](int n) {
    std::vector<Example> data;
    for (int i = 0; i < n; ++i) {
      const int32_t y = static_cast<int32_t>(rng() % kK);
      std::vector<float> x(kD);
      for (float& v : x) v = normal(rng);
      x[y] += 4;  // class k is centered at 4 e_k
      if (i % 4 == 3) {
        // Some examples sparse: only the coordinates above 1.
        std::vector<uint32_t> idx;
        std::vector<float> val;
        for (int64_t j = 0; j < kD; ++j) {
          if (x[j] > 1) {
            idx.push_back(static_cast<uint32_t>(j));
            val.push_back(x[j]);
          }
        }
        data.push_back(Sparse(idx, val, static_cast<float>(y)));
      } else {
        data.push_back(Dense(x, static_cast<float>(y)));
      }
    }
    return data;
  };
  const std::vector<Example> train = make(2000);
  const std::vector<Example> test = make(1000);
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel("m", SpecBuilder(ModelType::kSoftmaxRegression, kD, kK)
                                .Adagrad(0.2f)
                                .Minibatch(8))
          .ok());
  TrainInBatches(store, "m", train, 250, /*epochs=*/3);
  const Predictions p = MustPredict(store, "m", FeaturesOf(test));
  ASSERT_EQ(p.size(), test.size());
  int correct = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    correct += p.labels[i] == static_cast<int32_t>(test[i].label);
    double sum = 0;
    for (float q : p.probabilities(i)) sum += q;
    ASSERT_NEAR(sum, 1.0, 1e-5);
  }
  EXPECT_GT(correct / 1000.0, 0.90);
  const ModelInfo info = *store.GetModel("m");
  EXPECT_GT(info.counters.progressive_accuracy(), 0.85);
}

}  // namespace
}  // namespace lepton
