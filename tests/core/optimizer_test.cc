// Tests of the optimizer rules (core/learning/optimizer.h): SGD, AdaGrad, FTRL
// and Adam steps against hand-computed values, L1 zeros, L2, the SGD decay
// schedule, Adam's bias correction, max_step and overflow detection; and,
// through the Learner, importance weights, gradient clipping, max_step and
// determinism.
#include "core/learning/optimizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "core/learning/example.h"
#include "core/learning/learner.h"
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

// ---------------------------------------------------------------- FTRL ---

StepRule Ftrl(float alpha, float beta, float l1) {
  StepRule rule;
  rule.kind = OptimizerKind::kFtrl;
  rule.learning_rate = alpha;
  rule.beta = beta;
  rule.l1 = l1;
  return rule;
}

// McMahan et al. 2013, Algorithm 1, for one coordinate, in double.
struct FtrlCoord {
  double w, z, n;
};
FtrlCoord FtrlReference(FtrlCoord c, double g, double alpha, double beta,
                        double l1, double l2) {
  const double n = c.n + g * g;
  const double sigma = (std::sqrt(n) - std::sqrt(c.n)) / alpha;
  const double z = c.z + g - sigma * c.w;
  const double w =
      std::fabs(z) <= l1
          ? 0.0
          : -(z - std::copysign(l1, z)) / ((beta + std::sqrt(n)) / alpha + l2);
  return {w, z, n};
}

TEST(FtrlStepTest, MatchesHandComputedValues) {
  std::vector<float> w = {0.0f, 0.3f, -0.2f};
  std::vector<float> z = {0.0f, -0.5f, 1.5f};
  std::vector<float> n = {0.0f, 4.0f, 1.0f};
  const std::vector<float> g = {2.0f, -0.75f, 0.5f};
  const std::vector<float> w0 = w, z0 = z, n0 = n;
  EXPECT_TRUE(ApplyStep(Ftrl(0.5f, 1.0f, 0.1f), 0.2f, 3, g.data(), w.data(),
                        z.data(), n.data()));
  // Coordinate 0 by hand: n = 4, sigma = 2 / 0.5 = 4, z = 2 - 4 * 0 = 2,
  // w = -(2 - 0.1) / ((1 + 2) / 0.5 + 0.2) = -1.9 / 6.2.
  EXPECT_FLOAT_EQ(n[0], 4.0f);
  EXPECT_FLOAT_EQ(z[0], 2.0f);
  EXPECT_NEAR(w[0], -1.9 / 6.2, 1e-7);
  for (int i = 0; i < 3; ++i) {
    const FtrlCoord want =
        FtrlReference({w0[i], z0[i], n0[i]}, g[i], 0.5, 1.0, 0.1, 0.2);
    EXPECT_NEAR(n[i], want.n, 1e-6) << i;
    EXPECT_NEAR(z[i], want.z, 1e-6) << i;
    EXPECT_NEAR(w[i], want.w, 1e-6) << i;
    EXPECT_NE(w[i], 0.0f) << i;
  }
}

TEST(FtrlStepTest, L1GivesExactZerosInsideTheBall) {
  // |z| after the step: 0.4, 1.0 (on the boundary), 1.2; l1 = 1.
  std::vector<float> w = {0.7f, -0.3f, 0.0f};
  std::vector<float> z = {0.0f, 0.0f, 0.0f};
  std::vector<float> n = {0.0f, 0.0f, 0.0f};
  // First step from n = 0 with w != 0: z = g - (|g| / alpha) * w.
  // alpha = 1: z0 = 0.4 - 0.4 * 0.7 = 0.12; z1 = 1 - 1 * -0.3 = 1.3;
  // w = 0 start for coordinate 2: z2 = -1.2.
  const std::vector<float> g = {0.4f, 1.0f, -1.2f};
  EXPECT_TRUE(ApplyStep(Ftrl(1.0f, 1.0f, 1.0f), 0.0f, 3, g.data(), w.data(),
                        z.data(), n.data()));
  EXPECT_NEAR(z[0], 0.12f, 1e-7);
  EXPECT_NEAR(z[1], 1.3f, 1e-7);
  EXPECT_EQ(z[2], -1.2f);
  EXPECT_EQ(w[0], 0.0f);  // a nonzero weight became exactly zero
  EXPECT_FALSE(std::signbit(w[0]));
  EXPECT_NEAR(w[1], -(1.3 - 1.0) / (1.0 + 1.0), 1e-6);
  EXPECT_NEAR(w[2], -(-1.2 + 1.0) / (1.0 + 1.2), 1e-6);

  // Exactly on the boundary, |z| = l1: zero.
  std::vector<float> wb = {0.0f}, zb = {0.0f}, nb = {0.0f};
  const std::vector<float> gb = {1.0f};
  EXPECT_TRUE(ApplyStep(Ftrl(1.0f, 1.0f, 1.0f), 0.0f, 1, gb.data(), wb.data(),
                        zb.data(), nb.data()));
  EXPECT_EQ(zb[0], 1.0f);
  EXPECT_EQ(wb[0], 0.0f);
}

TEST(FtrlStepTest, L2EntersTheClosedFormNotTheGradient) {
  std::vector<float> w1 = {0.5f}, z1 = {-1.0f}, n1 = {1.0f};
  std::vector<float> w2 = w1, z2 = z1, n2 = n1;
  const std::vector<float> g = {-0.5f};
  EXPECT_TRUE(ApplyStep(Ftrl(0.25f, 1.0f, 0.0f), 0.0f, 1, g.data(), w1.data(),
                        z1.data(), n1.data()));
  EXPECT_TRUE(ApplyStep(Ftrl(0.25f, 1.0f, 0.0f), 2.0f, 1, g.data(), w2.data(),
                        z2.data(), n2.data()));
  EXPECT_EQ(z1, z2);  // the state does not see l2
  EXPECT_EQ(n1, n2);
  const double root = std::sqrt(1.25);
  EXPECT_NEAR(w1[0], -z1[0] / ((1 + root) / 0.25), 1e-6);
  EXPECT_NEAR(w2[0], -z1[0] / ((1 + root) / 0.25 + 2.0), 1e-6);
}

TEST(FtrlStepTest, ZeroGradientLeavesEverythingExactly) {
  // The closed form recomputes w from unchanged z and n: the same bits.
  std::vector<float> w = {0.0f}, z = {0.0f}, n = {0.0f};
  const StepRule rule = Ftrl(0.3f, 1.0f, 0.05f);
  const std::vector<float> g1 = {0.7f};
  ASSERT_TRUE(
      ApplyStep(rule, 0.1f, 1, g1.data(), w.data(), z.data(), n.data()));
  const std::vector<float> w0 = w, z0 = z, n0 = n;
  ASSERT_NE(w[0], 0.0f);
  const std::vector<float> g0 = {0.0f};
  EXPECT_TRUE(
      ApplyStep(rule, 0.1f, 1, g0.data(), w.data(), z.data(), n.data()));
  EXPECT_TRUE(BitEqual(w, w0));
  EXPECT_TRUE(BitEqual(z, z0));
  EXPECT_TRUE(BitEqual(n, n0));
}

TEST(FtrlStepTest, OverflowIsReported) {
  std::vector<float> w = {0.0f}, z = {0.0f}, n = {0.0f};
  const std::vector<float> g = {1e20f};  // g^2 overflows n
  EXPECT_FALSE(ApplyStep(Ftrl(0.1f, 1.0f, 0.0f), 0.0f, 1, g.data(), w.data(),
                         z.data(), n.data()));
}

// ---------------------------------------------------------------- Adam ---

OptimizerConfig AdamConfig(float beta1, float beta2, float epsilon) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kAdam;
  config.beta1 = beta1;
  config.beta2 = beta2;
  config.epsilon = epsilon;
  return config;
}

TEST(RuleForStepTest, AdamBiasCorrectionUsesTheOneBasedStep) {
  const OptimizerConfig config = AdamConfig(0.9f, 0.999f, 1e-8f);
  const StepRule first = RuleForStep(config, 0.01f, 0);
  EXPECT_EQ(first.kind, OptimizerKind::kAdam);
  EXPECT_EQ(first.learning_rate, 0.01f);
  EXPECT_EQ(first.beta1, 0.9f);
  EXPECT_EQ(first.beta2, 0.999f);
  EXPECT_FLOAT_EQ(first.correction1, 1 - 0.9f);
  EXPECT_FLOAT_EQ(first.correction2, 1 - 0.999f);
  const StepRule later = RuleForStep(config, 0.01f, 999);  // t = 1000
  EXPECT_NEAR(later.correction1, 1 - std::pow(double{0.9f}, 1000), 1e-7);
  EXPECT_NEAR(later.correction2, 1 - std::pow(double{0.999f}, 1000), 1e-7);
  // beta1 = 0: no momentum, no correction.
  EXPECT_EQ(RuleForStep(AdamConfig(0.0f, 0.5f, 1e-8f), 1, 7).correction1, 1);
}

TEST(RuleForStepTest, FtrlCarriesL1AndBeta) {
  OptimizerConfig config;
  config.kind = OptimizerKind::kFtrl;
  config.l1 = 0.5f;
  config.beta = 2.0f;
  const StepRule rule = RuleForStep(config, 0.125f, 42);
  EXPECT_EQ(rule.kind, OptimizerKind::kFtrl);
  EXPECT_EQ(rule.learning_rate, 0.125f);  // alpha: no decay
  EXPECT_EQ(rule.l1, 0.5f);
  EXPECT_EQ(rule.beta, 2.0f);
  EXPECT_EQ(BiasRule(rule).l1, 0.0f);
  EXPECT_EQ(BiasRule(rule).beta, 2.0f);
}

TEST(AdamStepTest, TwoStepsMatchHandComputedValues) {
  // Binary-exact betas keep the reference close to the float computation.
  const double b1 = 0.75, b2 = 0.875, lr = 0.125, eps = 1e-3, l2 = 0.5;
  const OptimizerConfig config = AdamConfig(0.75f, 0.875f, 1e-3f);
  std::vector<float> w = {1.0f, -0.5f}, m = {0.0f, 0.0f}, v = {0.0f, 0.0f};
  const std::vector<float> g1 = {0.5f, -2.0f}, g2 = {-0.25f, 1.0f};
  double rw[2] = {1.0, -0.5}, rm[2] = {0, 0}, rv[2] = {0, 0};
  for (int t = 0; t < 2; ++t) {
    const std::vector<float>& g = t == 0 ? g1 : g2;
    ASSERT_TRUE(ApplyStep(RuleForStep(config, 0.125f, t), 0.5f, 2, g.data(),
                          w.data(), m.data(), v.data()));
    for (int i = 0; i < 2; ++i) {
      const double gi = g[i] + l2 * rw[i];
      rm[i] = b1 * rm[i] + (1 - b1) * gi;
      rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
      const double m_hat = rm[i] / (1 - std::pow(b1, t + 1));
      const double v_hat = rv[i] / (1 - std::pow(b2, t + 1));
      rw[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
      EXPECT_NEAR(m[i], rm[i], 1e-6) << "step " << t << " coordinate " << i;
      EXPECT_NEAR(v[i], rv[i], 1e-6) << "step " << t << " coordinate " << i;
      EXPECT_NEAR(w[i], rw[i], 1e-6) << "step " << t << " coordinate " << i;
    }
  }
  // By hand, step 1 of coordinate 0: g = 0.5 + 0.5 * 1 = 1; m_hat = 1,
  // v_hat = 1; w = 1 - 0.125 / (1 + 1e-3).
  // Step 2: g = -0.25 + 0.5 * w1.
  const double w1 = 1 - 0.125 / 1.001;
  const double g2_0 = -0.25 + 0.5 * w1;
  const double m2 = 0.75 * 0.25 + 0.25 * g2_0;
  const double v2 = 0.875 * 0.125 + 0.125 * g2_0 * g2_0;
  EXPECT_NEAR(w[0],
              w1 - 0.125 * (m2 / (1 - 0.5625)) /
                       (std::sqrt(v2 / (1 - 0.765625)) + 1e-3),
              1e-6);
}

TEST(AdamStepTest, OverflowIsReported) {
  std::vector<float> w = {0.0f}, m = {0.0f}, v = {0.0f};
  const std::vector<float> g = {1e20f};  // g^2 overflows v
  EXPECT_FALSE(ApplyStep(RuleForStep(AdamConfig(0.9f, 0.999f, 1e-8f), 1, 0),
                         0.0f, 1, g.data(), w.data(), m.data(), v.data()));
}

// ------------------------------------------------------------ max_step ---

TEST(MaxStepTest, EveryOptimizerClampsTheChange) {
  const float kMax = 0.0625f;
  const std::vector<float> g = {100.0f, -100.0f, 0.01f};
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                             OptimizerKind::kFtrl, OptimizerKind::kAdam}) {
    SCOPED_TRACE(OptimizerKindName(kind));
    OptimizerConfig config;
    config.kind = kind;
    StepRule rule = RuleForStep(config, 1.0f, 0);
    std::vector<float> free_w = {0.5f, 0.5f, 0.5f};
    std::vector<float> free_s1(3, 0.0f), free_s2(3, 0.0f);
    ASSERT_TRUE(ApplyStep(rule, 0.0f, 3, g.data(), free_w.data(),
                          free_s1.data(), free_s2.data()));
    rule.max_step = kMax;
    std::vector<float> w = {0.5f, 0.5f, 0.5f};
    std::vector<float> s1(3, 0.0f), s2(3, 0.0f);
    ASSERT_TRUE(
        ApplyStep(rule, 0.0f, 3, g.data(), w.data(), s1.data(), s2.data()));
    for (int i = 0; i < 3; ++i) {
      const float change = free_w[i] - 0.5f;
      if (std::fabs(change) > kMax) {
        EXPECT_EQ(w[i], 0.5f + std::copysign(kMax, change)) << i;
      } else {
        EXPECT_EQ(w[i], free_w[i]) << i;  // within the limit: untouched
      }
    }
    // The state is updated as without the clamp (FTRL: z and n).
    EXPECT_TRUE(BitEqual(s1, free_s1));
    EXPECT_TRUE(BitEqual(s2, free_s2));
  }
}

// ------------------------------------------- through the Learner ---------

ModelSpec LearnerSpec(ModelType type, OptimizerKind kind, int64_t d,
                      float learning_rate) {
  ModelSpec spec;
  spec.type = type;
  spec.num_features = d;
  spec.minibatch_size = 1;
  spec.optimizer.kind = kind;
  spec.optimizer.learning_rate = learning_rate;
  return spec;
}

// Learns `examples` (one update) and returns whether it stayed finite.
bool LearnAll(Learner& learner, const std::vector<Example>& examples,
              float learning_rate, uint64_t* steps) {
  const std::vector<ExampleView> views = Views(examples);
  BatchMetrics metrics;
  return learner.Learn(views, 1, learning_rate, steps, &metrics);
}

std::vector<float> Params(const Learner& learner) {
  return std::vector<float>(learner.params().begin(), learner.params().end());
}

const OptimizerKind kAllKinds[] = {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                                   OptimizerKind::kFtrl, OptimizerKind::kAdam};

TEST(LearnerOptimizerTest, StateArraysPerOptimizer) {
  for (OptimizerKind kind : kAllKinds) {
    ModelSpec spec = LearnerSpec(ModelType::kLinearRegression, kind, 4, 0.1f);
    spec.optimizer.initial_accumulator = 0.5f;  // AdaGrad only
    const Learner learner(spec);
    EXPECT_EQ(learner.layout().arrays, ParamArrays(spec));
    const std::vector<float> p = Params(learner);
    for (size_t i = 0; i < p.size(); ++i) {
      // Only AdaGrad's accumulators start at initial_accumulator.
      const bool acc = kind == OptimizerKind::kAdagrad && i >= 5;
      EXPECT_EQ(p[i], acc ? 0.5f : 0.0f) << OptimizerKindName(kind) << " " << i;
    }
  }
  ModelSpec spec;
  spec.optimizer.kind = OptimizerKind::kSgd;
  EXPECT_EQ(ParamArrays(spec), 1);
  spec.optimizer.kind = OptimizerKind::kAdagrad;
  EXPECT_EQ(ParamArrays(spec), 2);
  spec.optimizer.kind = OptimizerKind::kFtrl;
  EXPECT_EQ(ParamArrays(spec), 3);
  spec.optimizer.kind = OptimizerKind::kAdam;
  EXPECT_EQ(ParamArrays(spec), 3);
}

TEST(ImportanceWeightTest, WeightZeroChangesNothing) {
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerKindName(kind));
    ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression, kind, 6, 0.3f);
    spec.optimizer.l1 = 0.01f;
    spec.minibatch_size = 2;
    Learner learner(spec);
    uint64_t steps = 0;
    const std::vector<Example> zero = {Sparse({1, 4}, {1.0f, -2.0f}, 1, 0.0f),
                                       Dense({1, 2, 3, 4, 5, 6}, 0, 0.0f),
                                       Sparse({0}, {3.0f}, 0, 0.0f)};
    // From the initial state, for every optimizer.
    const std::vector<float> initial = Params(learner);
    ASSERT_TRUE(LearnAll(learner, zero, 0.3f, &steps));
    EXPECT_TRUE(BitEqual(Params(learner), initial));
    EXPECT_EQ(steps, 2u);
    if (kind == OptimizerKind::kAdam) continue;  // momentum still moves it
    // After real learning too (Adam's momentum would carry on moving).
    ASSERT_TRUE(LearnAll(learner,
                         {Sparse({1, 4}, {1.0f, -2.0f}, 1),
                          Dense({1, 2, 3, 4, 5, 6}, 0), Sparse({0}, {3.0f}, 0)},
                         0.3f, &steps));
    const std::vector<float> trained = Params(learner);
    ASSERT_FALSE(BitEqual(trained, initial));
    ASSERT_TRUE(LearnAll(learner, zero, 0.3f, &steps));
    EXPECT_TRUE(BitEqual(Params(learner), trained));
  }
}

TEST(ImportanceWeightTest, WeightTwoStepMatchesHandComputedValues) {
  // Linear regression, D = 3, from zero: one example x = {1: 0.5}, y = 1,
  // weight 2. d loss / dz = 2 (z - y) = -2, times the weight: -4. So
  // g(feature 1) = 0.5 * -4 = -2 and g(bias) = -4; other rows untouched.
  const std::vector<Example> batch = {Sparse({1}, {0.5f}, 1.0f, 2.0f)};
  struct Case {
    OptimizerKind kind;
    float learning_rate;
    double w1, bias;
  };
  const double eps = 1e-6;  // AdaGrad's default epsilon
  const Case cases[] = {
      // w = -lr g.
      {OptimizerKind::kSgd, 0.25f, 0.5, 1.0},
      // acc = g^2; w = -lr g / (|g| + eps).
      {OptimizerKind::kAdagrad, 0.25f, 0.25 * 2 / (2 + eps),
       0.25 * 4 / (4 + eps)},
      // alpha = 0.5, beta = 1, l1 = 0.5, l2 = 0.25: z = g, n = g^2;
      // w1 = -(-2 + 0.5) / ((1 + 2) / 0.5 + 0.25) = 1.5 / 6.25 = 0.24;
      // the bias without l1 and l2: 4 / ((1 + 4) / 0.5) = 0.4.
      {OptimizerKind::kFtrl, 0.5f, 0.24, 0.4},
      // First step: m_hat = g, v_hat = g^2: w = -lr g / (|g| + eps).
      {OptimizerKind::kAdam, 0.1f, 0.1 * 2 / (2 + eps), 0.1 * 4 / (4 + eps)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(OptimizerKindName(c.kind));
    ModelSpec spec =
        LearnerSpec(ModelType::kLinearRegression, c.kind, 3, c.learning_rate);
    spec.optimizer.l1 = 0.5f;  // FTRL only
    // L2 is added to the gradient of touched weights; they start at 0, so
    // only FTRL's closed form sees it.
    spec.l2 = 0.25f;
    Learner learner(spec);
    uint64_t steps = 0;
    ASSERT_TRUE(LearnAll(learner, batch, c.learning_rate, &steps));
    const std::vector<float> p = Params(learner);
    EXPECT_EQ(p[0], 0.0f);
    EXPECT_EQ(p[2], 0.0f);
    EXPECT_FLOAT_EQ(p[1], static_cast<float>(c.w1));
    EXPECT_FLOAT_EQ(p[3], static_cast<float>(c.bias));
    if (c.kind == OptimizerKind::kSgd || c.kind == OptimizerKind::kFtrl) {
      // Binary-exact or nearly: these hold to the last bit.
      EXPECT_EQ(p[1], static_cast<float>(c.w1));
    }
  }
}

// One absurd example: a regression label of 1e30.
std::vector<Example> AbsurdBatch() {
  return {Sparse({0, 2, 3}, {1.0f, -0.5f, 2.0f}, 1e30f)};
}

TEST(GradientClippingTest, AnAbsurdLabelCannotWreckTheModel) {
  const float kNorm = 1.0f;
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerKindName(kind));
    const float lr = 0.05f;
    ModelSpec spec = LearnerSpec(ModelType::kLinearRegression, kind, 5, lr);

    // Without clipping SGD's weights explode to ~1e29; the other optimizers'
    // squared-gradient state overflows, so the update is rejected whole.
    Learner unclipped(spec);
    uint64_t steps = 0;
    const bool finite = LearnAll(unclipped, AbsurdBatch(), lr, &steps);
    if (kind == OptimizerKind::kSgd) {
      ASSERT_TRUE(finite);
      float largest = 0;
      for (float w : Params(unclipped))
        largest = std::max(largest, std::fabs(w));
      EXPECT_GT(largest, 1e25f);
    } else {
      EXPECT_FALSE(finite);
    }

    spec.max_gradient_norm = kNorm;
    Learner clipped(spec);
    steps = 0;
    ASSERT_TRUE(LearnAll(clipped, AbsurdBatch(), lr, &steps));
    const std::vector<float> p = Params(clipped);
    double sum_sq = 0;
    for (int64_t i = 0; i <= 5; ++i) {
      // Every optimizer moves a weight by at most about lr here: SGD by
      // lr * |g| <= lr * max_gradient_norm, the others by about lr.
      EXPECT_LE(std::fabs(p[i]), lr * kNorm * 1.0001f) << i;
      sum_sq += double{p[i]} * p[i];
    }
    if (kind == OptimizerKind::kSgd) {
      // The whole gradient (3 weights and the bias) was scaled to norm 1:
      // the step is lr times a unit vector.
      EXPECT_NEAR(std::sqrt(sum_sq), lr * kNorm, 1e-6);
      // In the direction of the true gradient: (1, -0.5, 2, bias 1) / norm.
      const double norm = std::sqrt(1 + 0.25 + 4 + 1);
      EXPECT_NEAR(p[0], lr / norm, 1e-6);
      EXPECT_NEAR(p[2], -0.5 * lr / norm, 1e-6);
      EXPECT_NEAR(p[3], 2 * lr / norm, 1e-6);
      EXPECT_NEAR(p[5], lr / norm, 1e-6);
      EXPECT_EQ(p[1], 0.0f);
      EXPECT_EQ(p[4], 0.0f);
    }
  }
}

TEST(GradientClippingTest, ShortGradientsAreUntouchedAndDenseStepsClipToo) {
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerKindName(kind));
    ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression, kind, 4, 0.1f);
    spec.minibatch_size = 3;
    // Logistic gradients of these examples have norms far below 100.
    const std::vector<Example> batch = {Dense({0.1f, 0.2f, -0.3f, 0.4f}, 1),
                                        Sparse({2}, {0.5f}, 0),
                                        Sparse({0, 3}, {1.0f, -1.0f}, 1)};
    Learner plain(spec);
    spec.max_gradient_norm = 100.0f;
    Learner loose(spec);
    uint64_t s1 = 0, s2 = 0;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(LearnAll(plain, batch, 0.1f, &s1));
      ASSERT_TRUE(LearnAll(loose, batch, 0.1f, &s2));
    }
    EXPECT_TRUE(BitEqual(Params(plain), Params(loose)));

    // A dense example with a huge gradient, clipped to norm 1e-3: with SGD
    // from zero, the step's length is lr * 1e-3.
    if (kind != OptimizerKind::kSgd) continue;
    spec.max_gradient_norm = 1e-3f;
    spec.type = ModelType::kLinearRegression;
    Learner tight(spec);
    uint64_t s3 = 0;
    ASSERT_TRUE(LearnAll(tight, {Dense({3, 4, 0, 0}, 1e6f)}, 0.1f, &s3));
    const std::vector<float> p = Params(tight);
    // Gradient direction (3, 4, 0, 0, bias 1) / sqrt(26).
    EXPECT_NEAR(p[0], 0.1 * 1e-3 * 3 / std::sqrt(26.0), 1e-9);
    EXPECT_NEAR(p[1], 0.1 * 1e-3 * 4 / std::sqrt(26.0), 1e-9);
    EXPECT_NEAR(p[4], 0.1 * 1e-3 / std::sqrt(26.0), 1e-9);
  }
}

TEST(LearnerMaxStepTest, NoWeightMovesMoreThanMaxStepPerStep) {
  const float kMax = 0.01f;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerKindName(kind));
    // A high rate, so that unclamped steps are much larger than kMax.
    ModelSpec spec = LearnerSpec(ModelType::kLinearRegression, kind, 6, 5.0f);
    spec.max_step = kMax;
    Learner learner(spec);
    uint64_t steps = 0;
    int clamped = 0;
    for (int i = 0; i < 40; ++i) {
      const std::vector<float> before = Params(learner);
      Example e =
          i % 3 == 0
              ? Dense({u(rng), u(rng), u(rng), u(rng), u(rng), u(rng)},
                      10 * u(rng))
              : Sparse({static_cast<uint32_t>(i % 6)}, {u(rng)}, 10 * u(rng));
      ASSERT_TRUE(LearnAll(learner, {e}, 5.0f, &steps));
      const std::vector<float> after = Params(learner);
      for (int64_t j = 0; j <= 6; ++j) {
        const float change = std::fabs(after[j] - before[j]);
        EXPECT_LE(change, kMax * 1.0001f) << "step " << i << " weight " << j;
        clamped += change >= kMax * 0.9999f;
      }
    }
    EXPECT_GT(clamped, 20);  // the limit was actually reached
  }
}

TEST(FtrlLearnerTest, ZerosAreExactlyTheCoordinatesInsideTheL1Ball) {
  // Logistic, D = 40: features 0..3 decide the label, the rest are noise.
  ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression,
                               OptimizerKind::kFtrl, 40, 0.2f);
  spec.optimizer.l1 = 12.0f;
  spec.l2 = 0.01f;
  Learner learner(spec);
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint32_t> feature(0, 39);
  std::vector<Example> batch;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint32_t> idx = {static_cast<uint32_t>(i % 4)};
    for (int k = 0; k < 3; ++k) {
      const uint32_t f = feature(rng);
      if (f >= 4 && std::find(idx.begin(), idx.end(), f) == idx.end()) {
        idx.push_back(f);
      }
    }
    const float label = (i % 4) < 2 ? 1.0f : 0.0f;
    batch.push_back(Sparse(idx, std::vector<float>(idx.size(), 1.0f), label));
  }
  uint64_t steps = 0;
  ASSERT_TRUE(LearnAll(learner, batch, 0.2f, &steps));
  const std::vector<float> p = Params(learner);
  const int64_t rows = 41;
  int zeros = 0;
  for (int64_t j = 0; j < 40; ++j) {
    const float w = p[j];
    const float z = p[rows + j];
    EXPECT_EQ(w == 0.0f, std::fabs(z) <= 12.0f) << "feature " << j;
    zeros += w == 0.0f;
  }
  for (int64_t j = 0; j < 4; ++j) EXPECT_NE(p[j], 0.0f) << j;  // informative
  EXPECT_GE(zeros, 30);  // most of the 36 noise features
  std::printf("FTRL, l1 = 12: %d of 40 feature weights exactly zero\n", zeros);
  EXPECT_NE(p[40], 0.0f);  // the bias has no L1
}

TEST(OptimizerDeterminismTest, SameUpdatesTwiceGiveBitIdenticalParams) {
  for (OptimizerKind kind : {OptimizerKind::kFtrl, OptimizerKind::kAdam}) {
    SCOPED_TRACE(OptimizerKindName(kind));
    ModelSpec spec = LearnerSpec(ModelType::kSoftmaxRegression, kind, 30, 0.1f);
    spec.num_classes = 3;
    spec.minibatch_size = 4;
    spec.l2 = 1e-3f;
    spec.optimizer.l1 = 0.05f;
    spec.max_gradient_norm = 2.0f;
    spec.max_step = 0.2f;
    std::vector<std::vector<float>> runs;
    for (int run = 0; run < 2; ++run) {
      Learner learner(spec);
      std::mt19937 rng(99);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      uint64_t steps = 0;
      for (int update = 0; update < 30; ++update) {
        std::vector<Example> batch;
        for (int i = 0; i < 9; ++i) {
          const float label = static_cast<float>(rng() % 3);
          if (i % 4 == 0) {
            std::vector<float> x(30);
            for (float& v : x) v = u(rng);
            batch.push_back(Dense(x, label, 0.5f + (i % 3)));
          } else {
            batch.push_back(Sparse({static_cast<uint32_t>(rng() % 10),
                                    static_cast<uint32_t>(10 + rng() % 20)},
                                   {u(rng), u(rng)}, label));
          }
        }
        ASSERT_TRUE(LearnAll(learner, batch, 0.1f, &steps));
      }
      runs.push_back(Params(learner));
    }
    EXPECT_TRUE(BitEqual(runs[0], runs[1]));
    EXPECT_FALSE(BitEqual(runs[0], Params(Learner(spec))));  // it learned
  }
}

TEST(OptimizerSpecTest, NewFieldsAreValidatedWithTheirPaths) {
  ModelSpec good;
  good.type = ModelType::kLogisticRegression;
  good.num_features = 3;
  for (OptimizerKind kind : kAllKinds) {
    good.optimizer.kind = kind;
    EXPECT_TRUE(ValidateModelSpec(good).ok()) << OptimizerKindName(kind);
  }
  EXPECT_EQ(OptimizerKindName(OptimizerKind::kFtrl), "FTRL");
  EXPECT_EQ(OptimizerKindName(OptimizerKind::kAdam), "ADAM");
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  struct Bad {
    const char* path;
    float ModelSpec::*field;
    float OptimizerConfig::*optimizer_field;
    std::vector<float> values;
  };
  const Bad cases[] = {
      {"spec.optimizer.beta: must be finite and > 0",
       nullptr,
       &OptimizerConfig::beta,
       {0.0f, -1.0f, nan, inf}},
      {"spec.optimizer.l1: must be finite and >= 0",
       nullptr,
       &OptimizerConfig::l1,
       {-0.5f, nan, inf}},
      {"spec.optimizer.beta1: must be in [0, 1)",
       nullptr,
       &OptimizerConfig::beta1,
       {1.0f, -0.1f, nan, 2.0f}},
      {"spec.optimizer.beta2: must be in [0, 1)",
       nullptr,
       &OptimizerConfig::beta2,
       {1.0f, -1e-9f, nan}},
      {"spec.max_gradient_norm: must be finite and >= 0",
       &ModelSpec::max_gradient_norm,
       nullptr,
       {-1.0f, nan, inf}},
      {"spec.max_step: must be finite and >= 0",
       &ModelSpec::max_step,
       nullptr,
       {-1e-3f, nan, inf}},
  };
  for (const Bad& c : cases) {
    for (float v : c.values) {
      ModelSpec spec = good;
      if (c.field != nullptr) {
        spec.*c.field = v;
      } else {
        spec.optimizer.*c.optimizer_field = v;
      }
      EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), c.path)) << v;
    }
  }
  // The edges that are allowed.
  ModelSpec edge = good;
  edge.optimizer.beta1 = 0.0f;
  edge.optimizer.beta2 = 0.0f;
  edge.optimizer.l1 = 0.0f;
  edge.max_gradient_norm = 0.0f;
  edge.max_step = 1e30f;
  EXPECT_TRUE(ValidateModelSpec(edge).ok());
}

}  // namespace
}  // namespace lepton
