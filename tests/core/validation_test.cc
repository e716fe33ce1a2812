// Tests of every validation rule (core/learning/model_spec.h,
// core/learning/validation.h): each bad input is INVALID_ARGUMENT and its
// message starts with the path of the offending field.
#include "core/learning/validation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

ModelSpec LogisticSpec(int64_t num_features = 10) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = num_features;
  return spec;
}

ModelSpec SoftmaxSpec(int64_t num_features, int32_t num_classes) {
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = num_features;
  spec.num_classes = num_classes;
  return spec;
}

ModelSpec LinearSpec(int64_t num_features) {
  ModelSpec spec;
  spec.type = ModelType::kLinearRegression;
  spec.num_features = num_features;
  return spec;
}

// ---------------------------------------------------------------- ModelSpec

TEST(ValidateModelSpecTest, ValidSpecsPass) {
  EXPECT_TRUE(ValidateModelSpec(LogisticSpec()).ok());
  EXPECT_TRUE(ValidateModelSpec(LinearSpec(1)).ok());
  EXPECT_TRUE(ValidateModelSpec(SoftmaxSpec(784, 10)).ok());
  EXPECT_TRUE(ValidateModelSpec(SoftmaxSpec(5, 2)).ok());
  EXPECT_TRUE(ValidateModelSpec(LogisticSpec(kMaxFeatures)).ok());
  ModelSpec sgd = LinearSpec(3);
  sgd.optimizer.kind = OptimizerKind::kSgd;
  sgd.optimizer.power_t = 0.5f;
  sgd.l2 = 0.01f;
  sgd.minibatch_size = 1;
  EXPECT_TRUE(ValidateModelSpec(sgd).ok());
  sgd.minibatch_size = kMaxMinibatch;
  EXPECT_TRUE(ValidateModelSpec(sgd).ok());
  ModelSpec adagrad = LogisticSpec();
  adagrad.optimizer.initial_accumulator = 0.1f;
  EXPECT_TRUE(ValidateModelSpec(adagrad).ok());
}

TEST(ValidateModelSpecTest, Type) {
  ModelSpec spec = LogisticSpec();
  spec.type = ModelType::kUnspecified;
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.type: "));
  spec.type = static_cast<ModelType>(7);
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.type: "));
}

TEST(ValidateModelSpecTest, NumFeatures) {
  ModelSpec spec = LogisticSpec();
  for (int64_t bad : {int64_t{0}, int64_t{-1}, kMaxFeatures + 1,
                      std::numeric_limits<int64_t>::max()}) {
    spec.num_features = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.num_features: "))
        << bad;
  }
}

TEST(ValidateModelSpecTest, NumFeaturesTimesClassesIsBounded) {
  // (2^26 + 1) * 4 > 2^28 parameters.
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(SoftmaxSpec(kMaxFeatures, 4)),
                        "spec.num_features: "));
  // (2^24 - 1 + 1) * 16 = 2^28: the bound itself is allowed.
  EXPECT_TRUE(ValidateModelSpec(SoftmaxSpec((int64_t{1} << 24) - 1, 16)).ok());
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(SoftmaxSpec(int64_t{1} << 24, 16)),
                        "spec.num_features: "));
}

TEST(ValidateModelSpecTest, NumClasses) {
  for (int32_t bad : {-1, 0, 1, kMaxClasses + 1}) {
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(SoftmaxSpec(10, bad)),
                          "spec.num_classes: "))
        << bad;
  }
  EXPECT_TRUE(ValidateModelSpec(SoftmaxSpec(1, kMaxClasses)).ok());
  ModelSpec logistic = LogisticSpec();
  logistic.num_classes = 2;
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(logistic), "spec.num_classes: "));
  ModelSpec linear = LinearSpec(4);
  linear.num_classes = 3;
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(linear), "spec.num_classes: "));
}

TEST(ValidateModelSpecTest, OptimizerKind) {
  ModelSpec spec = LogisticSpec();
  spec.optimizer.kind = OptimizerKind::kUnspecified;
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.optimizer.kind: "));
  spec.optimizer.kind = static_cast<OptimizerKind>(9);
  EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.optimizer.kind: "));
}

TEST(ValidateModelSpecTest, LearningRate) {
  for (float bad : {0.0f, -0.0f, -0.1f, kNan, kInf}) {
    ModelSpec spec = LogisticSpec();
    spec.optimizer.learning_rate = bad;
    EXPECT_TRUE(
        IsInvalid(ValidateModelSpec(spec), "spec.optimizer.learning_rate: "))
        << bad;
  }
}

TEST(ValidateModelSpecTest, PowerT) {
  for (float bad : {-0.5f, kNan, kInf}) {
    ModelSpec spec = LogisticSpec();
    spec.optimizer.kind = OptimizerKind::kSgd;
    spec.optimizer.power_t = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.optimizer.power_t: "))
        << bad;
  }
}

TEST(ValidateModelSpecTest, Epsilon) {
  for (float bad : {0.0f, -1e-6f, kNan, kInf}) {
    ModelSpec spec = LogisticSpec();
    spec.optimizer.epsilon = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.optimizer.epsilon: "))
        << bad;
  }
}

TEST(ValidateModelSpecTest, InitialAccumulator) {
  for (float bad : {-0.1f, kNan, kInf}) {
    ModelSpec spec = LogisticSpec();
    spec.optimizer.initial_accumulator = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec),
                          "spec.optimizer.initial_accumulator: "))
        << bad;
  }
}

TEST(ValidateModelSpecTest, L2) {
  for (float bad : {-1e-3f, kNan, kInf}) {
    ModelSpec spec = LogisticSpec();
    spec.l2 = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.l2: ")) << bad;
  }
}

TEST(ValidateModelSpecTest, MinibatchSize) {
  for (int32_t bad : {0, -1, kMaxMinibatch + 1}) {
    ModelSpec spec = LogisticSpec();
    spec.minibatch_size = bad;
    EXPECT_TRUE(IsInvalid(ValidateModelSpec(spec), "spec.minibatch_size: "))
        << bad;
  }
}

// ---------------------------------------------------------------- Names

TEST(ValidateModelNameTest, ValidNames) {
  for (absl::string_view name :
       {"a", "ctr", "model.v2", "A-b_c.9", "x.", "_", "-", "0"}) {
    EXPECT_TRUE(ValidateModelName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateModelName(std::string(kMaxModelNameLength, 'n')).ok());
}

TEST(ValidateModelNameTest, InvalidNames) {
  EXPECT_TRUE(IsInvalid(ValidateModelName(""), "name: "));
  EXPECT_TRUE(IsInvalid(
      ValidateModelName(std::string(kMaxModelNameLength + 1, 'n')), "name: "));
  for (absl::string_view bad : {"a b", "a/b", "../x", "m\xc3\xbc", "x:y", "a\n",
                                "semi;colon", ".hidden", ".", ".."}) {
    EXPECT_TRUE(IsInvalid(ValidateModelName(bad), "name: ")) << bad;
  }
  // A NUL byte inside the name.
  EXPECT_TRUE(
      IsInvalid(ValidateModelName(absl::string_view("a\0b", 3)), "name: "));
}

// ---------------------------------------------------------------- Examples

absl::Status Check(const ModelSpec& spec, const std::vector<Example>& batch) {
  return ValidateExamples(spec, Views(batch));
}

TEST(ValidateExamplesTest, ValidBatchPasses) {
  const ModelSpec spec = LogisticSpec(5);
  const std::vector<Example> batch = {
      Dense({1, 2, 3, 4, 5}, 0),
      Sparse({0, 4}, {1.5f, -2}, 1),
      Sparse({3, 1, 4}, {1, 1, 1}, 0, 0.0f),  // unsorted, weight 0
      Sparse({}, {}, 1),                      // no nonzero feature
      Dense({0, 0, 0, 0, 0}, 1, 2.5f),
  };
  EXPECT_TRUE(Check(spec, batch).ok());
}

TEST(ValidateExamplesTest, EmptyBatch) {
  EXPECT_TRUE(IsInvalid(Check(LogisticSpec(), {}), "examples: "));
}

TEST(ValidateExamplesTest, DenseLength) {
  const ModelSpec spec = LogisticSpec(5);
  const std::vector<Example> batch = {
      Dense({1, 2, 3, 4, 5}), Dense({1, 2, 3, 4, 5}), Dense({1, 2, 3, 4})};
  EXPECT_TRUE(IsInvalid(Check(spec, batch), "examples[2].features.dense: "));
  const std::vector<Example> longer = {Dense({1, 2, 3, 4, 5, 6})};
  EXPECT_TRUE(IsInvalid(Check(spec, longer), "examples[0].features.dense: "));
}

TEST(ValidateExamplesTest, DenseNotFinite) {
  const ModelSpec spec = LogisticSpec(5);
  for (float bad : {kNan, kInf, -kInf}) {
    const std::vector<Example> batch = {Dense({1, 2, 3, 4, 5}),
                                        Dense({1, 2, 3, bad, 5})};
    EXPECT_TRUE(IsInvalid(Check(spec, batch),
                          "examples[1].features.dense[3]: not finite"))
        << bad;
  }
  // The first non-finite value is named.
  const std::vector<Example> two = {Dense({kNan, 2, kInf, 4, 5})};
  EXPECT_TRUE(
      IsInvalid(Check(spec, two), "examples[0].features.dense[0]: not finite"));
  // Long dense rows: the position is found past any vectorized block.
  std::vector<float> x(1000, 1.0f);
  x[997] = kNan;
  EXPECT_TRUE(IsInvalid(Check(LogisticSpec(1000), {Dense(x)}),
                        "examples[0].features.dense[997]: not finite"));
}

TEST(ValidateExamplesTest, IndexOutOfRange) {
  const ModelSpec spec = LogisticSpec(5);
  EXPECT_TRUE(
      IsInvalid(Check(spec, {Sparse({0, 7, 2}, {1, 1, 1})}),
                "examples[0].features.indices[1]: 7 is out of range [0, 5)"));
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({5}, {1})}),
                        "examples[0].features.indices[0]: 5 is out of range"));
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({0xffffffffu}, {1})}),
                        "examples[0].features.indices[0]: "));
  EXPECT_TRUE(Check(spec, {Sparse({4}, {1})}).ok());
}

TEST(ValidateExamplesTest, ValuesLengthMismatch) {
  const ModelSpec spec = LogisticSpec(5);
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({0, 1}, {1})}),
                        "examples[0].features.values: "));
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({0}, {1, 2})}),
                        "examples[0].features.values: "));
  // Values without indices: also a mismatch, not a dense instance.
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({}, {1})}),
                        "examples[0].features.values: "));
}

TEST(ValidateExamplesTest, SparseValueNotFinite) {
  const ModelSpec spec = LogisticSpec(5);
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({0, 1, 2}, {1, kInf, kNan})}),
                        "examples[0].features.values[1]: not finite"));
}

TEST(ValidateExamplesTest, RepeatedIndexSortedInput) {
  const ModelSpec spec = LogisticSpec(10);
  // Ascending input: the later duplicate's position is named.
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({1, 3, 3, 8}, {1, 1, 1, 1})}),
                        "examples[0].features.indices[2]: repeats index 3"));
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({2, 2}, {1, 1})}),
                        "examples[0].features.indices[1]: repeats index 2"));
}

TEST(ValidateExamplesTest, RepeatedIndexUnsortedInput) {
  const ModelSpec spec = LogisticSpec(10);
  // 4 at positions 0 and 2: position 2 is named.
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({4, 1, 4, 2}, {1, 1, 1, 1})}),
                        "examples[0].features.indices[2]: repeats index 4"));
  // 0 at positions 1 and 3, with a larger index first.
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({3, 0, 1, 0}, {1, 1, 1, 1})}),
                        "examples[0].features.indices[3]: repeats index 0"));
  // The duplicate's later copy comes before any other index in sorted order.
  EXPECT_TRUE(IsInvalid(Check(spec, {Sparse({9, 5, 7, 9}, {1, 1, 1, 1})}),
                        "examples[0].features.indices[3]: repeats index 9"));
  // In a later example of the batch.
  EXPECT_TRUE(IsInvalid(
      Check(spec, {Sparse({1, 2}, {1, 1}), Sparse({6, 5, 6}, {1, 1, 1})}),
      "examples[1].features.indices[2]: repeats index 6"));
}

TEST(ValidateExamplesTest, DenseAndSparseBothGiven) {
  const ModelSpec spec = LogisticSpec(3);
  Example both = Dense({1, 2, 3});
  both.features.indices = {0};
  both.features.values = {1};
  EXPECT_TRUE(IsInvalid(Check(spec, {Dense({1, 2, 3}), both}),
                        "examples[1].features: "));
  // Dense plus values only, and dense plus indices only.
  Example values_only = Dense({1, 2, 3});
  values_only.features.values = {1};
  EXPECT_TRUE(IsInvalid(Check(spec, {values_only}), "examples[0].features: "));
  Example indices_only = Dense({1, 2, 3});
  indices_only.features.indices = {1};
  EXPECT_TRUE(IsInvalid(Check(spec, {indices_only}), "examples[0].features: "));
}

TEST(ValidateExamplesTest, LogisticLabels) {
  const ModelSpec spec = LogisticSpec(2);
  EXPECT_TRUE(Check(spec, {Dense({1, 2}, 0), Dense({1, 2}, 1)}).ok());
  for (float bad : {0.5f, 2.0f, -1.0f, 1e-30f}) {
    EXPECT_TRUE(IsInvalid(Check(spec, {Dense({1, 2}, 0), Dense({1, 2}, bad)}),
                          "examples[1].label: "))
        << bad;
  }
  EXPECT_TRUE(
      IsInvalid(Check(spec, {Dense({1, 2}, kNan)}), "examples[0].label: "));
}

TEST(ValidateExamplesTest, SoftmaxLabels) {
  const ModelSpec spec = SoftmaxSpec(2, 3);
  EXPECT_TRUE(
      Check(spec, {Dense({1, 2}, 0), Dense({1, 2}, 1), Dense({1, 2}, 2)}).ok());
  for (float bad : {1.5f, -1.0f, 3.0f, 4.0f, 1e9f, 0.999f, -0.5f, kInf}) {
    EXPECT_TRUE(IsInvalid(
        Check(spec, {Dense({1, 2}, 0), Dense({1, 2}, 1), Dense({1, 2}, bad)}),
        "examples[2].label: "))
        << bad;
  }
}

TEST(ValidateExamplesTest, LinearLabels) {
  const ModelSpec spec = LinearSpec(2);
  EXPECT_TRUE(
      Check(spec, {Dense({1, 2}, -123.25f), Dense({1, 2}, 1e30f)}).ok());
  EXPECT_TRUE(IsInvalid(Check(spec, {Dense({1, 2}, kNan)}),
                        "examples[0].label: not finite"));
  EXPECT_TRUE(IsInvalid(Check(spec, {Dense({1, 2}, 0), Dense({1, 2}, -kInf)}),
                        "examples[1].label: "));
}

TEST(ValidateExamplesTest, Weight) {
  const ModelSpec spec = LinearSpec(2);
  EXPECT_TRUE(
      Check(spec, {Dense({1, 2}, 1, 0.0f), Dense({1, 2}, 1, 1e6f)}).ok());
  for (float bad : {-1.0f, -1e-30f, kNan, kInf}) {
    EXPECT_TRUE(
        IsInvalid(Check(spec, {Dense({1, 2}, 1, 1), Sparse({}, {}, 1, bad)}),
                  "examples[1].weight: "))
        << bad;
  }
}

TEST(ValidateExamplesTest, FirstBadExampleIsNamed) {
  const ModelSpec spec = LogisticSpec(3);
  const std::vector<Example> batch = {Dense({1, 2, 3}), Dense({1, 2, 3}),
                                      Dense({1, 2, 3}, 0.5f),
                                      Dense({1, kNan, 3}), Sparse({9}, {1})};
  EXPECT_TRUE(IsInvalid(Check(spec, batch), "examples[2].label: "));
  // Features are checked before the label of the same example.
  const std::vector<Example> same = {Dense({1, kNan, 3}, 0.5f, -1)};
  EXPECT_TRUE(IsInvalid(Check(spec, same), "examples[0].features.dense[1]: "));
}

// ---------------------------------------------------------------- Instances

TEST(ValidateInstancesTest, Paths) {
  const ModelSpec spec = SoftmaxSpec(784, 10);
  std::vector<Features> instances(3);
  instances[0].dense.assign(784, 0.5f);
  instances[1].indices = {1, 2};
  instances[1].values = {1, 1};
  instances[2].indices = {3, 900};
  instances[2].values = {1, 1};
  EXPECT_TRUE(
      IsInvalid(ValidateInstances(spec, Views(instances)),
                "instances[2].indices[1]: 900 is out of range [0, 784)"));
  instances[2].indices = {3, 1};
  EXPECT_TRUE(ValidateInstances(spec, Views(instances)).ok());
  instances[1].dense.assign(783, 0.5f);
  instances[1].indices.clear();
  instances[1].values.clear();
  EXPECT_TRUE(IsInvalid(ValidateInstances(spec, Views(instances)),
                        "instances[1].dense: "));
  instances[1].dense.assign(784, 0.5f);
  instances[1].dense[100] = kInf;
  EXPECT_TRUE(IsInvalid(ValidateInstances(spec, Views(instances)),
                        "instances[1].dense[100]: not finite"));
  instances[1].dense[100] = 0;
  instances[0].indices = {7};
  instances[0].values = {1};
  EXPECT_TRUE(
      IsInvalid(ValidateInstances(spec, Views(instances)), "instances[0]: "));
  instances[0].dense.clear();
  instances[0].values = {1, 2};
  EXPECT_TRUE(IsInvalid(ValidateInstances(spec, Views(instances)),
                        "instances[0].values: "));
  instances[0].indices = {7, 7};
  EXPECT_TRUE(IsInvalid(ValidateInstances(spec, Views(instances)),
                        "instances[0].indices[1]: repeats index 7"));
}

TEST(ValidateInstancesTest, EmptyBatch) {
  EXPECT_TRUE(IsInvalid(ValidateInstances(LogisticSpec(), {}), "instances: "));
}

}  // namespace
}  // namespace lepton
