// Delayed labels through the core's API (core/store/model_store.h): predictions
// with ids, updates that send only {prediction_id, label, weight}, the
// progressive loss of the prediction actually served, all-or-nothing
// resolution, ids used once, retries, and the learner's per-example losses.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/learner.h"
#include "core/learning/loss.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

constexpr PredictOptions kRemember{.remember = true};

ModelSpec Logistic(int64_t d = 4) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = d;
  spec.optimizer.kind = OptimizerKind::kSgd;
  spec.optimizer.learning_rate = 0.5f;
  spec.minibatch_size = 1;
  return spec;
}

ModelSpec Softmax() {
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = 4;
  spec.num_classes = 3;
  spec.optimizer.kind = OptimizerKind::kAdagrad;
  spec.optimizer.learning_rate = 0.3f;
  spec.minibatch_size = 2;
  return spec;
}

Example ById(uint64_t id, float label, float weight = 1) {
  Example e;
  e.prediction_id = id;
  e.label = label;
  e.weight = weight;
  return e;
}

std::vector<Example> Training() {
  return {Dense({1, 0, 0.5f, 0}, 1), Dense({0, 1, 0, -1}, 0),
          Sparse({2, 3}, {1, 1}, 1), Dense({-1, 0.5f, 0, 0}, 0)};
}

bool HasCode(const absl::Status& s, absl::StatusCode code,
             absl::string_view prefix = "") {
  return s.code() == code && absl::StartsWith(s.message(), prefix);
}

std::vector<Features> Instances() {
  std::vector<Features> f(3);
  f[0].dense = {0.5f, -1, 2, 0.25f};
  f[1].indices = {1, 3};
  f[1].values = {2, -0.5f};
  f[2].dense = {-1, -1, 1, 1};
  return f;
}

TEST(DelayedLabelsTest, PredictReturnsIdsOnlyWhenAsked) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  const std::vector<Features> x = Instances();
  absl::StatusOr<Predictions> plain = store.Predict("m", Views(x));
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->prediction_ids.empty());
  absl::StatusOr<Predictions> p = store.Predict("m", Views(x), 0, kRemember);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->prediction_ids.size(), 3u);
  EXPECT_NE(p->prediction_ids[0], 0u);
  EXPECT_NE(p->prediction_ids[0], p->prediction_ids[1]);
  EXPECT_NE(p->prediction_ids[1], p->prediction_ids[2]);
  EXPECT_TRUE(BitEqual(p->scores, plain->scores));
}

// Labeling by id learns exactly what sending the features would have, when
// the model has not moved since the prediction.
TEST(DelayedLabelsTest, UpdateByIdLearnsFromTheCachedFeatures) {
  for (const ModelSpec& spec : {Logistic(), Softmax()}) {
    ModelStore by_id, direct;
    ASSERT_TRUE(by_id.CreateModel("m", spec).ok());
    ASSERT_TRUE(direct.CreateModel("m", spec).ok());
    const std::vector<Features> x = Instances();
    absl::StatusOr<Predictions> p = by_id.Predict("m", Views(x), 0, kRemember);
    ASSERT_TRUE(p.ok());
    const float labels[] = {1, 0, 1};
    std::vector<Example> delayed, full;
    for (int i = 0; i < 3; ++i) {
      delayed.push_back(ById(p->prediction_ids[i], labels[i], 0.5f + i));
      Example e;
      e.features = x[i];
      e.label = labels[i];
      e.weight = 0.5f + i;
      full.push_back(e);
    }
    absl::StatusOr<UpdateResult> a = by_id.Update("m", Views(delayed));
    absl::StatusOr<UpdateResult> b = direct.Update("m", Views(full));
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(a->version, 2u);
    EXPECT_EQ(a->loss_before, b->loss_before);
    EXPECT_EQ(a->accuracy_before, b->accuracy_before);
    EXPECT_TRUE(BitEqual(AllWeights(**by_id.AcquireVersion("m")),
                         AllWeights(**direct.AcquireVersion("m"))));
  }
}

// The loss counted is the served prediction's, though the model has moved
// on (and the prediction was pinned to an older version).
TEST(DelayedLabelsTest, ProgressiveLossIsTheServedPredictions) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  const std::vector<Example> train = Training();
  ASSERT_TRUE(store.Update("m", Views(train)).ok());  // version 2
  ASSERT_TRUE(store.Update("m", Views(train)).ok());  // version 3
  std::vector<Features> x(1);
  x[0].dense = {1, 1, -1, 0.5f};
  absl::StatusOr<Predictions> served =
      store.Predict("m", Views(x), 2, kRemember);  // pinned to version 2
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(served->version, 2u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store.Update("m", Views(train)).ok());
  absl::StatusOr<Predictions> now = store.Predict("m", Views(x));
  ASSERT_TRUE(now.ok());
  const ModelCounters before = (*store.AcquireVersion("m"))->counters();

  const std::vector<Example> label = {ById(served->prediction_ids[0], 0)};
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(label));
  ASSERT_TRUE(r.ok()) << r.status();
  // Label 0: the loss is -log(1 - p), p = P(y = 1) as served.
  const double served_loss = -std::log(1.0 - served->value(0));
  const double current_loss = -std::log(1.0 - now->value(0));
  ASSERT_GT(std::abs(served_loss - current_loss), 0.05);  // they differ
  EXPECT_NEAR(r->loss_before, served_loss, 1e-5);
  EXPECT_EQ(*r->accuracy_before, served->labels[0] == 0 ? 1.0 : 0.0);
  const ModelCounters after = (*store.AcquireVersion("m"))->counters();
  EXPECT_DOUBLE_EQ(after.loss_sum - before.loss_sum, r->loss_before);
}

TEST(DelayedLabelsTest, UnknownIdIsNotFoundAndNothingIsApplied) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  const std::vector<Features> x = Instances();
  absl::StatusOr<Predictions> p = store.Predict("m", Views(x), 0, kRemember);
  ASSERT_TRUE(p.ok());
  std::vector<Example> batch = {ById(p->prediction_ids[0], 1),
                                Dense({1, 2, 3, 4}, 0),
                                ById(p->prediction_ids[1], 0), ById(1234, 1)};
  absl::Status s = store.Update("m", Views(batch)).status();
  EXPECT_TRUE(HasCode(s, absl::StatusCode::kNotFound,
                      "examples[3].prediction_id: 1234 is unknown or expired"))
      << s;
  EXPECT_EQ(store.GetModel("m")->version, 1u);
  EXPECT_EQ(store.GetModel("m")->counters.examples_seen, 0u);
  // The ids the failed update named are still usable.
  batch.pop_back();
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(batch));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->examples, 3);
}

TEST(DelayedLabelsTest, AnIdIsUsedOnce) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  const std::vector<Features> x = Instances();
  absl::StatusOr<Predictions> p = store.Predict("m", Views(x), 0, kRemember);
  ASSERT_TRUE(p.ok());
  const std::vector<Example> once = {ById(p->prediction_ids[1], 1)};
  ASSERT_TRUE(store.Update("m", Views(once)).ok());
  absl::Status s = store.Update("m", Views(once)).status();
  EXPECT_TRUE(HasCode(s, absl::StatusCode::kNotFound,
                      absl::StrCat("examples[0].prediction_id: ",
                                   p->prediction_ids[1], " is unknown")))
      << s;
  // Twice in one update: the second is already used.
  const std::vector<Example> twice = {ById(p->prediction_ids[0], 1),
                                      ById(p->prediction_ids[0], 0)};
  EXPECT_TRUE(HasCode(store.Update("m", Views(twice)).status(),
                      absl::StatusCode::kNotFound,
                      "examples[1].prediction_id: "));
  EXPECT_EQ(store.GetModel("m")->version, 2u);
}

TEST(DelayedLabelsTest, RetryWithTheSameUpdateIdReturnsTheOriginalResult) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  const std::vector<Features> x = Instances();
  absl::StatusOr<Predictions> p = store.Predict("m", Views(x), 0, kRemember);
  ASSERT_TRUE(p.ok());
  const std::vector<Example> batch = {ById(p->prediction_ids[0], 1),
                                      ById(p->prediction_ids[2], 0)};
  absl::StatusOr<UpdateResult> first =
      store.Update("m", Views(batch), {}, "u1");
  ASSERT_TRUE(first.ok()) << first.status();
  // The ids are consumed, but the retry is recognized before they are
  // looked up.
  absl::StatusOr<UpdateResult> retry =
      store.Update("m", Views(batch), {}, "u1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version, first->version);
  EXPECT_EQ(retry->loss_before, first->loss_before);
  EXPECT_EQ(store.GetModel("m")->version, 2u);
  // Another update id with the same ids is a new update: NOT_FOUND.
  EXPECT_TRUE(HasCode(store.Update("m", Views(batch), {}, "u2").status(),
                      absl::StatusCode::kNotFound,
                      "examples[0].prediction_id"));
}

TEST(DelayedLabelsTest, AFailedUpdateReleasesItsIds) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic(1)).ok());
  std::vector<Features> x(1);
  x[0].dense = {3e38f};
  absl::StatusOr<Predictions> p = store.Predict("m", Views(x), 0, kRemember);
  ASSERT_TRUE(p.ok());
  const std::vector<Example> batch = {ById(p->prediction_ids[0], 1)};
  UpdateOptions overflow;
  overflow.learning_rate = 1e30f;
  absl::Status s = store.Update("m", Views(batch), overflow).status();
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(store.GetModel("m")->version, 1u);
  // Resolved, then failed while learning: usable again.
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(batch));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 2u);
}

TEST(DelayedLabelsTest, FeaturesWithAnIdAreInvalid) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  absl::StatusOr<Predictions> p =
      store.Predict("m", Views(Instances()), 0, kRemember);
  ASSERT_TRUE(p.ok());
  std::vector<Example> batch = {Dense({1, 2, 3, 4}, 1)};
  batch[0].prediction_id = p->prediction_ids[0];
  EXPECT_TRUE(
      HasCode(store.Update("m", Views(batch)).status(),
              absl::StatusCode::kInvalidArgument,
              "examples[0].features: must be empty with prediction_id"));
  // A label the model rejects is checked before the id is looked up.
  const std::vector<Example> bad_label = {ById(p->prediction_ids[0], 7)};
  EXPECT_TRUE(HasCode(store.Update("m", Views(bad_label)).status(),
                      absl::StatusCode::kInvalidArgument, "examples[0].label"));
  EXPECT_TRUE(store.Update("m", Views({ById(p->prediction_ids[0], 1)})).ok());
}

TEST(DelayedLabelsTest, ConcurrentUpdatesWithOneIdApplyItOnce) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  for (int round = 0; round < 20; ++round) {
    absl::StatusOr<Predictions> p =
        store.Predict("m", Views(Instances()), 0, kRemember);
    ASSERT_TRUE(p.ok());
    const std::vector<Example> batch = {ById(p->prediction_ids[round % 3], 1)};
    std::atomic<int> ok{0}, not_found{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        absl::Status s = store.Update("m", Views(batch)).status();
        if (s.ok()) ok.fetch_add(1);
        if (s.code() == absl::StatusCode::kNotFound) not_found.fetch_add(1);
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(not_found.load(), 3);
  }
  EXPECT_EQ(store.GetModel("m")->version, 21u);
}

TEST(DelayedLabelsTest, DisabledCacheRefusesToRemember) {
  StoreOptions options;
  options.prediction_cache_entries = 0;
  ModelStore store(options);
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  EXPECT_TRUE(
      HasCode(store.Predict("m", Views(Instances()), 0, kRemember).status(),
              absl::StatusCode::kFailedPrecondition, "return_prediction_ids"));
  EXPECT_TRUE(store.Predict("m", Views(Instances())).ok());
}

TEST(DelayedLabelsTest, ExpiredIdIsNotFound) {
  absl::Time now = absl::FromUnixSeconds(1000);
  StoreOptions options;
  options.prediction_ttl = absl::Seconds(30);
  options.prediction_clock = [&now] { return now; };
  ModelStore store(options);
  ASSERT_TRUE(store.CreateModel("m", Logistic()).ok());
  absl::StatusOr<Predictions> p =
      store.Predict("m", Views(Instances()), 0, kRemember);
  ASSERT_TRUE(p.ok());
  now += absl::Seconds(29);
  ASSERT_TRUE(store.Update("m", Views({ById(p->prediction_ids[0], 1)})).ok());
  now += absl::Seconds(1);
  EXPECT_TRUE(HasCode(
      store.Update("m", Views({ById(p->prediction_ids[1], 1)})).status(),
      absl::StatusCode::kNotFound, "examples[0].prediction_id"));
}

// Learner::example_losses: one unweighted loss per example of the last
// Learn(), served outputs used where given.
TEST(DelayedLabelsTest, LearnerKeepsThePerExampleLosses) {
  const ModelSpec spec = Softmax();
  Learner learner(spec);
  std::vector<Example> batch = {Dense({1, 0, 0, 0}, 2, 2.0f),
                                Sparse({1}, {1}, 0, 0.5f),
                                Dense({0, 0, 1, 0}, 1, 1.0f)};
  batch[1].served_outputs = {3.0f, -1.0f, 0.5f};
  uint64_t steps = 0;
  BatchMetrics m;
  ASSERT_TRUE(learner.Learn(Views(batch), 1, 0.3f, &steps, &m));
  ASSERT_EQ(learner.example_losses().size(), 3u);
  // All weights start at zero: the loss of K equal outputs is log K.
  EXPECT_FLOAT_EQ(learner.example_losses()[0], std::log(3.0f));
  EXPECT_FLOAT_EQ(learner.example_losses()[2], std::log(3.0f));
  const float z[] = {3.0f, -1.0f, 0.5f};
  EXPECT_FLOAT_EQ(
      learner.example_losses()[1],
      static_cast<float>(ComputeLoss(spec.type, z, 3, 0, nullptr).loss));
  EXPECT_NEAR(m.loss_sum,
              2.0 * learner.example_losses()[0] +
                  0.5 * learner.example_losses()[1] +
                  1.0 * learner.example_losses()[2],
              1e-5);
  // The next call replaces them.
  ASSERT_TRUE(learner.Learn(Views(std::vector<Example>{batch[0]}), 1, 0.3f,
                            &steps, &m));
  EXPECT_EQ(learner.example_losses().size(), 1u);
  EXPECT_LT(learner.example_losses()[0], std::log(3.0f));  // it learned
}

}  // namespace
}  // namespace lepton
