// The optimizers through the Learner (core/learning/learner.h): state arrays
// per optimizer, importance weights, gradient clipping, max_step, FTRL's
// exact zeros, determinism, and the validation of the optimizer's spec
// fields.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "core/learning/example.h"
#include "core/learning/learner.h"
#include "core/learning/loss.h"
#include "core/learning/model_spec.h"
#include "core/learning/optimizer.h"
#include "core/learning/scoring.h"
#include "core/learning/versioned_params.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

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

std::vector<float> Params(const Learner& learner) { return learner.params(); }

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

// A large model's versions keep no copy of the optimizer state: a full read
// takes it from the learner's working copy, changed since, and back.
TEST(LearnerVersionsTest, FullReadsOfHeldVersionsOutliveLaterChanges) {
  for (OptimizerKind kind :
       {OptimizerKind::kAdagrad, OptimizerKind::kFtrl, OptimizerKind::kAdam}) {
    SCOPED_TRACE(OptimizerKindName(kind));
    const int64_t d = 70000;  // past ParamLayout::kWholeCopyFloats
    ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression, kind, d, 0.1f);
    spec.minibatch_size = 4;
    auto learner = std::make_unique<Learner>(spec);
    ASSERT_FALSE(learner->layout().whole_copies());
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto batch = [&](bool dense) {
      std::vector<Example> out;
      for (int i = 0; i < 8; ++i) {
        const float label = static_cast<float>(rng() % 2);
        if (dense) {
          std::vector<float> x(d);
          for (float& v : x) v = u(rng);
          out.push_back(Dense(std::move(x), label));
        } else {
          out.push_back(Sparse({static_cast<uint32_t>(rng() % d),
                                static_cast<uint32_t>(rng() % d)},
                               {u(rng), u(rng)}, label));
        }
      }
      return out;
    };
    uint64_t steps = 0;
    std::vector<std::shared_ptr<const ParamsVersion>> held;
    std::vector<std::vector<float>> want;
    for (uint64_t v = 1; v <= 12; ++v) {
      ASSERT_TRUE(LearnAll(*learner, batch(/*dense=*/v == 6), 0.1f, &steps));
      held.push_back(learner->Commit(v));
      want.push_back(Params(*learner));
      if (v % 2 == 0) held.back()->Show();
    }
    auto all_read_back = [&] {
      for (size_t i = 0; i < held.size(); ++i) {
        if (!BitEqual(held[i]->CopyAll(), want[i])) return false;
      }
      return true;
    };
    EXPECT_TRUE(all_read_back());
    // Changes not committed (a sparse and then a dense update), then undone.
    ASSERT_TRUE(LearnAll(*learner, batch(false), 0.1f, &steps));
    EXPECT_TRUE(all_read_back());
    ASSERT_TRUE(LearnAll(*learner, batch(true), 0.1f, &steps));
    EXPECT_TRUE(all_read_back());
    learner->Restore();
    EXPECT_TRUE(all_read_back());
    // The learner replaced (as AddClasses does) with changes not committed;
    // then the new one, with versions of its own held, gone.
    ASSERT_TRUE(LearnAll(*learner, batch(false), 0.1f, &steps));
    *learner = Learner(spec);
    EXPECT_TRUE(all_read_back());
    for (uint64_t v = 1; v <= 3; ++v) {
      ASSERT_TRUE(LearnAll(*learner, batch(false), 0.1f, &steps));
      held.push_back(learner->Commit(v));
      want.push_back(Params(*learner));
    }
    ASSERT_TRUE(LearnAll(*learner, batch(false), 0.1f, &steps));
    learner.reset();
    EXPECT_TRUE(all_read_back());
  }
}

// Full reads run on other threads (checkpoints, exports) while the learner
// changes its working copy: each must read exactly its version.
TEST(LearnerVersionsTest, FullReadsWhileTheLearnerLearnsSeeTheirVersion) {
  const int64_t d = 70000;
  ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression,
                               OptimizerKind::kFtrl, d, 0.1f);
  spec.minibatch_size = 4;
  Learner learner(spec);
  std::mt19937 rng(9);
  uint64_t steps = 0;
  auto sparse_batch = [&] {
    std::vector<Example> out;
    for (int i = 0; i < 16; ++i) {
      out.push_back(Sparse(
          {static_cast<uint32_t>(rng() % d), static_cast<uint32_t>(rng() % d)},
          {1.0f, 0.5f}, static_cast<float>(rng() % 2)));
    }
    return out;
  };
  ASSERT_TRUE(LearnAll(learner, sparse_batch(), 0.1f, &steps));
  const std::shared_ptr<const ParamsVersion> first = learner.Commit(1);
  const std::vector<float> want = Params(learner);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> wrong{0};
  std::thread reader([&] {
    while (!done.load() || reads.load() < 3) {
      if (!BitEqual(first->CopyAll(), want)) ++wrong;
      ++reads;
    }
  });
  for (uint64_t v = 2; v <= 1000; ++v) {
    ASSERT_TRUE(LearnAll(learner, sparse_batch(), 0.1f, &steps));
    if (v % 7 == 0) {
      learner.Restore();  // a rejected update
    } else {
      learner.Commit(v)->Show();
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0) << "of " << reads.load() << " reads";
}

// Every step of these updates changes the same few rows and the bias, so
// the learner notes each row many times: Restore and the versions must still
// go back to each row's values before the update. With enough epochs the
// notes give way to a whole copy of the values before.
TEST(LearnerVersionsTest, StepsOverTheSameRowsAreUndoneAndReadBackExactly) {
  const int64_t d = 70000;  // past ParamLayout::kWholeCopyFloats
  for (const int32_t epochs : {1, 3000}) {
    SCOPED_TRACE(epochs);
    ModelSpec spec = LearnerSpec(ModelType::kLogisticRegression,
                                 OptimizerKind::kAdagrad, d, 0.1f);
    spec.minibatch_size = 2;
    Learner learner(spec);
    ASSERT_FALSE(learner.layout().whole_copies());
    std::vector<Example> examples;
    for (uint32_t i = 0; i < 16; ++i) {
      examples.push_back(
          Sparse({7 + i % 3, d - 1}, {1.0f, 0.5f}, static_cast<float>(i % 2)));
    }
    const std::vector<ExampleView> views = Views(examples);
    uint64_t steps = 0;
    BatchMetrics metrics;
    ASSERT_TRUE(learner.Learn(views, 1, 0.1f, &steps, &metrics));
    const std::shared_ptr<const ParamsVersion> first = learner.Commit(1);
    first->Show();
    const std::vector<float> committed = Params(learner);

    ASSERT_TRUE(learner.Learn(views, epochs, 0.1f, &steps, &metrics));
    EXPECT_FALSE(BitEqual(Params(learner), committed));
    EXPECT_TRUE(BitEqual(first->CopyAll(), committed));
    learner.Restore();
    EXPECT_TRUE(BitEqual(Params(learner), committed));

    // Committed, then moved on: version 1 leaves both live copies, so its
    // weights are rebuilt by taking the deltas back.
    ASSERT_TRUE(learner.Learn(views, epochs, 0.1f, &steps, &metrics));
    const std::shared_ptr<const ParamsVersion> second = learner.Commit(2);
    const std::vector<float> second_params = Params(learner);
    second->Show();
    ASSERT_TRUE(learner.Learn(views, epochs, 0.1f, &steps, &metrics));
    learner.Commit(3)->Show();
    EXPECT_TRUE(BitEqual(second->CopyAll(), second_params));
    EXPECT_TRUE(BitEqual(first->CopyAll(), committed));
    const ParamsPin pin = first->Read();
    ASSERT_TRUE(pin);
    const std::vector<float> weights(
        pin.data(), pin.data() + learner.layout().array_floats());
    EXPECT_TRUE(BitEqual(
        weights, std::vector<float>(committed.begin(),
                                    committed.begin() + weights.size())));
  }
}

// A large model keeps its working copy in row order and gathers the weights
// for its dense products; a reader scores from a published copy in array
// order. Both must give the same outputs, bit for bit.
TEST(LearnerVersionsTest, ALargeModelScoresDenseExamplesAsItsReadersDo) {
  const int64_t d = 40000;  // 2 arrays: past ParamLayout::kWholeCopyFloats
  ModelSpec spec = LearnerSpec(ModelType::kSoftmaxRegression,
                               OptimizerKind::kAdagrad, d, 0.1f);
  spec.num_classes = 3;
  spec.minibatch_size = 4;
  Learner learner(spec);
  ASSERT_FALSE(learner.layout().whole_copies());
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<Example> examples;
  for (int i = 0; i < 12; ++i) {
    std::vector<float> x(d);
    for (float& v : x) v = u(rng);
    examples.push_back(Dense(std::move(x), static_cast<float>(i % 3)));
  }
  examples.push_back(Sparse({5, d - 1}, {1.0f, -2.0f}, 1.0f));
  const std::vector<ExampleView> views = Views(examples);
  uint64_t steps = 0;
  BatchMetrics metrics;
  // A small rate, so that the losses stay far from 0 and tell weights apart.
  for (uint64_t v = 1; v <= 3; ++v) {
    ASSERT_TRUE(learner.Learn(views, 1, 1e-4f, &steps, &metrics));
    learner.Commit(v)->Show();
  }
  const std::shared_ptr<const ParamsVersion> published = learner.Commit(4);
  learner.Evaluate(views);
  const ParamsPin pin = published->Read();
  ASSERT_TRUE(pin);
  const ParamLayout& layout = learner.layout();
  const ContiguousWeights w{pin.data(), layout.rows, layout.outputs,
                            layout.block_shift};
  ForwardScratch scratch;
  std::vector<float> z(views.size() * layout.outputs);
  ComputeOutputs(
      w, d, layout.outputs, static_cast<int64_t>(views.size()),
      [&](int64_t i) -> const FeaturesView& { return views[i].features; },
      &scratch, z.data());
  for (size_t i = 0; i < views.size(); ++i) {
    const ExampleLoss l = ComputeLoss(spec.type, z.data() + i * layout.outputs,
                                      layout.outputs, views[i].label, nullptr);
    EXPECT_GT(l.loss, 0.01) << i;
    EXPECT_EQ(learner.example_losses()[i], static_cast<float>(l.loss)) << i;
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
