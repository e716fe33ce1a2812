// Tests of the core's public API (core/store/model_store.h): model
// lifecycle, versions and the handles that pin them, and progressive
// metrics.
#include "core/store/model_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "tests/core/model_store_test_support.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

// ------------------------------------------------------------ Lifecycle

TEST(ModelStoreTest, CreateReturnsVersionOneWithZeroWeights) {
  ModelStore store;
  const ModelSpec spec =
      SpecBuilder(ModelType::kSoftmaxRegression, 7, 3).Adagrad(0.1f, 0.25f);
  absl::StatusOr<ModelInfo> info = store.CreateModel("m", spec);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name, "m");
  EXPECT_EQ(info->version, 1u);
  EXPECT_EQ(info->retained_versions, std::vector<uint64_t>{1});
  EXPECT_EQ(info->spec.type, ModelType::kSoftmaxRegression);
  EXPECT_EQ(info->spec.num_features, 7);
  EXPECT_EQ(info->spec.num_classes, 3);
  EXPECT_EQ(info->counters.examples_seen, 0u);
  EXPECT_EQ(info->counters.updates, 0u);
  EXPECT_GT(info->memory_bytes, 0);

  auto v = MustAcquire(store, "m");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->version(), 1u);
  for (float w : AllWeights(*v)) ASSERT_EQ(w, 0.0f);
  for (float a : AllState(*v)) ASSERT_EQ(a, 0.25f);  // initial_accumulator
}

TEST(ModelStoreTest, ZeroModelPredictions) {
  ModelStore store;
  ASSERT_TRUE(
      store.CreateModel("lin", SpecBuilder(ModelType::kLinearRegression, 3))
          .ok());
  ASSERT_TRUE(
      store.CreateModel("log", SpecBuilder(ModelType::kLogisticRegression, 3))
          .ok());
  ASSERT_TRUE(
      store
          .CreateModel("soft", SpecBuilder(ModelType::kSoftmaxRegression, 3, 4))
          .ok());
  std::vector<Features> x(2);
  x[0].dense = {1, 2, 3};
  x[1].indices = {2};
  x[1].values = {5};

  Predictions p = MustPredict(store, "lin", x);
  EXPECT_EQ(p.version, 1u);
  EXPECT_EQ(p.num_outputs, 1);
  EXPECT_EQ(p.scores, (std::vector<float>{0, 0}));
  EXPECT_TRUE(p.labels.empty());

  p = MustPredict(store, "log", x);
  EXPECT_EQ(p.scores, (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(p.labels, (std::vector<int32_t>{1, 1}));

  p = MustPredict(store, "soft", x);
  ASSERT_EQ(p.num_outputs, 4);
  ASSERT_EQ(p.size(), 2u);
  for (float s : p.scores) EXPECT_EQ(s, 0.25f);
  EXPECT_EQ(p.labels, (std::vector<int32_t>{0, 0}));
}

TEST(ModelStoreTest, CreateRejectsTakenName) {
  ModelStore store;
  ASSERT_TRUE(
      store.CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 2))
          .ok());
  ASSERT_TRUE(
      store.Update("m", Views(std::vector<Example>{Dense({1, 1}, 1)})).ok());
  absl::StatusOr<ModelInfo> again =
      store.CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 5));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists)
      << again.status();
  // The existing model is untouched.
  absl::StatusOr<ModelInfo> info = store.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version, 2u);
  EXPECT_EQ(info->spec.type, ModelType::kLinearRegression);
  EXPECT_EQ(info->spec.num_features, 2);
  EXPECT_EQ(store.ListModels().size(), 1u);
}

TEST(ModelStoreTest, CreateRejectsBadNameOrSpec) {
  ModelStore store;
  const ModelSpec good = SpecBuilder(ModelType::kLinearRegression, 2);
  EXPECT_TRUE(IsInvalid(store.CreateModel("", good).status(), "name: "));
  EXPECT_TRUE(IsInvalid(store.CreateModel("a/b", good).status(), "name: "));
  EXPECT_TRUE(IsInvalid(store.CreateModel(".x", good).status(), "name: "));
  EXPECT_TRUE(IsInvalid(
      store.CreateModel(std::string(kMaxModelNameLength + 1, 'a'), good)
          .status(),
      "name: "));
  EXPECT_TRUE(IsInvalid(
      store.CreateModel("m", SpecBuilder(ModelType::kLinearRegression, 0))
          .status(),
      "spec.num_features: "));
  EXPECT_TRUE(IsInvalid(
      store.CreateModel("m", SpecBuilder(ModelType::kSoftmaxRegression, 3, 1))
          .status(),
      "spec.num_classes: "));
  ModelSpec bad_lr = good;
  bad_lr.optimizer.learning_rate = 0;
  EXPECT_TRUE(IsInvalid(store.CreateModel("m", bad_lr).status(),
                        "spec.optimizer.learning_rate: "));
  EXPECT_TRUE(store.ListModels().empty());
  EXPECT_TRUE(NotFound(store.GetModel("m").status()));
}

TEST(ModelStoreTest, ListModelsIsSortedByName) {
  ModelStore store;
  const ModelSpec spec = SpecBuilder(ModelType::kLinearRegression, 1);
  for (const char* name : {"zeta", "alpha", "Mid", "beta-2", "beta", "a.1"}) {
    ASSERT_TRUE(store.CreateModel(name, spec).ok()) << name;
  }
  std::vector<std::string> names;
  for (const ModelInfo& info : store.ListModels()) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Mid", "a.1", "alpha", "beta",
                                             "beta-2", "zeta"}));
}

TEST(ModelStoreTest, UnknownModelIsNotFound) {
  ModelStore store;
  std::vector<Features> x(1);
  EXPECT_TRUE(NotFound(store.GetModel("nope").status()));
  EXPECT_TRUE(NotFound(store.Predict("nope", Views(x)).status()));
  EXPECT_TRUE(
      NotFound(store.Update("nope", Views(std::vector<Example>{Dense({1}, 1)}))
                   .status()));
  EXPECT_TRUE(NotFound(store.AcquireVersion("nope").status()));
  EXPECT_TRUE(NotFound(store.DeleteModel("nope")));
}

TEST(ModelStoreTest, DeleteModel) {
  ModelStore store;
  const ModelSpec spec = SpecBuilder(ModelType::kLinearRegression, 2).Sgd(0.1f);
  ASSERT_TRUE(store.CreateModel("keep", spec).ok());
  ASSERT_TRUE(store.CreateModel("doomed", spec).ok());
  MustUpdate(store, "doomed", {Dense({1, 2}, 3)});
  auto handle = MustAcquire(store, "doomed");
  ASSERT_NE(handle, nullptr);
  std::vector<Features> x(1);
  x[0].dense = {1, 1};
  const Predictions before = MustPredict(store, "doomed", x);

  ASSERT_TRUE(store.DeleteModel("doomed").ok());
  EXPECT_TRUE(NotFound(store.GetModel("doomed").status()));
  EXPECT_TRUE(NotFound(store.Predict("doomed", Views(x)).status()));
  EXPECT_TRUE(NotFound(store.AcquireVersion("doomed").status()));
  EXPECT_TRUE(NotFound(
      store.Update("doomed", Views(std::vector<Example>{Dense({1, 2}, 3)}))
          .status()));
  EXPECT_TRUE(NotFound(store.DeleteModel("doomed")));
  ASSERT_EQ(store.ListModels().size(), 1u);
  EXPECT_EQ(store.ListModels()[0].name, "keep");

  // A handle taken before the deletion still works.
  EXPECT_EQ(handle->version(), 2u);
  EXPECT_TRUE(BitEqual(handle->Predict(Views(x)).scores, before.scores));

  // The name can be reused for a brand-new model.
  absl::StatusOr<ModelInfo> fresh = store.CreateModel("doomed", spec);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->version, 1u);
  EXPECT_EQ(MustPredict(store, "doomed", x).scores, std::vector<float>{0});
}

TEST(ModelStoreTest, PredictValidatesInstances) {
  ModelStore store;
  ASSERT_TRUE(
      store.CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 4))
          .ok());
  std::vector<Features> x(2);
  x[0].dense = {1, 2, 3, 4};
  x[1].indices = {4};
  x[1].values = {1};
  EXPECT_TRUE(IsInvalid(store.Predict("m", Views(x)).status(),
                        "instances[1].indices[0]: "));
  EXPECT_TRUE(IsInvalid(store.Predict("m", {}).status(), "instances: "));
  x[1].indices = {3};
  EXPECT_TRUE(store.Predict("m", Views(x)).ok());
}

// ------------------------------------------------------------ Progressive

// The weighted mean loss (and accuracy) of `batch` under the predictions
// `p` of its features, computed from the served probabilities.
struct Expected {
  double loss = 0;
  double accuracy = 0;
  double weight = 0;
};

Expected ExpectedMetrics(ModelType type, const Predictions& p,
                         const std::vector<Example>& batch) {
  Expected e;
  double loss_sum = 0;
  double correct = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const Example& ex = batch[i];
    double loss = 0;
    switch (type) {
      case ModelType::kLinearRegression: {
        const double d = double{p.value(i)} - ex.label;
        loss = d * d;
        break;
      }
      case ModelType::kLogisticRegression: {
        const double q = p.value(i);
        loss = ex.label == 1 ? -std::log(q) : -std::log1p(-q);
        break;
      }
      default:
        loss =
            -std::log(double{p.probabilities(i)[static_cast<int>(ex.label)]});
    }
    loss_sum += ex.weight * loss;
    if (!p.labels.empty() && p.labels[i] == static_cast<int32_t>(ex.label)) {
      correct += ex.weight;
    }
    e.weight += ex.weight;
  }
  e.loss = loss_sum / e.weight;
  e.accuracy = correct / e.weight;
  return e;
}

class ProgressiveTest : public ::testing::TestWithParam<ModelType> {};

TEST_P(ProgressiveTest, LossBeforeIsTheMeanLossOfThePredictions) {
  const ModelType type = GetParam();
  const int32_t k = type == ModelType::kSoftmaxRegression ? 3 : 0;
  // A one-page model, and one of many pages (the learner sums its working
  // copy in the same blocks as the pages, so its scores equal Predict's).
  for (const int64_t d : {int64_t{6}, int64_t{30000}}) {
    SCOPED_TRACE(::testing::Message() << "num_features " << d);
    ModelStore store;
    ASSERT_TRUE(
        store.CreateModel("m", SpecBuilder(type, d, k).Sgd(0.05f).Minibatch(4))
            .ok());
    std::mt19937 rng(11);
    uint64_t version = 1;
    for (int round = 0; round < 4; ++round) {
      SCOPED_TRACE(::testing::Message() << "round " << round);
      const std::vector<Example> batch =
          RandomBatch(type, d, k, 13, rng, /*sparse_too=*/true);
      const Predictions p = MustPredict(store, "m", FeaturesOf(batch));
      ASSERT_EQ(p.version, version);
      const Expected e = ExpectedMetrics(type, p, batch);
      const UpdateResult r = MustUpdate(store, "m", batch);
      EXPECT_EQ(r.version, version + 1);
      EXPECT_EQ(r.examples, 13);
      EXPECT_NEAR(r.loss_before, e.loss, 1e-5 * e.loss);
      if (type == ModelType::kLinearRegression) {
        EXPECT_FALSE(r.accuracy_before.has_value());
      } else {
        ASSERT_TRUE(r.accuracy_before.has_value());
        EXPECT_NEAR(*r.accuracy_before, e.accuracy, 1e-12);
      }
      version = r.version;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ProgressiveTest,
                         ::testing::Values(ModelType::kLinearRegression,
                                           ModelType::kLogisticRegression,
                                           ModelType::kSoftmaxRegression),
                         [](const ::testing::TestParamInfo<ModelType>& info) {
                           return std::string(ModelTypeName(info.param));
                         });

TEST(ModelStoreTest, FirstUpdateOfLogisticModelHasLossLogTwo) {
  ModelStore store;
  ASSERT_TRUE(
      store.CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 2))
          .ok());
  // Zero weights: p = 0.5 for all, predicted label 1.
  const UpdateResult r =
      MustUpdate(store, "m", {Dense({1, 2}, 1, 3), Dense({2, 1}, 0, 1)});
  EXPECT_NEAR(r.loss_before, std::log(2.0), 1e-9);
  ASSERT_TRUE(r.accuracy_before.has_value());
  EXPECT_DOUBLE_EQ(*r.accuracy_before, 0.75);  // weight 3 of 4 is label 1
}

TEST(ModelStoreTest, CountersAccumulate) {
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 3)
                                .Sgd(0.1f)
                                .Minibatch(3))
          .ok());
  std::mt19937 rng(5);
  const std::vector<Example> b1 =
      RandomBatch(ModelType::kLogisticRegression, 3, 0, 5, rng, true);
  const std::vector<Example> b2 =
      RandomBatch(ModelType::kLogisticRegression, 3, 0, 4, rng, true);
  double w1 = 0, w2 = 0;
  for (const Example& e : b1) w1 += e.weight;
  for (const Example& e : b2) w2 += e.weight;

  const UpdateResult r1 = MustUpdate(store, "m", b1);
  UpdateOptions two_epochs;
  two_epochs.epochs = 2;
  const UpdateResult r2 = MustUpdate(store, "m", b2, two_epochs);

  absl::StatusOr<ModelInfo> info = store.GetModel("m");
  ASSERT_TRUE(info.ok());
  const ModelCounters& c = info->counters;
  EXPECT_EQ(info->version, 3u);
  EXPECT_EQ(c.examples_seen, 9u);  // each example once, whatever the epochs
  EXPECT_EQ(c.updates, 2u);
  EXPECT_EQ(c.steps, 2u + 2 * 2u);  // ceil(5/3) + 2 * ceil(4/3)
  EXPECT_NEAR(c.weight_seen, w1 + w2, 1e-9);
  EXPECT_NEAR(c.loss_sum, r1.loss_before * w1 + r2.loss_before * w2, 1e-9);
  EXPECT_NEAR(c.correct_weight,
              *r1.accuracy_before * w1 + *r2.accuracy_before * w2, 1e-9);
  EXPECT_NEAR(c.progressive_loss(), c.loss_sum / c.weight_seen, 1e-12);
  EXPECT_NEAR(c.progressive_accuracy(), c.correct_weight / c.weight_seen,
              1e-12);
  EXPECT_GE(info->updated, info->created);

  // Each version carries the counters as of its publication.
  auto v2 = MustAcquire(store, "m", 2);
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->counters().examples_seen, 5u);
  EXPECT_EQ(v2->counters().updates, 1u);
  EXPECT_EQ(v2->counters().steps, 2u);
  EXPECT_NEAR(v2->counters().weight_seen, w1, 1e-9);
  auto v1 = MustAcquire(store, "m", 1);
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(v1->counters().examples_seen, 0u);
}

// ------------------------------------------------------------ Versions

TEST(ModelStoreTest, PinnedVersionsAreRetainedVersions) {
  ModelStore store(StoreOptions{.retained_versions = 3});
  ASSERT_TRUE(
      store
          .CreateModel("m",
                       SpecBuilder(ModelType::kLinearRegression, 2).Sgd(0.1f))
          .ok());
  std::vector<Features> x(2);
  x[0].dense = {1, -1};
  x[1].indices = {1};
  x[1].values = {2};
  std::vector<std::vector<float>> scores_at = {
      {}, MustPredict(store, "m", x).scores};
  for (int i = 0; i < 5; ++i) {
    const UpdateResult r =
        MustUpdate(store, "m", {Dense({1.0f * i, 1}, 2.0f + i)});
    ASSERT_EQ(r.version, static_cast<uint64_t>(i + 2));
    scores_at.push_back(MustPredict(store, "m", x).scores);
  }
  absl::StatusOr<ModelInfo> info = store.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version, 6u);
  EXPECT_EQ(info->retained_versions, (std::vector<uint64_t>{4, 5, 6}));
  for (uint64_t v : {4u, 5u, 6u}) {
    const Predictions p = MustPredict(store, "m", x, v);
    EXPECT_EQ(p.version, v);
    EXPECT_TRUE(BitEqual(p.scores, scores_at[v])) << "version " << v;
    auto handle = MustAcquire(store, "m", v);
    ASSERT_NE(handle, nullptr);
    EXPECT_EQ(handle->version(), v);
  }
  // Scores of consecutive versions differ: the pins are really different.
  EXPECT_FALSE(BitEqual(scores_at[4], scores_at[5]));
  EXPECT_EQ(MustPredict(store, "m", x, 0).version, 6u);
  for (uint64_t v : {1u, 2u, 3u, 7u, 1000u}) {
    EXPECT_TRUE(NotFound(store.Predict("m", Views(x), v).status())) << v;
    EXPECT_TRUE(NotFound(store.AcquireVersion("m", v).status())) << v;
  }
}

TEST(ModelStoreTest, HandleOutlivesEviction) {
  ModelStore store(StoreOptions{.retained_versions = 2});
  ASSERT_TRUE(
      store
          .CreateModel(
              "m",
              SpecBuilder(ModelType::kSoftmaxRegression, 3, 3).Adagrad(0.5f))
          .ok());
  MustUpdate(store, "m", {Dense({1, 0, 0}, 0), Dense({0, 1, 0}, 1)});
  auto handle = MustAcquire(store, "m");
  ASSERT_NE(handle, nullptr);
  ASSERT_EQ(handle->version(), 2u);
  std::vector<Features> x(2);
  x[0].dense = {0.5f, -1, 2};
  x[1].indices = {0, 2};
  x[1].values = {1, 1};
  const std::vector<float> weights = AllWeights(*handle);
  const std::vector<float> state = AllState(*handle);
  const Predictions before = handle->Predict(Views(x));

  for (int i = 0; i < 6; ++i) {
    MustUpdate(store, "m", {Dense({1, 1, 1}, 2), Sparse({0}, {3}, 1)});
  }
  EXPECT_TRUE(NotFound(store.AcquireVersion("m", 2).status()));
  EXPECT_TRUE(NotFound(store.Predict("m", Views(x), 2).status()));
  // The evicted version is still whole through the handle.
  EXPECT_EQ(handle->version(), 2u);
  EXPECT_TRUE(BitEqual(AllWeights(*handle), weights));
  EXPECT_TRUE(BitEqual(AllState(*handle), state));
  const Predictions after = handle->Predict(Views(x));
  EXPECT_EQ(after.version, 2u);
  EXPECT_TRUE(BitEqual(after.scores, before.scores));
  EXPECT_EQ(after.labels, before.labels);
  EXPECT_FALSE(BitEqual(MustPredict(store, "m", x).scores, before.scores));
}

}  // namespace
}  // namespace lepton
