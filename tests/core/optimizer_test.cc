// Tests of the optimizer rules (core/learning/optimizer.h): SGD and AdaGrad
// steps against hand-computed values, L2, the SGD decay schedule, and
// overflow detection. FTRL and Adam: optimizer_ftrl_adam_test.cc; through
// the Learner: optimizer_learner_test.cc.
#include "core/learning/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/learning/model_spec.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

StepRule Sgd(float learning_rate) {
  StepRule rule;
  rule.kind = OptimizerKind::kSgd;
  rule.learning_rate = learning_rate;
  return rule;
}

StepRule Adagrad(float learning_rate, float epsilon) {
  StepRule rule;
  rule.kind = OptimizerKind::kAdagrad;
  rule.learning_rate = learning_rate;
  rule.epsilon = epsilon;
  return rule;
}

TEST(SgdStepTest, MatchesHandComputedValues) {
  std::vector<float> w = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g = {0.5f, 0.25f, -1.0f};
  EXPECT_TRUE(ApplyStep(Sgd(0.1f), 0.0f, 3, g.data(), w.data(), nullptr));
  // w -= 0.1 * g
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  EXPECT_FLOAT_EQ(w[1], -2.025f);
  EXPECT_FLOAT_EQ(w[2], 0.6f);
}

TEST(SgdStepTest, L2AddsLambdaTimesWeightToGradient) {
  std::vector<float> w = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g = {0.5f, 0.25f, -1.0f};
  EXPECT_TRUE(ApplyStep(Sgd(0.1f), 0.5f, 3, g.data(), w.data(), nullptr));
  // g + 0.5 w = {1, -0.75, -0.75}; w -= 0.1 * that.
  EXPECT_FLOAT_EQ(w[0], 0.9f);
  EXPECT_FLOAT_EQ(w[1], -1.925f);
  EXPECT_FLOAT_EQ(w[2], 0.575f);
}

TEST(SgdStepTest, ZeroL2AndZeroGradientLeaveWeightsExactly) {
  std::vector<float> w = {1.0f, -2.0f, 0.5f, 1e30f, -3e-30f};
  const std::vector<float> before = w;
  const std::vector<float> g(w.size(), 0.0f);
  EXPECT_TRUE(ApplyStep(Sgd(0.7f), 0.0f, static_cast<int64_t>(w.size()),
                        g.data(), w.data(), nullptr));
  EXPECT_EQ(w, before);
  // With l2 > 0 the same step shrinks every weight.
  EXPECT_TRUE(ApplyStep(Sgd(0.7f), 0.1f, static_cast<int64_t>(w.size()),
                        g.data(), w.data(), nullptr));
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_FLOAT_EQ(w[i], before[i] * (1 - 0.7f * 0.1f)) << i;
  }
}

TEST(SgdStepTest, OnlyTouchesTheRun) {
  std::vector<float> w = {1, 2, 3, 4, 5};
  const std::vector<float> g = {1, 1, 1, 1, 1};
  EXPECT_TRUE(
      ApplyStep(Sgd(1.0f), 0.0f, 2, g.data() + 1, w.data() + 1, nullptr));
  EXPECT_EQ(w, (std::vector<float>{1, 1, 2, 4, 5}));
}

TEST(AdagradStepTest, MatchesHandComputedValues) {
  std::vector<float> w = {1.0f, 1.0f, -0.5f};
  std::vector<float> acc = {0.0f, 1.0f, 12.0f};
  const std::vector<float> g = {2.0f, -1.0f, 2.0f};
  EXPECT_TRUE(
      ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, 3, g.data(), w.data(), acc.data()));
  // acc += g^2 = {4, 2, 16}; w -= 0.1 g / (sqrt(acc) + 1e-6).
  EXPECT_FLOAT_EQ(acc[0], 4.0f);
  EXPECT_FLOAT_EQ(acc[1], 2.0f);
  EXPECT_FLOAT_EQ(acc[2], 16.0f);
  EXPECT_NEAR(w[0], 1.0 - 0.1 * 2 / (2 + 1e-6), 1e-6);           // 0.90000005
  EXPECT_NEAR(w[1], 1.0 + 0.1 / (std::sqrt(2.0) + 1e-6), 1e-6);  // 1.0707106
  EXPECT_NEAR(w[2], -0.5 - 0.1 * 2 / (4 + 1e-6), 1e-6);          // -0.55
  EXPECT_NEAR(w[0], 0.9f, 1e-6);
  EXPECT_NEAR(w[1], 1.0707106f, 1e-6);
  EXPECT_NEAR(w[2], -0.55f, 1e-6);
}

TEST(AdagradStepTest, EpsilonMattersWhenAccumulatorIsZero) {
  std::vector<float> w = {1.0f};
  std::vector<float> acc = {0.0f};
  const std::vector<float> g = {0.0f};
  EXPECT_TRUE(
      ApplyStep(Adagrad(0.1f, 0.5f), 0.0f, 1, g.data(), w.data(), acc.data()));
  EXPECT_EQ(w[0], 1.0f);  // 0 / (0 + eps): no NaN, no change
  EXPECT_EQ(acc[0], 0.0f);
  // A large epsilon damps the step: 0.1 * 1 / (1 + 1).
  std::vector<float> g1 = {1.0f};
  EXPECT_TRUE(
      ApplyStep(Adagrad(0.1f, 1.0f), 0.0f, 1, g1.data(), w.data(), acc.data()));
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  EXPECT_FLOAT_EQ(acc[0], 1.0f);
}

TEST(AdagradStepTest, L2AddsLambdaTimesWeightToGradient) {
  std::vector<float> w = {2.0f, -4.0f};
  std::vector<float> acc = {0.0f, 9.0f};
  const std::vector<float> g = {1.0f, 0.0f};
  EXPECT_TRUE(ApplyStep(Adagrad(0.5f, 1e-6f), 0.25f, 2, g.data(), w.data(),
                        acc.data()));
  // g + 0.25 w = {1.5, -1}; acc = {2.25, 10}.
  EXPECT_FLOAT_EQ(acc[0], 2.25f);
  EXPECT_FLOAT_EQ(acc[1], 10.0f);
  EXPECT_NEAR(w[0], 2.0 - 0.5 * 1.5 / (1.5 + 1e-6), 1e-6);
  EXPECT_NEAR(w[1], -4.0 + 0.5 * 1.0 / (std::sqrt(10.0) + 1e-6), 1e-6);
}

TEST(AdagradStepTest, ZeroL2AndZeroGradientLeaveEverythingExactly) {
  std::vector<float> w = {1.5f, -2.0f, 7.0f};
  std::vector<float> acc = {0.25f, 4.0f, 0.0f};
  const std::vector<float> w0 = w;
  const std::vector<float> acc0 = acc;
  const std::vector<float> g(3, 0.0f);
  EXPECT_TRUE(
      ApplyStep(Adagrad(0.3f, 1e-6f), 0.0f, 3, g.data(), w.data(), acc.data()));
  EXPECT_EQ(w, w0);
  EXPECT_EQ(acc, acc0);
}

TEST(RuleForStepTest, SgdInverseScalingDecay) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kSgd;
  config.learning_rate = 123.0f;  // replaced by the argument
  config.power_t = 0.5f;
  for (uint64_t t : {0u, 1u, 3u, 8u, 99u, 12345u}) {
    const StepRule rule = RuleForStep(config, 0.2f, t);
    EXPECT_EQ(rule.kind, OptimizerKind::kSgd);
    const double expected = 0.2f / std::pow(1.0 + t, 0.5);
    EXPECT_NEAR(rule.learning_rate, expected, 1e-6 * expected) << "t " << t;
  }
  EXPECT_FLOAT_EQ(RuleForStep(config, 0.2f, 3).learning_rate, 0.1f);
  EXPECT_FLOAT_EQ(RuleForStep(config, 0.2f, 99).learning_rate, 0.02f);

  config.power_t = 1.0f;
  EXPECT_FLOAT_EQ(RuleForStep(config, 1.0f, 0).learning_rate, 1.0f);
  EXPECT_FLOAT_EQ(RuleForStep(config, 1.0f, 1).learning_rate, 0.5f);
  EXPECT_FLOAT_EQ(RuleForStep(config, 1.0f, 9).learning_rate, 0.1f);

  config.power_t = 0.25f;
  for (uint64_t t : {2u, 15u, 80u}) {
    const double expected = 0.8f / std::pow(1.0 + t, 0.25);
    EXPECT_NEAR(RuleForStep(config, 0.8f, t).learning_rate, expected,
                1e-6 * expected)
        << "t " << t;
  }
}

TEST(RuleForStepTest, ZeroPowerTKeepsRateConstant) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kSgd;
  config.power_t = 0.0f;
  for (uint64_t t : {0u, 1u, 1000u, 1000000u}) {
    EXPECT_EQ(RuleForStep(config, 0.3f, t).learning_rate, 0.3f) << t;
  }
}

TEST(RuleForStepTest, AdagradIgnoresPowerTAndCarriesEpsilon) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kAdagrad;
  config.power_t = 0.5f;  // SGD only
  config.epsilon = 1e-3f;
  const StepRule rule = RuleForStep(config, 0.05f, 99);
  EXPECT_EQ(rule.kind, OptimizerKind::kAdagrad);
  EXPECT_EQ(rule.learning_rate, 0.05f);
  EXPECT_EQ(rule.epsilon, 1e-3f);
}

TEST(ApplyStepOverflowTest, SgdStepToInfinityIsReported) {
  std::vector<float> w = {0.0f};
  const std::vector<float> g = {1e30f};
  // lr * g = 1e40 = inf in float.
  EXPECT_FALSE(ApplyStep(Sgd(1e10f), 0.0f, 1, g.data(), w.data(), nullptr));
  EXPECT_TRUE(std::isinf(w[0]));
}

TEST(ApplyStepOverflowTest, SgdWeightOverflowIsReported) {
  std::vector<float> w = {3e38f};
  const std::vector<float> g = {-1e38f};
  EXPECT_FALSE(ApplyStep(Sgd(1.0f), 0.0f, 1, g.data(), w.data(), nullptr));
}

TEST(ApplyStepOverflowTest, NanGradientIsReported) {
  std::vector<float> w = {0.0f, 0.0f};
  const std::vector<float> g = {0.0f, std::nanf("")};
  EXPECT_FALSE(ApplyStep(Sgd(0.1f), 0.0f, 2, g.data(), w.data(), nullptr));
  std::vector<float> acc = {0.0f, 0.0f};
  w = {0.0f, 0.0f};
  EXPECT_FALSE(
      ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, 2, g.data(), w.data(), acc.data()));
}

TEST(ApplyStepOverflowTest, AdagradAccumulatorOverflowIsReported) {
  // g^2 = 1e40 overflows the accumulator; the weight itself stays finite
  // (w - lr * g / inf = w), but the state is unusable.
  std::vector<float> w = {1.0f};
  std::vector<float> acc = {0.0f};
  const std::vector<float> g = {1e20f};
  EXPECT_FALSE(
      ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, 1, g.data(), w.data(), acc.data()));
  EXPECT_TRUE(std::isinf(acc[0]));
  EXPECT_TRUE(std::isfinite(w[0]));
}

TEST(ApplyStepOverflowTest, AdagradAccumulatorSumOverflowIsReported) {
  std::vector<float> w = {1.0f};
  std::vector<float> acc = {3.3e38f};
  const std::vector<float> g = {1e19f};  // g^2 = 1e38: finite, sum is not
  EXPECT_FALSE(
      ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, 1, g.data(), w.data(), acc.data()));
}

TEST(ApplyStepOverflowTest, LargeFiniteStepsAreFine) {
  std::vector<float> w = {0.0f, 1e30f};
  const std::vector<float> g = {1e30f, -1e20f};
  EXPECT_TRUE(ApplyStep(Sgd(1e8f), 0.0f, 2, g.data(), w.data(), nullptr));
  EXPECT_FLOAT_EQ(w[0], -1e38f);
  std::vector<float> acc = {0.0f, 1e36f};
  std::vector<float> w2 = {0.0f, 0.0f};
  const std::vector<float> g2 = {1e18f, 1e18f};
  EXPECT_TRUE(ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, 2, g2.data(), w2.data(),
                        acc.data()));
  EXPECT_FLOAT_EQ(acc[0], 1e36f);
  EXPECT_FLOAT_EQ(acc[1], 2e36f);
}

// The finiteness check must cover every position of a run, including the
// ones a vectorized loop handles in its tail.
TEST(ApplyStepOverflowTest, OverflowAnywhereInALongRunIsReported) {
  constexpr int64_t kN = 37;
  for (int64_t bad = 0; bad < kN; ++bad) {
    std::vector<float> g(kN, 1.0f);
    g[bad] = 1e30f;
    std::vector<float> w(kN, 0.0f);
    EXPECT_FALSE(ApplyStep(Sgd(1e10f), 0.0f, kN, g.data(), w.data(), nullptr))
        << "SGD, overflow at " << bad;
    std::vector<float> acc(kN, 0.0f);
    std::vector<float> w2(kN, 0.0f);
    std::vector<float> g2(kN, 1.0f);
    g2[bad] = 1e20f;
    EXPECT_FALSE(ApplyStep(Adagrad(0.1f, 1e-6f), 0.0f, kN, g2.data(), w2.data(),
                           acc.data()))
        << "AdaGrad, overflow at " << bad;
  }
  std::vector<float> g(kN, 1.0f);
  std::vector<float> w(kN, 0.0f);
  EXPECT_TRUE(ApplyStep(Sgd(1e10f), 0.0f, kN, g.data(), w.data(), nullptr));
}

TEST(ApplyStepOverflowTest, L2OverflowIsReported) {
  // The gradient is finite but l2 * w is not.
  std::vector<float> w = {3e38f};
  const std::vector<float> g = {0.0f};
  EXPECT_FALSE(ApplyStep(Sgd(0.1f), 10.0f, 1, g.data(), w.data(), nullptr));
}

// ApplyStepToRows over rows in row order (each row's weights, then its
// state) gives, bit for bit, what ApplyStep gives row by row.
TEST(ApplyStepToRowsTest, EqualsApplyStepOnEachRow) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kAdagrad, OptimizerKind::kFtrl,
        OptimizerKind::kAdam}) {
    for (const int64_t k : {1, 3}) {
      for (const float max_step : {0.0f, 0.01f}) {
        SCOPED_TRACE(testing::Message() << OptimizerKindName(kind) << " k=" << k
                                        << " max_step=" << max_step);
        OptimizerConfig config;
        config.kind = kind;
        config.l1 = 0.01f;
        StepRule rule = RuleForStep(config, 0.1f, 4);
        rule.max_step = max_step;
        const int64_t rows = 37;
        const int64_t stride = 3 * k;  // three arrays, as FTRL and Adam have
        std::vector<float> g(rows * k);
        for (float& v : g) v = u(rng);
        std::vector<float> strided(rows * stride);
        for (float& v : strided) v = std::fabs(u(rng));
        std::vector<float> by_row = strided;
        const bool finite = ApplyStepToRows(
            rule, 0.02f, rows, k, stride, g.data(), strided.data(),
            strided.data() + k, strided.data() + 2 * k);
        bool each_finite = true;
        for (int64_t r = 0; r < rows; ++r) {
          float* w = by_row.data() + r * stride;
          each_finite &=
              ApplyStep(rule, 0.02f, k, g.data() + r * k, w, w + k, w + 2 * k);
        }
        EXPECT_EQ(finite, each_finite);
        EXPECT_TRUE(BitEqual(strided, by_row));
      }
    }
  }
}

}  // namespace
}  // namespace lepton
