// The learning semantics of Update: hand-computed minibatch steps, the SGD
// decay across updates, learning-rate overrides, zero-weight examples, and
// sparse updates that touch only the rows they name (and share the pages
// they do not touch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/model_store_test_support.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

// ------------------------------------------------------------ Semantics

TEST(LearningTest, HandComputedMinibatchStep) {
  // Linear, SGD lr 0.5, from zero weights. Example 1: x = (1, 0), y = 1,
  // weight 3; example 2: x = (0, 2), y = -1. dz = 2 (z - y) = -2 and 2.
  ModelStore store;
  const std::vector<Example> batch = {Dense({1, 0}, 1, 3),
                                      Sparse({1}, {2}, -1)};
  // One step over both: g = ((3 * -2 * 1) / 2, (2 * 2) / 2) = (-3, 2),
  // bias g = (3 * -2 + 2) / 2 = -2.
  ASSERT_TRUE(
      store
          .CreateModel("two", SpecBuilder(ModelType::kLinearRegression, 2)
                                  .Sgd(0.5f)
                                  .Minibatch(2))
          .ok());
  EXPECT_EQ(MustUpdate(store, "two", batch).version, 2u);
  auto v = MustAcquire(store, "two");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->weight(0), 1.5f);
  EXPECT_EQ(v->weight(1), -1.0f);
  EXPECT_EQ(v->weight(2), 1.0f);  // bias
  EXPECT_EQ(v->counters().steps, 1u);

  // One step per example: after example 1, w = (3, 0), b = 3; example 2 then
  // has z = 3, dz = 8, g = (0, 16), bias g = 8: w = (3, -8), b = -1.
  ASSERT_TRUE(
      store
          .CreateModel("one", SpecBuilder(ModelType::kLinearRegression, 2)
                                  .Sgd(0.5f)
                                  .Minibatch(1))
          .ok());
  MustUpdate(store, "one", batch);
  v = MustAcquire(store, "one");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->weight(0), 3.0f);
  EXPECT_EQ(v->weight(1), -8.0f);
  EXPECT_EQ(v->weight(2), -1.0f);
  EXPECT_EQ(v->counters().steps, 2u);
}

TEST(LearningTest, SgdDecayCarriesAcrossUpdates) {
  // Only the bias learns (x = 0): b -= lr / (1 + t) * 2 (b - y).
  ModelStore store;
  ASSERT_TRUE(store
                  .CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 1)
                                        .Sgd(0.4f, /*power_t=*/1.0f)
                                        .Minibatch(1))
                  .ok());
  const std::vector<float> labels = {1, 2, -1, 0.5f, 3};
  double b = 0;
  uint64_t t = 0;
  for (int update = 0; update < 2; ++update) {
    std::vector<Example> batch;
    for (float y : labels) batch.push_back(Dense({0}, y));
    MustUpdate(store, "m", batch);
    for (float y : labels) {
      b -= 0.4 / (1.0 + t) * 2 * (b - y);
      ++t;
    }
    auto v = MustAcquire(store, "m");
    ASSERT_NE(v, nullptr);
    EXPECT_NEAR(v->weight(1), b, 1e-5) << "update " << update;
    EXPECT_EQ(v->weight(0), 0.0f);
    EXPECT_EQ(v->counters().steps, t);
  }
}

// The steps of one update are those of its mini-batches sent as updates of
// their own, bit for bit: the first step reuses the outputs of the scoring
// pass, and must keep only its own rows of them (here rows 0-3 of a batch of
// 10, with dense examples at 1, 5 and 8 and sparse ones elsewhere).
TEST(LearningTest, StepsOfOneUpdateEqualThoseOfSeparateUpdates) {
  constexpr int64_t kFeatures = 37;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto make_batch = [&] {
    std::vector<Example> batch;
    for (int i = 0; i < 10; ++i) {
      const float label = static_cast<float>(i % 3);
      if (i == 1 || i == 5 || i == 8) {
        std::vector<float> x(kFeatures);
        for (float& v : x) v = normal(rng);
        batch.push_back(Dense(x, label));
      } else {
        batch.push_back(Sparse({static_cast<uint32_t>(i), 20u + i % 5},
                               {normal(rng), normal(rng)}, label, 0.5f + i));
      }
    }
    return batch;
  };
  const ModelSpec spec =
      SpecBuilder(ModelType::kSoftmaxRegression, kFeatures, 3)
          .Adagrad(0.3f, 0.1f)
          .L2(0.01f)
          .Minibatch(4);
  ModelStore whole;
  ModelStore split;
  ASSERT_TRUE(whole.CreateModel("m", spec).ok());
  ASSERT_TRUE(split.CreateModel("m", spec).ok());
  // Nonzero weights first, so that every example has nonzero outputs.
  const std::vector<Example> warm_up = make_batch();
  MustUpdate(whole, "m", warm_up);
  MustUpdate(split, "m", warm_up);
  const std::vector<Example> batch = make_batch();
  MustUpdate(whole, "m", batch);
  for (int begin : {0, 4, 8}) {
    MustUpdate(split, "m",
               std::vector<Example>(batch.begin() + begin,
                                    batch.begin() + std::min(begin + 4, 10)));
  }
  auto a = MustAcquire(whole, "m");
  auto b = MustAcquire(split, "m");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->counters().steps, 6u);
  EXPECT_EQ(b->counters().steps, 6u);
  EXPECT_TRUE(BitEqual(AllWeights(*a), AllWeights(*b)));
  EXPECT_TRUE(BitEqual(AllState(*a), AllState(*b)));
}

TEST(LearningTest, LearningRateOverrideScalesTheStep) {
  ModelStore store;
  const ModelSpec base =
      SpecBuilder(ModelType::kLinearRegression, 2).Sgd(0.1f).Minibatch(1);
  ModelSpec doubled = base;
  doubled.optimizer.learning_rate = 0.2f;
  ASSERT_TRUE(store.CreateModel("default", base).ok());
  ASSERT_TRUE(store.CreateModel("override", base).ok());
  ASSERT_TRUE(store.CreateModel("doubled", doubled).ok());
  // From zero: dz = 2 (0 - 1.5) = -3, g = (-1.5, 3), bias g = -3.
  const std::vector<Example> one = {Dense({0.5f, -1}, 1.5f)};
  UpdateOptions twice;
  twice.learning_rate = 0.2f;
  MustUpdate(store, "default", one);
  MustUpdate(store, "override", one, twice);
  MustUpdate(store, "doubled", one);
  auto d = MustAcquire(store, "default");
  auto o = MustAcquire(store, "override");
  ASSERT_NE(d, nullptr);
  ASSERT_NE(o, nullptr);
  EXPECT_FLOAT_EQ(d->weight(0), 0.15f);
  EXPECT_FLOAT_EQ(d->weight(1), -0.3f);
  EXPECT_FLOAT_EQ(d->weight(2), 0.3f);
  for (int64_t f = 0; f <= 2; ++f) {
    EXPECT_EQ(o->weight(f), 2 * d->weight(f)) << f;
  }
  EXPECT_TRUE(
      BitEqual(AllWeights(*o), AllWeights(*MustAcquire(store, "doubled"))));

  // The override lasts one update: "override" now steps at 0.1 again, the
  // same as "doubled" overridden down to 0.1.
  const std::vector<Example> next = {Dense({1, 2}, -1), Dense({-1, 0.5f}, 2)};
  UpdateOptions half;
  half.learning_rate = 0.1f;
  MustUpdate(store, "override", next);
  MustUpdate(store, "doubled", next, half);
  EXPECT_TRUE(BitEqual(AllWeights(*MustAcquire(store, "override")),
                       AllWeights(*MustAcquire(store, "doubled"))));
}

TEST(LearningTest, ZeroWeightExamplesChangeNoWeight) {
  ModelStore store;
  ASSERT_TRUE(store
                  .CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 4)
                                        .Sgd(0.2f)
                                        .Minibatch(2))
                  .ok());
  std::mt19937 rng(17);
  MustUpdate(store, "m",
             RandomBatch(ModelType::kLinearRegression, 4, 0, 12, rng, true));
  const auto before = MustAcquire(store, "m");
  ASSERT_NE(before, nullptr);
  std::vector<Example> zero =
      RandomBatch(ModelType::kLinearRegression, 4, 0, 7, rng, true);
  for (Example& e : zero) e.weight = 0;
  const UpdateResult r = MustUpdate(store, "m", zero);
  EXPECT_EQ(r.version, before->version() + 1);
  EXPECT_EQ(r.loss_before, 0.0);
  EXPECT_FALSE(r.accuracy_before.has_value());
  const auto after = MustAcquire(store, "m");
  ASSERT_NE(after, nullptr);
  EXPECT_TRUE(BitEqual(AllWeights(*after), AllWeights(*before)));
  const ModelCounters& c0 = before->counters();
  const ModelCounters& c1 = after->counters();
  EXPECT_EQ(c1.examples_seen, c0.examples_seen + 7);
  EXPECT_EQ(c1.updates, c0.updates + 1);
  EXPECT_EQ(c1.steps, c0.steps + 4);
  EXPECT_EQ(c1.weight_seen, c0.weight_seen);
  EXPECT_EQ(c1.loss_sum, c0.loss_sum);
}

TEST(LearningTest, ZeroWeightOnlyUpdateReportsZeroLossAndAccuracy) {
  ModelStore store;
  ASSERT_TRUE(
      store.CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 2))
          .ok());
  const UpdateResult r = MustUpdate(store, "m", {Dense({1, 2}, 1, 0)});
  EXPECT_EQ(r.loss_before, 0.0);
  ASSERT_TRUE(r.accuracy_before.has_value());
  EXPECT_EQ(*r.accuracy_before, 0.0);
}

// Sparse updates change only the rows they name (and the bias), with L2 or
// not, and with AdaGrad the untouched accumulators keep their initial value.
class SparseRowsTest : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(SparseRowsTest, SparseUpdateTouchesOnlyNamedRows) {
  constexpr int64_t kD = 20;
  constexpr float kInitialAcc = 0.125f;
  SpecBuilder b(ModelType::kLogisticRegression, kD);
  if (GetParam() == OptimizerKind::kSgd) {
    b.Sgd(0.5f);
  } else {
    b.Adagrad(0.5f, kInitialAcc);
  }
  b.L2(0.1f).Minibatch(3);
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", b).ok());
  const std::vector<Example> batch = {
      Sparse({3, 7}, {1, -2}, 1), Sparse({7}, {0.5f}, 0),
      Sparse({7, 3}, {1, 1}, 1), Sparse({3}, {-1}, 0), Sparse({}, {}, 1)};
  MustUpdate(store, "m", batch);
  UpdateOptions three;
  three.epochs = 3;
  MustUpdate(store, "m", batch, three);
  auto v = MustAcquire(store, "m");
  ASSERT_NE(v, nullptr);
  for (int64_t f = 0; f < kD; ++f) {
    if (f == 3 || f == 7) {
      EXPECT_NE(v->weight(f), 0.0f) << f;
      if (GetParam() == OptimizerKind::kAdagrad) {
        EXPECT_GT(v->optimizer_state(f), kInitialAcc) << f;
      }
    } else {
      EXPECT_EQ(v->weight(f), 0.0f) << f;
      EXPECT_EQ(v->optimizer_state(f),
                GetParam() == OptimizerKind::kAdagrad ? kInitialAcc : 0.0f)
          << f;
    }
  }
  EXPECT_NE(v->weight(kD), 0.0f);  // bias
}

TEST_P(SparseRowsTest, LazyL2LeavesUnnamedRowsAlone) {
  constexpr int64_t kD = 12;
  SpecBuilder b(ModelType::kSoftmaxRegression, kD, 3);
  if (GetParam() == OptimizerKind::kSgd) {
    b.Sgd(0.3f);
  } else {
    b.Adagrad(0.3f);
  }
  b.L2(0.5f).Minibatch(2);
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", b).ok());
  std::mt19937 rng(2);
  // Dense examples: every weight becomes nonzero.
  MustUpdate(store, "m",
             RandomBatch(ModelType::kSoftmaxRegression, kD, 3, 8, rng, false));
  auto before = MustAcquire(store, "m");
  ASSERT_NE(before, nullptr);
  MustUpdate(store, "m", {Sparse({3, 7}, {1, 1}, 2), Sparse({7}, {2}, 0)});
  auto after = MustAcquire(store, "m");
  ASSERT_NE(after, nullptr);
  for (int64_t f = 0; f <= kD; ++f) {
    for (int32_t o = 0; o < 3; ++o) {
      ASSERT_NE(before->weight(f, o), 0.0f);
      if (f == 3 || f == 7 || f == kD) {
        EXPECT_NE(after->weight(f, o), before->weight(f, o)) << f << "," << o;
      } else {
        EXPECT_EQ(after->weight(f, o), before->weight(f, o)) << f << "," << o;
        EXPECT_EQ(after->optimizer_state(f, o), before->optimizer_state(f, o));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, SparseRowsTest,
                         ::testing::Values(OptimizerKind::kSgd,
                                           OptimizerKind::kAdagrad),
                         [](const ::testing::TestParamInfo<OptimizerKind>& i) {
                           return std::string(OptimizerKindName(i.param));
                         });

TEST(LearningTest, SparseUpdatesOfALargeModelCostTheRowsTheyChange) {
  constexpr int64_t kD = 100000;
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel(
              "m", SpecBuilder(ModelType::kLogisticRegression, kD).Sgd(0.5f))
          .ok());
  auto v1 = MustAcquire(store, "m");
  ASSERT_NE(v1, nullptr);
  MustUpdate(store, "m",
             {Sparse({3, 7}, {1, 1}, 1), Sparse({99990}, {1}, 0),
              Sparse({7}, {-1}, 0)});
  auto v2 = MustAcquire(store, "m");
  ASSERT_NE(v2, nullptr);
  const int64_t bytes2 = store.GetModel("m")->memory_bytes;
  MustUpdate(store, "m", {Sparse({11}, {1}, 1)});
  const int64_t bytes3 = store.GetModel("m")->memory_bytes;

  for (int64_t f = 0; f <= kD; ++f) {
    ASSERT_EQ(v1->weight(f), 0.0f) << f;
    if (f == 3 || f == 7 || f == 99990 || f == kD) {
      EXPECT_NE(v2->weight(f), 0.0f) << f;
    } else {
      ASSERT_EQ(v2->weight(f), 0.0f) << f;
    }
  }
  // Publishing cost a few rows, not a copy of the 400 KB model...
  EXPECT_LT(bytes3 - bytes2, 4 * 1024);
  // ...and the model holds its working copy and the two live copies.
  EXPECT_GT(bytes2, static_cast<int64_t>(3 * (kD + 1) * sizeof(float)));
  EXPECT_LT(bytes2, static_cast<int64_t>(4 * (kD + 1) * sizeof(float)));
}

}  // namespace
}  // namespace lepton
