// FTRL and Adam steps (core/learning/optimizer.h) against hand-computed
// values and a double-precision reference, L1 zeros, L2 in FTRL's closed
// form, Adam's bias correction, overflow detection, and max_step clamping
// the change of every optimizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/learning/model_spec.h"
#include "core/learning/optimizer.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

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

}  // namespace
}  // namespace lepton
