// Tests of the core's public API (core/store/model_store.h): model lifecycle,
// versions, progressive metrics, all-or-nothing updates, learning semantics
// and convergence.
#include "core/store/model_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();

bool NotFound(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound;
}

struct SpecBuilder {
  ModelSpec spec;

  explicit SpecBuilder(ModelType type, int64_t num_features,
                       int32_t num_classes = 0) {
    spec.type = type;
    spec.num_features = num_features;
    spec.num_classes = num_classes;
  }
  SpecBuilder& Sgd(float learning_rate, float power_t = 0) {
    spec.optimizer.kind = OptimizerKind::kSgd;
    spec.optimizer.learning_rate = learning_rate;
    spec.optimizer.power_t = power_t;
    return *this;
  }
  SpecBuilder& Adagrad(float learning_rate, float initial_accumulator = 0) {
    spec.optimizer.kind = OptimizerKind::kAdagrad;
    spec.optimizer.learning_rate = learning_rate;
    spec.optimizer.initial_accumulator = initial_accumulator;
    return *this;
  }
  SpecBuilder& Minibatch(int32_t m) {
    spec.minibatch_size = m;
    return *this;
  }
  SpecBuilder& L2(float l2) {
    spec.l2 = l2;
    return *this;
  }
  operator ModelSpec() const { return spec; }  // NOLINT
};

std::vector<Features> FeaturesOf(const std::vector<Example>& examples) {
  std::vector<Features> f;
  for (const Example& e : examples) f.push_back(e.features);
  return f;
}

Predictions MustPredict(const ModelStore& store, absl::string_view name,
                        const std::vector<Features>& instances,
                        uint64_t version = 0) {
  absl::StatusOr<Predictions> p =
      store.Predict(name, Views(instances), version);
  if (!p.ok()) {
    ADD_FAILURE() << "Predict(" << name << ", v" << version
                  << "): " << p.status();
    return {};
  }
  return *std::move(p);
}

UpdateResult MustUpdate(ModelStore& store, absl::string_view name,
                        const std::vector<Example>& examples,
                        const UpdateOptions& options = {}) {
  absl::StatusOr<UpdateResult> r = store.Update(name, Views(examples), options);
  if (!r.ok()) {
    ADD_FAILURE() << "Update(" << name << "): " << r.status();
    return {};
  }
  return *r;
}

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

std::shared_ptr<const ModelVersion> MustAcquire(const ModelStore& store,
                                                absl::string_view name,
                                                uint64_t version = 0) {
  auto v = store.AcquireVersion(name, version);
  if (!v.ok()) {
    ADD_FAILURE() << "AcquireVersion(" << name << ", " << version
                  << "): " << v.status();
    return nullptr;
  }
  return *v;
}

void ExpectCountersEqual(const ModelCounters& a, const ModelCounters& b) {
  EXPECT_EQ(a.examples_seen, b.examples_seen);
  EXPECT_EQ(a.updates, b.updates);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.weight_seen, b.weight_seen);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(a.correct_weight, b.correct_weight);
}

// Everything observable about a model, to check that a call changed nothing.
struct Snapshot {
  uint64_t version = 0;
  std::vector<uint64_t> retained;
  ModelCounters counters;
  std::vector<float> weights;
  std::vector<float> state;
  std::vector<float> scores;
  std::vector<int32_t> labels;
};

Snapshot Take(const ModelStore& store, absl::string_view name,
              const std::vector<Features>& probes) {
  Snapshot s;
  absl::StatusOr<ModelInfo> info = store.GetModel(name);
  if (!info.ok()) {
    ADD_FAILURE() << info.status();
    return s;
  }
  s.version = info->version;
  s.retained = info->retained_versions;
  s.counters = info->counters;
  std::shared_ptr<const ModelVersion> v = MustAcquire(store, name);
  if (v == nullptr) return s;
  s.weights = AllWeights(*v);
  s.state = AllState(*v);
  const Predictions p = MustPredict(store, name, probes);
  s.scores = p.scores;
  s.labels = p.labels;
  return s;
}

void ExpectSameSnapshot(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.retained, b.retained);
  ExpectCountersEqual(a.counters, b.counters);
  EXPECT_TRUE(BitEqual(a.weights, b.weights)) << "weights changed";
  EXPECT_TRUE(BitEqual(a.state, b.state)) << "optimizer state changed";
  EXPECT_TRUE(BitEqual(a.scores, b.scores)) << "predictions changed";
  EXPECT_EQ(a.labels, b.labels);
}

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

std::vector<Example> RandomBatch(ModelType type, int64_t d, int32_t k, int n,
                                 std::mt19937& rng, bool sparse_too) {
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> weight(0.25f, 2.0f);
  std::vector<Example> batch;
  for (int i = 0; i < n; ++i) {
    float label = 0;
    if (type == ModelType::kLinearRegression) {
      label = normal(rng);
    } else if (type == ModelType::kLogisticRegression) {
      label = static_cast<float>(rng() % 2);
    } else {
      label = static_cast<float>(rng() % k);
    }
    if (sparse_too && i % 2 == 1) {
      std::vector<uint32_t> idx = {static_cast<uint32_t>(rng() % d)};
      const uint32_t other = static_cast<uint32_t>(rng() % d);
      if (other != idx[0]) idx.push_back(other);
      std::vector<float> values;
      for (size_t j = 0; j < idx.size(); ++j) values.push_back(normal(rng));
      batch.push_back(Sparse(idx, values, label, weight(rng)));
    } else {
      std::vector<float> x(d);
      for (float& v : x) v = normal(rng);
      batch.push_back(Dense(x, label, weight(rng)));
    }
  }
  return batch;
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

// ------------------------------------------------------------ Rejections

struct BadUpdate {
  std::string what;
  std::vector<Example> examples;
  UpdateOptions options;
  std::string prefix;
};

TEST(ModelStoreTest, RejectedUpdatesChangeNothing) {
  ModelStore store(StoreOptions{.retained_versions = 4});
  ASSERT_TRUE(
      store
          .CreateModel("m", SpecBuilder(ModelType::kLogisticRegression, 6)
                                .Adagrad(0.3f)
                                .Minibatch(2))
          .ok());
  std::mt19937 rng(3);
  const std::vector<Example> good =
      RandomBatch(ModelType::kLogisticRegression, 6, 0, 10, rng, true);
  MustUpdate(store, "m", good);
  MustUpdate(store, "m", good);

  std::vector<Features> probes = FeaturesOf(good);

  std::vector<BadUpdate> cases;
  {
    std::vector<Example> b = good;
    b[3] = Dense({1, 2, kNan, 4, 5, 6}, 1);
    cases.push_back({"NaN feature", b, {}, "examples[3].features.dense[2]: "});
  }
  {
    std::vector<Example> b = good;
    b[5] = Sparse({1, 6}, {1, 1}, 0);
    cases.push_back(
        {"index out of range", b, {}, "examples[5].features.indices[1]: "});
  }
  {
    std::vector<Example> b = good;
    b[2] = Sparse({4, 1, 4}, {1, 1, 1}, 0);
    cases.push_back(
        {"repeated index", b, {}, "examples[2].features.indices[2]: "});
  }
  {
    std::vector<Example> b = good;
    b[9].label = 2;
    cases.push_back({"bad label", b, {}, "examples[9].label: "});
  }
  {
    std::vector<Example> b = good;
    b[4].weight = -1;
    cases.push_back({"negative weight", b, {}, "examples[4].weight: "});
  }
  {
    std::vector<Example> b = good;
    b[0].features.dense.pop_back();
    cases.push_back({"short dense", b, {}, "examples[0].features.dense: "});
  }
  cases.push_back({"empty batch", {}, {}, "examples: "});
  for (int32_t epochs : {0, -1, kMaxEpochs + 1}) {
    UpdateOptions o;
    o.epochs = epochs;
    cases.push_back({"epochs", good, o, "epochs: "});
  }
  for (float lr : {0.0f, -0.5f, kNan, std::numeric_limits<float>::infinity()}) {
    UpdateOptions o;
    o.learning_rate = lr;
    cases.push_back({"learning rate", good, o, "learning_rate: "});
  }

  for (const BadUpdate& c : cases) {
    SCOPED_TRACE(c.what);
    const Snapshot before = Take(store, "m", probes);
    absl::StatusOr<UpdateResult> r =
        store.Update("m", Views(c.examples), c.options);
    EXPECT_TRUE(IsInvalid(r.status(), c.prefix));
    ExpectSameSnapshot(before, Take(store, "m", probes));
  }
  // The model still learns, from the next version number.
  EXPECT_EQ(MustUpdate(store, "m", good).version, 4u);
}

// The batches of an update that overflows in its last steps, and a good one.
struct OverflowCase {
  std::string name;
  ModelSpec spec;
  std::vector<Example> warmup;  // trains the weights away from zero
  std::vector<Example> bad;     // good examples first, then the overflow
  std::vector<Example> after;   // a good update after the rejected one
  std::vector<Features> probes;
  int32_t epochs = 1;  // of the bad update
};

std::vector<OverflowCase> OverflowCases() {
  std::vector<OverflowCase> cases;
  {
    // Linear regression, SGD lr 1: x0 = 1e30 makes w0 ~ 2e30 after one
    // step, and the next step's output is infinite.
    OverflowCase c;
    c.name = "DenseSgd";
    c.spec =
        SpecBuilder(ModelType::kLinearRegression, 3).Sgd(1.0f).Minibatch(1);
    c.warmup = {Dense({0.1f, 0.2f, 0.3f}, 1), Dense({0.3f, -0.1f, 0.2f}, -1)};
    c.bad = {Dense({0.2f, 0.1f, -0.3f}, 0.5f), Dense({1e30f, 0, 0}, 1),
             Dense({1e30f, 0, 0}, 1)};
    c.after = {Dense({0.5f, 0.5f, 0.5f}, 2)};
    c.probes = FeaturesOf(c.warmup);
    cases.push_back(c);
  }
  {
    // The same with one step over the whole batch and the overflow in the
    // second epoch.
    OverflowCase c;
    c.name = "DenseSgdSecondEpoch";
    // Warm-up with x0 = 0 keeps w0 = 0, so that the first epoch's step
    // stays finite (w0 ~ -1e30) and the second one overflows.
    c.spec =
        SpecBuilder(ModelType::kLinearRegression, 3).Sgd(1.0f).Minibatch(8);
    c.warmup = {Dense({0, 0.2f, 0.3f}, 1)};
    c.bad = {Dense({0.2f, 0.1f, -0.3f}, 0.5f), Dense({1e30f, 0, 0}, 1)};
    c.after = {Dense({0.5f, 0.5f, 0.5f}, 2)};
    c.probes = FeaturesOf(c.warmup);
    c.epochs = 2;
    cases.push_back(c);
  }
  {
    // A model of many pages, sparse examples: only a few pages are dirty
    // when the overflow happens.
    OverflowCase c;
    c.name = "SparseSgdManyPages";
    c.spec = SpecBuilder(ModelType::kLinearRegression, 100000)
                 .Sgd(1.0f)
                 .Minibatch(1);
    c.warmup = {Sparse({5, 70000, 99999}, {0.5f, 0.25f, 0.1f}, 1),
                Sparse({300, 99999}, {0.5f, -0.5f}, -1)};
    c.bad = {Sparse({5, 70000}, {0.1f, 0.2f}, 2),
             Sparse({300, 45000}, {0.1f, 0.3f}, 2), Sparse({99999}, {1e30f}, 1),
             Sparse({99999}, {1e30f}, 1)};
    c.after = {Sparse({5, 300, 99999}, {1, 1, 1}, 3)};
    c.probes = FeaturesOf(c.warmup);
    c.probes.push_back(FeaturesOf(c.bad)[1]);
    cases.push_back(c);
  }
  {
    // AdaGrad: g^2 = (2e10 * 1e20)^2 overflows the accumulator while the
    // weight stays finite.
    OverflowCase c;
    c.name = "DenseAdagradAccumulator";
    c.spec =
        SpecBuilder(ModelType::kLinearRegression, 2).Adagrad(0.5f).Minibatch(1);
    c.warmup = {Dense({0.1f, 0.2f}, 1), Dense({-0.3f, 0.2f}, 2)};
    c.bad = {Dense({0.1f, 0.1f}, 1), Dense({1e20f, 0}, 1e10f)};
    c.after = {Dense({1, 1}, 1)};
    c.probes = FeaturesOf(c.warmup);
    cases.push_back(c);
  }
  {
    // Softmax with AdaGrad, sparse, a multi-page model.
    OverflowCase c;
    c.name = "SparseSoftmaxAdagrad";
    c.spec = SpecBuilder(ModelType::kSoftmaxRegression, 20000, 3)
                 .Adagrad(0.5f)
                 .Minibatch(2);
    c.warmup = {Sparse({1, 19999}, {1, 1}, 2), Sparse({7}, {2}, 0)};
    c.bad = {Sparse({1, 7}, {1, 1}, 1), Sparse({12345}, {1e25f}, 0)};
    c.after = {Sparse({1, 12345}, {1, 1}, 1)};
    c.probes = FeaturesOf(c.warmup);
    c.probes.push_back(FeaturesOf(c.bad)[1]);
    cases.push_back(c);
  }
  return cases;
}

void PrintTo(const OverflowCase& c, std::ostream* os) { *os << c.name; }

class OverflowTest : public ::testing::TestWithParam<OverflowCase> {};

TEST_P(OverflowTest, OverflowingUpdateIsRejectedWhole) {
  const OverflowCase& c = GetParam();
  // `store` sees the rejected update, `twin` never does.
  ModelStore store;
  ModelStore twin;
  ASSERT_TRUE(store.CreateModel("m", c.spec).ok());
  ASSERT_TRUE(twin.CreateModel("m", c.spec).ok());
  MustUpdate(store, "m", c.warmup);
  MustUpdate(twin, "m", c.warmup);

  UpdateOptions options;
  options.epochs = c.epochs;
  if (c.epochs > 1) {
    // The premise: the epochs before the last one are finite.
    ModelStore fewer;
    ASSERT_TRUE(fewer.CreateModel("m", c.spec).ok());
    MustUpdate(fewer, "m", c.warmup);
    UpdateOptions o;
    o.epochs = c.epochs - 1;
    ASSERT_TRUE(fewer.Update("m", Views(c.bad), o).ok());
  }

  const Snapshot before = Take(store, "m", c.probes);
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(c.bad), options);
  EXPECT_TRUE(IsInvalid(r.status(), "examples: "));
  ExpectSameSnapshot(before, Take(store, "m", c.probes));

  // Later updates behave as if the rejected one never happened.
  const UpdateResult a = MustUpdate(store, "m", c.after);
  const UpdateResult b = MustUpdate(twin, "m", c.after);
  EXPECT_EQ(a.version, 3u);
  EXPECT_EQ(a.loss_before, b.loss_before);
  ExpectSameSnapshot(Take(twin, "m", c.probes), Take(store, "m", c.probes));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OverflowTest, ::testing::ValuesIn(OverflowCases()),
    [](const ::testing::TestParamInfo<OverflowCase>& info) {
      return info.param.name;
    });

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

TEST(LearningTest, SparseUpdateOfALargeModelSharesUntouchedPages) {
  constexpr int64_t kD = 100000;
  ModelStore store;
  ASSERT_TRUE(
      store
          .CreateModel(
              "m", SpecBuilder(ModelType::kLogisticRegression, kD).Sgd(0.5f))
          .ok());
  auto v1 = MustAcquire(store, "m");
  ASSERT_NE(v1, nullptr);
  const int64_t bytes1 = store.GetModel("m")->memory_bytes;
  MustUpdate(store, "m",
             {Sparse({3, 7}, {1, 1}, 1), Sparse({99990}, {1}, 0),
              Sparse({7}, {-1}, 0)});
  auto v2 = MustAcquire(store, "m");
  ASSERT_NE(v2, nullptr);
  const int64_t bytes2 = store.GetModel("m")->memory_bytes;

  const PageLayout& layout = v2->table().layout();
  ASSERT_GT(layout.num_pages, 100);
  std::set<int64_t> touched;
  for (int64_t row : {int64_t{3}, int64_t{7}, int64_t{99990}, kD}) {
    touched.insert(row >> layout.row_shift);
  }
  for (int64_t p = 0; p < layout.num_pages; ++p) {
    if (touched.contains(p)) {
      EXPECT_NE(v2->table().page(p), v1->table().page(p)) << p;
    } else {
      ASSERT_EQ(v2->table().page(p), v1->table().page(p)) << p;
    }
  }
  for (int64_t f = 0; f <= kD; ++f) {
    if (f == 3 || f == 7 || f == 99990 || f == kD) {
      EXPECT_NE(v2->weight(f), 0.0f) << f;
    } else {
      ASSERT_EQ(v2->weight(f), 0.0f) << f;
    }
  }
  // Publishing cost a few pages, not a copy of the 400 KB model.
  EXPECT_LT(bytes2 - bytes1, 32 * 1024);
  EXPECT_GT(bytes1, static_cast<int64_t>(kD * sizeof(float)));
}

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
