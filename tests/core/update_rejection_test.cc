// All-or-nothing updates of the model store: a rejected update (bad
// examples or options) and one that would overflow a weight or the
// optimizer's state change nothing observable.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
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

const float kNan = std::numeric_limits<float>::quiet_NaN();

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

}  // namespace
}  // namespace lepton
