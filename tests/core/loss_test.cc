// Tests of the link functions and losses (core/learning/loss.h): values against
// the formulas, derivatives against finite differences, predictions, and
// extreme outputs.
#include "core/learning/loss.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/learning/model_spec.h"

namespace lepton {
namespace {

struct LossCase {
  std::string name;
  ModelType type;
  int32_t outputs;
};

std::vector<LossCase> AllCases() {
  return {{"Linear", ModelType::kLinearRegression, 1},
          {"Logistic", ModelType::kLogisticRegression, 1},
          {"Softmax3", ModelType::kSoftmaxRegression, 3},
          {"Softmax10", ModelType::kSoftmaxRegression, 10}};
}

// The loss by its definition (loss.h), in double, independently of the core.
double ReferenceLoss(ModelType type, const std::vector<float>& z, float label) {
  switch (type) {
    case ModelType::kLinearRegression: {
      const double d = static_cast<double>(z[0]) - label;
      return d * d;
    }
    case ModelType::kLogisticRegression:
      return std::log1p(std::exp(static_cast<double>(z[0]))) -
             static_cast<double>(label) * z[0];
    case ModelType::kSoftmaxRegression: {
      double sum = 0;
      for (float v : z) sum += std::exp(static_cast<double>(v));
      return std::log(sum) - z[static_cast<int>(label)];
    }
    default:
      return 0;
  }
}

// The loss by its definition, in double, at double outputs.
double ReferenceLossD(ModelType type, const std::vector<double>& z,
                      float label) {
  switch (type) {
    case ModelType::kLinearRegression:
      return (z[0] - label) * (z[0] - label);
    case ModelType::kLogisticRegression:
      return std::log1p(std::exp(z[0])) - label * z[0];
    case ModelType::kSoftmaxRegression: {
      double sum = 0;
      for (double v : z) sum += std::exp(v);
      return std::log(sum) - z[static_cast<int>(label)];
    }
    default:
      return 0;
  }
}

float RandomLabel(const LossCase& c, std::mt19937& rng) {
  switch (c.type) {
    case ModelType::kLinearRegression:
      return std::uniform_real_distribution<float>(-4, 4)(rng);
    case ModelType::kLogisticRegression:
      return static_cast<float>(std::uniform_int_distribution<int>(0, 1)(rng));
    default:
      return static_cast<float>(
          std::uniform_int_distribution<int>(0, c.outputs - 1)(rng));
  }
}

void PrintTo(const LossCase& c, std::ostream* os) { *os << c.name; }

class LossTest : public ::testing::TestWithParam<LossCase> {};

// The loss is returned in double but may be computed partly in float (e.g.
// softmax's exponentials): agreement to float precision is required.
TEST_P(LossTest, LossMatchesDefinition) {
  const LossCase& c = GetParam();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uz(-6, 6);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) v = uz(rng);
    const float label = RandomLabel(c, rng);
    const double expected = ReferenceLoss(c.type, z, label);
    const ExampleLoss l = ComputeLoss(c.type, z.data(), c.outputs, label,
                                      /*dz=*/nullptr);
    EXPECT_NEAR(l.loss, expected, 1e-6 * std::max(1.0, std::fabs(expected)))
        << "trial " << trial;
  }
}

// dz against central differences of the loss, computed in double from its
// definition (no float rounding of z or of the loss).
TEST_P(LossTest, DerivativeMatchesCentralFiniteDifferences) {
  const LossCase& c = GetParam();
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uz(-5, 5);
  constexpr double kStep = 1e-3;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) v = uz(rng);
    const float label = RandomLabel(c, rng);
    std::vector<float> dz(c.outputs, std::nanf(""));
    ComputeLoss(c.type, z.data(), c.outputs, label, dz.data());
    for (int32_t k = 0; k < c.outputs; ++k) {
      std::vector<double> plus(z.begin(), z.end());
      std::vector<double> minus(z.begin(), z.end());
      plus[k] += kStep;
      minus[k] -= kStep;
      const double fd = (ReferenceLossD(c.type, plus, label) -
                         ReferenceLossD(c.type, minus, label)) /
                        (2 * kStep);
      EXPECT_NEAR(dz[k], fd, 1e-3 * std::fabs(fd) + 1e-6)
          << "trial " << trial << " output " << k << " label " << label;
    }
  }
}

// The same against differences of ComputeLoss itself: the loss and its
// derivative are consistent with each other (a larger step, as the core's
// loss carries float rounding).
TEST_P(LossTest, DerivativeMatchesDifferencesOfComputedLoss) {
  const LossCase& c = GetParam();
  std::mt19937 rng(4321);
  std::uniform_real_distribution<float> uz(-5, 5);
  constexpr double kStep = 1e-2;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) v = uz(rng);
    const float label = RandomLabel(c, rng);
    std::vector<float> dz(c.outputs, std::nanf(""));
    const ExampleLoss at_z =
        ComputeLoss(c.type, z.data(), c.outputs, label, dz.data());
    // Asking for dz does not change the loss.
    EXPECT_EQ(at_z.loss,
              ComputeLoss(c.type, z.data(), c.outputs, label, nullptr).loss);
    for (int32_t k = 0; k < c.outputs; ++k) {
      std::vector<float> plus = z;
      std::vector<float> minus = z;
      plus[k] = static_cast<float>(z[k] + kStep);
      minus[k] = static_cast<float>(z[k] - kStep);
      const double h = static_cast<double>(plus[k]) - minus[k];
      const double fd =
          (ComputeLoss(c.type, plus.data(), c.outputs, label, nullptr).loss -
           ComputeLoss(c.type, minus.data(), c.outputs, label, nullptr).loss) /
          h;
      EXPECT_NEAR(dz[k], fd, 1e-3 * std::fabs(fd) + 1e-4)
          << "trial " << trial << " output " << k << " label " << label;
    }
  }
}

TEST_P(LossTest, ToPredictionGivesProbabilitiesAndArgMax) {
  const LossCase& c = GetParam();
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> uz(-8, 8);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) v = uz(rng);
    std::vector<float> p = z;
    const int32_t label = ToPrediction(c.type, p.data(), c.outputs);
    switch (c.type) {
      case ModelType::kLinearRegression:
        EXPECT_EQ(label, -1);
        EXPECT_EQ(p[0], z[0]);  // identity
        break;
      case ModelType::kLogisticRegression: {
        const double expected = 1.0 / (1.0 + std::exp(-double{z[0]}));
        EXPECT_NEAR(p[0], expected, 1e-6);
        EXPECT_EQ(label, z[0] >= 0 ? 1 : 0) << "z " << z[0];
        EXPECT_EQ(label, p[0] >= 0.5f ? 1 : 0);
        break;
      }
      case ModelType::kSoftmaxRegression: {
        double denom = 0;
        for (float v : z) denom += std::exp(double{v});
        double sum = 0;
        for (int32_t k = 0; k < c.outputs; ++k) {
          EXPECT_NEAR(p[k], std::exp(double{z[k]}) / denom, 1e-6)
              << "class " << k;
          EXPECT_GE(p[k], 0.0f);
          EXPECT_LE(p[k], 1.0f);
          sum += p[k];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
        const int32_t arg_max = static_cast<int32_t>(
            std::max_element(z.begin(), z.end()) - z.begin());
        EXPECT_EQ(label, arg_max);
        EXPECT_EQ(label, static_cast<int32_t>(
                             std::max_element(p.begin(), p.end()) - p.begin()));
        break;
      }
      default:
        FAIL();
    }
  }
}

TEST_P(LossTest, CorrectMeansPredictedLabelEqualsLabel) {
  const LossCase& c = GetParam();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uz(-3, 3);
  int correct = 0;
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) v = uz(rng);
    const float label = RandomLabel(c, rng);
    const ExampleLoss l =
        ComputeLoss(c.type, z.data(), c.outputs, label, nullptr);
    std::vector<float> p = z;
    const int32_t predicted = ToPrediction(c.type, p.data(), c.outputs);
    if (c.type == ModelType::kLinearRegression) {
      EXPECT_FALSE(l.correct);  // no predicted label
    } else {
      EXPECT_EQ(l.correct, predicted == static_cast<int32_t>(label))
          << "trial " << trial;
    }
    correct += l.correct;
  }
  if (c.type != ModelType::kLinearRegression) {
    EXPECT_GT(correct, 0);
    EXPECT_LT(correct, 100);
  }
}

TEST_P(LossTest, StaysFiniteForExtremeOutputs) {
  const LossCase& c = GetParam();
  const std::vector<float> extremes = {1e4f, -1e4f, 0.0f, 3e4f, -3e4f};
  std::mt19937 rng(3);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<float> z(c.outputs);
    for (float& v : z) {
      v = extremes[std::uniform_int_distribution<size_t>(
          0, extremes.size() - 1)(rng)];
    }
    const float label =
        c.type == ModelType::kLinearRegression ? 1e3f : RandomLabel(c, rng);
    std::vector<float> dz(c.outputs);
    const ExampleLoss l =
        ComputeLoss(c.type, z.data(), c.outputs, label, dz.data());
    const std::string where = absl::StrCat("trial ", trial, " label ", label);
    EXPECT_TRUE(std::isfinite(l.loss)) << where;
    EXPECT_GE(l.loss, 0.0) << where;
    for (float d : dz) EXPECT_TRUE(std::isfinite(d)) << where;
    // In double the reference is exact enough here except for logistic's
    // log1p(exp(1e4)), which overflows: check logistic separately below.
    if (c.type != ModelType::kLogisticRegression) {
      double expected = 0;
      if (c.type == ModelType::kLinearRegression) {
        expected = ReferenceLoss(c.type, z, label);
      } else {
        const double max = *std::max_element(z.begin(), z.end());
        double sum = 0;
        for (float v : z) sum += std::exp(v - max);
        expected = max + std::log(sum) - z[static_cast<int>(label)];
      }
      EXPECT_NEAR(l.loss, expected, 1e-6 * std::max(1.0, expected)) << where;
    }
    std::vector<float> p = z;
    ToPrediction(c.type, p.data(), c.outputs);
    double sum = 0;
    for (float v : p) {
      EXPECT_TRUE(std::isfinite(v)) << where;
      sum += v;
    }
    if (c.type == ModelType::kSoftmaxRegression) {
      EXPECT_NEAR(sum, 1.0, 1e-5) << where;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, LossTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<LossCase>& info) {
                           return info.param.name;
                         });

TEST(LogisticLossTest, ExtremeOutputsHaveExactLimits) {
  float dz = 0;
  float z = 1e4f;
  // Confidently right: loss ~ 0, gradient ~ 0.
  ExampleLoss l = ComputeLoss(ModelType::kLogisticRegression, &z, 1, 1, &dz);
  EXPECT_NEAR(l.loss, 0.0, 1e-12);
  EXPECT_NEAR(dz, 0.0f, 1e-12);
  EXPECT_TRUE(l.correct);
  // Confidently wrong: loss = |z|, gradient = +-1.
  l = ComputeLoss(ModelType::kLogisticRegression, &z, 1, 0, &dz);
  EXPECT_DOUBLE_EQ(l.loss, 1e4);
  EXPECT_EQ(dz, 1.0f);
  EXPECT_FALSE(l.correct);
  z = -1e4f;
  l = ComputeLoss(ModelType::kLogisticRegression, &z, 1, 1, &dz);
  EXPECT_DOUBLE_EQ(l.loss, 1e4);
  EXPECT_EQ(dz, -1.0f);
  EXPECT_FALSE(l.correct);
  l = ComputeLoss(ModelType::kLogisticRegression, &z, 1, 0, &dz);
  EXPECT_NEAR(l.loss, 0.0, 1e-12);
  EXPECT_TRUE(l.correct);

  float p = 1e4f;
  EXPECT_EQ(ToPrediction(ModelType::kLogisticRegression, &p, 1), 1);
  EXPECT_EQ(p, 1.0f);
  p = -1e4f;
  EXPECT_EQ(ToPrediction(ModelType::kLogisticRegression, &p, 1), 0);
  EXPECT_EQ(p, 0.0f);
}

TEST(LogisticLossTest, ZeroOutputIsHalfAndLogTwo) {
  float z = 0;
  float dz = 0;
  const ExampleLoss l =
      ComputeLoss(ModelType::kLogisticRegression, &z, 1, 1, &dz);
  EXPECT_NEAR(l.loss, std::log(2.0), 1e-12);
  EXPECT_FLOAT_EQ(dz, -0.5f);
  EXPECT_EQ(ToPrediction(ModelType::kLogisticRegression, &z, 1), 1);
  EXPECT_EQ(z, 0.5f);
}

// Just below z = 0 the float sigmoid rounds to exactly 0.5: the served label
// and the progressive "correct" flag must still follow the same rule (z >= 0).
TEST(LogisticLossTest, LabelAndCorrectAgreeJustBelowZero) {
  for (float z0 : {-1e-8f, -2.9e-8f, -1e-30f, 0.0f, -0.0f, 1e-8f}) {
    SCOPED_TRACE(z0);
    float z = z0;
    const int32_t label = ToPrediction(ModelType::kLogisticRegression, &z, 1);
    EXPECT_EQ(label, z0 >= 0 ? 1 : 0);
    for (float y : {0.0f, 1.0f}) {
      const float out = z0;
      EXPECT_EQ(ComputeLoss(ModelType::kLogisticRegression, &out, 1, y, nullptr)
                    .correct,
                label == static_cast<int32_t>(y));
    }
  }
}

TEST(SoftmaxLossTest, ExtremeOutputsHaveExactLimits) {
  const float z[3] = {1e4f, -1e4f, 0.0f};
  float dz[3];
  ExampleLoss l = ComputeLoss(ModelType::kSoftmaxRegression, z, 3, 0, dz);
  EXPECT_NEAR(l.loss, 0.0, 1e-12);
  EXPECT_TRUE(l.correct);
  EXPECT_NEAR(dz[0], 0.0f, 1e-12);
  EXPECT_EQ(dz[1], 0.0f);
  EXPECT_EQ(dz[2], 0.0f);
  l = ComputeLoss(ModelType::kSoftmaxRegression, z, 3, 1, dz);
  EXPECT_DOUBLE_EQ(l.loss, 2e4);
  EXPECT_FALSE(l.correct);
  EXPECT_EQ(dz[0], 1.0f);
  EXPECT_EQ(dz[1], -1.0f);
  EXPECT_EQ(dz[2], 0.0f);

  float p[3] = {1e4f, -1e4f, 0.0f};
  EXPECT_EQ(ToPrediction(ModelType::kSoftmaxRegression, p, 3), 0);
  EXPECT_EQ(p[0], 1.0f);
  EXPECT_EQ(p[1], 0.0f);
  EXPECT_EQ(p[2], 0.0f);
}

TEST(SoftmaxLossTest, UniformOutputsGiveLogK) {
  for (int32_t k : {2, 3, 10}) {
    std::vector<float> z(k, 2.5f);
    std::vector<float> dz(k);
    const ExampleLoss l =
        ComputeLoss(ModelType::kSoftmaxRegression, z.data(), k, 1, dz.data());
    EXPECT_NEAR(l.loss, std::log(static_cast<double>(k)), 1e-7) << k;
    for (int32_t o = 0; o < k; ++o) {
      EXPECT_NEAR(dz[o], (o == 1 ? 1.0f / k - 1 : 1.0f / k), 1e-7) << o;
    }
    ToPrediction(ModelType::kSoftmaxRegression, z.data(), k);
    for (float v : z) EXPECT_NEAR(v, 1.0f / k, 1e-7);
  }
}

TEST(LinearLossTest, SquaredErrorAndGradient) {
  float z = 3.5f;
  float dz = 0;
  const ExampleLoss l =
      ComputeLoss(ModelType::kLinearRegression, &z, 1, 1.0f, &dz);
  EXPECT_DOUBLE_EQ(l.loss, 6.25);
  EXPECT_EQ(dz, 5.0f);
  EXPECT_FALSE(l.correct);
}

}  // namespace
}  // namespace lepton
