// The holdout set, the guardrail, and the adaptation state's persistence:
// holdout examples are kept and never trained on; a poisoned update is
// refused whole; drift, challenger and holdout state survive a restart and
// an export, and the model then continues bit-identically.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/learning/model_spec.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "tests/core/concept_stream.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton {
namespace {

ModelSpec LogisticSpec() {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 4;
  return spec;
}

std::vector<float> Scores(ModelStore& store, const std::string& name) {
  const std::vector<Example> probe = RuleExamples(50, 99);
  std::vector<FeaturesView> instances;
  for (const Example& e : probe) instances.push_back(e.features.view());
  absl::StatusOr<Predictions> p = store.Predict(name, instances);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? p->scores : std::vector<float>{};
}

TEST(HoldoutTest, HoldoutExamplesAreKeptAndNeverTrainedOn) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", LogisticSpec()).ok());
  const std::vector<Example> holdout = RuleExamples(30, 1);
  absl::StatusOr<UpdateResult> r = store.Update("m", AsHoldout(holdout));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 2u);
  absl::StatusOr<ModelInfo> info = store.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->adaptation.holdout_examples, 30);
  EXPECT_EQ(info->counters.examples_seen, 0u);
  // Untrained weights are all zero: every probability is 1/2.
  for (float s : Scores(store, "m")) EXPECT_EQ(s, 0.5f);
  EXPECT_NEAR(info->adaptation.validation_loss, std::log(2.0), 1e-6);

  // Mixed: only the others are learned, and the holdout set is rescored.
  std::vector<Example> mixed = RuleExamples(200, 2);
  std::vector<ExampleView> views = Views(mixed);
  for (int i = 0; i < 20; ++i) views[i].holdout = true;
  ASSERT_TRUE(store.Update("m", views).ok());
  info = store.GetModel("m");
  EXPECT_EQ(info->adaptation.holdout_examples, 50);
  EXPECT_EQ(info->counters.examples_seen, 180u);
  EXPECT_LT(info->adaptation.validation_loss, std::log(2.0));
  EXPECT_GT(info->adaptation.validation_accuracy, 0.7);
}

TEST(HoldoutTest, KeepsTheNewestUpToCapacity) {
  ModelSpec spec = LogisticSpec();
  spec.guardrail.holdout_capacity = 10;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(7, i))).ok());
  }
  EXPECT_EQ(store.GetModel("m")->adaptation.holdout_examples, 10);
}

TEST(HoldoutTest, RefusedByAModelThatKeepsNone) {
  ModelSpec spec = LogisticSpec();
  spec.guardrail.holdout_capacity = 0;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  EXPECT_TRUE(IsInvalid(
      store.Update("m", AsHoldout(RuleExamples(3, 1))).status(), "examples"));
  EXPECT_EQ(store.GetModel("m")->version, 1u);
}

ModelSpec GuardedSpec(ModelSpec spec) {
  spec.guardrail.policy = GuardrailPolicy::kReject;
  spec.guardrail.min_holdout = 20;
  return spec;
}

TEST(GuardrailTest, RefusesAnUpdateWithEveryLabelFlipped) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", GuardedSpec(LogisticSpec())).ok());
  ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(200, 1))).ok());
  for (int i = 0; i < 10; ++i) {
    const std::vector<Example> good = RuleExamples(200, 10 + i);
    absl::StatusOr<UpdateResult> r = store.Update("m", Views(good));
    ASSERT_TRUE(r.ok()) << "good update " << i << ": " << r.status();
  }
  const ModelInfo before = *store.GetModel("m");
  const std::vector<float> scores = Scores(store, "m");

  const std::vector<Example> poisoned = RuleExamples(500, 50, /*flip=*/true);
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(poisoned));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "validation loss"))
      << r.status();
  const ModelInfo after = *store.GetModel("m");
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(after.counters.examples_seen, before.counters.examples_seen);
  EXPECT_EQ(after.adaptation.refused_updates, 1u);
  EXPECT_TRUE(BitEqual(Scores(store, "m"), scores));

  // Good updates still go through, from where the model was.
  EXPECT_TRUE(store.Update("m", Views(RuleExamples(200, 60))).ok());
}

TEST(GuardrailTest, RefusesAnAbsurdRegressionLabel) {
  ModelSpec spec;
  spec.type = ModelType::kLinearRegression;
  spec.num_features = 4;
  spec.optimizer.kind = OptimizerKind::kSgd;
  spec.optimizer.learning_rate = 0.05f;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", GuardedSpec(spec)).ok());
  // y = x0 + x1, learned, with a holdout set of the same rule.
  auto regression = [](int n, uint64_t seed) {
    std::vector<Example> out = RuleExamples(n, seed);
    for (Example& e : out) {
      e.label = e.features.dense[0] + e.features.dense[1];
    }
    return out;
  };
  ASSERT_TRUE(store.Update("m", AsHoldout(regression(100, 1))).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store.Update("m", Views(regression(200, 10 + i))).ok());
  }
  const std::vector<float> scores = Scores(store, "m");
  const uint64_t version = store.GetModel("m")->version;
  std::vector<Example> absurd = regression(16, 70);
  absurd[3].label = 1e30f;
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(absurd));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
      << r.status();
  EXPECT_EQ(store.GetModel("m")->version, version);
  EXPECT_TRUE(BitEqual(Scores(store, "m"), scores));
}

TEST(GuardrailTest, OffKeepsScoringButNeverRefuses) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", LogisticSpec()).ok());
  ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(200, 1))).ok());
  ASSERT_TRUE(store.Update("m", Views(RuleExamples(2000, 2))).ok());
  const double trained = store.GetModel("m")->adaptation.validation_loss;
  ASSERT_TRUE(
      store.Update("m", Views(RuleExamples(2000, 3, /*flip=*/true))).ok());
  EXPECT_GT(store.GetModel("m")->adaptation.validation_loss, trained);
}

// A model whose drift policy is under way (a challenger learning, the
// detector mid-window) and that holds a holdout set.
ModelSpec ChallengerSpec() {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 20;
  spec.drift.detector.kind = DriftDetectorKind::kPageHinkley;
  spec.drift.policy = DriftPolicy::kChallenger;
  spec.drift.challenger_window = 5000;
  return spec;
}

std::vector<std::vector<Example>> DriftingBatches() {
  ConceptStream::Options o;
  o.change = ConceptStream::Change::kAbrupt;
  o.change_at = 20000;
  ConceptStream stream(o);
  std::vector<std::vector<Example>> batches;
  for (int i = 0; i < 300; ++i) batches.push_back(stream.Batch(100));
  return batches;
}

void Feed(ModelStore& store, const std::vector<std::vector<Example>>& batches,
          size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    std::vector<ExampleView> views = Views(batches[i]);
    if (i % 10 == 0) views[0].holdout = true;
    absl::StatusOr<UpdateResult> r = store.Update("m", views);
    ASSERT_TRUE(r.ok()) << "batch " << i << ": " << r.status();
  }
}

class AdaptationRestartTest : public testing::ScratchDirTest {};

TEST_F(AdaptationRestartTest, ChallengerAndHoldoutSurviveARestartExactly) {
  const std::vector<std::vector<Example>> batches = DriftingBatches();
  // The twin never restarts.
  ModelStore twin;
  ASSERT_TRUE(twin.CreateModel("m", ChallengerSpec()).ok());
  Feed(twin, batches, 0, 210);

  StoreOptions options;
  options.data_dir = root_;
  options.checkpoint_every_updates = 50;  // a checkpoint and a log tail
  {
    RecoveryReport report;
    absl::StatusOr<std::unique_ptr<ModelStore>> store =
        ModelStore::Open(options, &report);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateModel("m", ChallengerSpec()).ok());
    Feed(**store, batches, 0, 210);
    const ModelInfo info = *(*store)->GetModel("m");
    ASSERT_GE(info.adaptation.drifts, 1u);
    ASSERT_TRUE(info.adaptation.challenger_active)
        << "the scenario needs a challenger under way at the restart";
    // No Close(): the newest state is in the log, not in a final checkpoint.
    (*store)->Checkpoint(/*force=*/false).IgnoreError();
  }
  RecoveryReport report;
  absl::StatusOr<std::unique_ptr<ModelStore>> store =
      ModelStore::Open(options, &report);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(report.failed.size(), 0u);
  const ModelInfo a = *(*store)->GetModel("m");
  const ModelInfo b = *twin.GetModel("m");
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.adaptation.drifts, b.adaptation.drifts);
  EXPECT_EQ(a.adaptation.challenger_examples, b.adaptation.challenger_examples);
  EXPECT_EQ(a.adaptation.holdout_examples, b.adaptation.holdout_examples);
  EXPECT_EQ(a.adaptation.validation_loss, b.adaptation.validation_loss);
  EXPECT_EQ(a.adaptation.mean_loss_after, b.adaptation.mean_loss_after);

  // Both continue: the challenger gets promoted in both, identically.
  Feed(**store, batches, 210, 300);
  Feed(twin, batches, 210, 300);
  const ModelInfo c = *(*store)->GetModel("m");
  const ModelInfo d = *twin.GetModel("m");
  EXPECT_GE(d.adaptation.promotions, 1u);
  EXPECT_EQ(c.adaptation.promotions, d.adaptation.promotions);
  EXPECT_EQ(c.adaptation.drifts, d.adaptation.drifts);
  EXPECT_EQ(c.counters.loss_sum, d.counters.loss_sum);
  EXPECT_TRUE(BitEqual(AllWeights(**(*store)->AcquireVersion("m")),
                       AllWeights(**twin.AcquireVersion("m"))));
}

TEST(AdaptationExportTest, AnExportCarriesTheAdaptationState) {
  const std::vector<std::vector<Example>> batches = DriftingBatches();
  ModelStore source;
  ASSERT_TRUE(source.CreateModel("m", ChallengerSpec()).ok());
  Feed(source, batches, 0, 210);
  absl::StatusOr<std::string> blob = source.ExportModel("m", 0);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ModelStore target;
  ASSERT_TRUE(target.ImportModel("m", *blob).ok());
  Feed(source, batches, 210, 300);
  Feed(target, batches, 210, 300);
  const ModelInfo a = *source.GetModel("m");
  const ModelInfo b = *target.GetModel("m");
  EXPECT_GT(a.adaptation.holdout_examples, 0);
  EXPECT_EQ(a.adaptation.holdout_examples, b.adaptation.holdout_examples);
  EXPECT_GE(a.adaptation.promotions, 1u);
  EXPECT_EQ(a.adaptation.promotions, b.adaptation.promotions);
  EXPECT_TRUE(BitEqual(AllWeights(**source.AcquireVersion("m")),
                       AllWeights(**target.AcquireVersion("m"))));
}

}  // namespace
}  // namespace lepton
