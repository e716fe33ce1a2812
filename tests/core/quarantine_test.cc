// The QUARANTINE guardrail: an update that would raise the validation loss
// is held back (accepted, not learned) and checked again once newer holdout
// examples have arrived: dropped if it still fails (a poisoned batch),
// learned if the fresh validation data now agrees with it (the distribution
// changed). The held updates are model state: a restart from checkpoint and
// log, an export, and an idempotent retry all see them exactly.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/learning/model_spec.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton {
namespace {

// Holdout capacity = recheck_holdout = 100: a held update's second check
// runs on a validation set made wholly of examples that came after it.
ModelSpec QuarantineSpec(
    GuardrailPolicy policy = GuardrailPolicy::kQuarantine) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 4;
  spec.guardrail.policy = policy;
  spec.guardrail.min_holdout = 20;
  spec.guardrail.holdout_capacity = 100;
  spec.guardrail.recheck_holdout = 100;
  return spec;
}

std::vector<float> Weights(const ModelStore& store) {
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
      store.AcquireVersion("m", 0);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? AllWeights(**v) : std::vector<float>{};
}

// A model that learned rule A from 2,000 examples, with 100 holdout
// examples of it.
void Train(ModelStore& store, const ModelSpec& spec) {
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(100, 1))).ok());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<UpdateResult> r =
        store.Update("m", Views(RuleExamples(200, 10 + i)));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->quarantined) << "good update " << i;
  }
}

class EventLog {
 public:
  explicit EventLog(const ModelStore& store) {
    absl::StatusOr<std::unique_ptr<EventSubscription>> s =
        store.Watch("m", [this](const ModelEvent& e) {
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back(e);
        });
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) subscription_ = *std::move(s);
  }
  std::vector<ModelEvent> Of(ModelEvent::Kind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ModelEvent> out;
    for (const ModelEvent& e : events_) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<ModelEvent> events_;
  std::unique_ptr<EventSubscription> subscription_;
};

TEST(QuarantineTest, APoisonedUpdateIsHeldBackThenDropped) {
  ModelStore store, twin;
  Train(store, QuarantineSpec());
  Train(twin, QuarantineSpec());
  EventLog events(store);
  const ModelInfo before = *store.GetModel("m");
  const std::vector<float> weights = Weights(store);

  // Every label flipped: held back, not refused, and nothing learned.
  absl::StatusOr<UpdateResult> held =
      store.Update("m", Views(RuleExamples(500, 50, /*flip=*/true)));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->quarantined);
  EXPECT_EQ(held->version, before.version + 1);
  EXPECT_GT(held->loss_before, 1.0);  // the flipped labels, scored
  ModelInfo info = *store.GetModel("m");
  EXPECT_EQ(info.version, before.version + 1);
  EXPECT_EQ(info.counters.examples_seen, before.counters.examples_seen);
  EXPECT_EQ(info.counters.loss_sum, before.counters.loss_sum);
  EXPECT_EQ(info.adaptation.quarantine_held, 1);
  EXPECT_EQ(info.adaptation.quarantined_updates, 1u);
  EXPECT_EQ(info.adaptation.refused_updates, 0u);
  EXPECT_TRUE(BitEqual(Weights(store), weights));
  ASSERT_EQ(events.Of(ModelEvent::Kind::kUpdateQuarantined).size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      events.Of(ModelEvent::Kind::kUpdateQuarantined)[0].detail,
      "validation loss"));

  // 99 newer holdout examples: not yet due.
  ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(99, 70))).ok());
  ASSERT_TRUE(twin.Update("m", AsHoldout(RuleExamples(99, 70))).ok());
  EXPECT_EQ(store.GetModel("m")->adaptation.quarantine_held, 1);

  // The 100th, with a good batch: the second check runs on rule-A data
  // again, fails, and the held update is dropped; the good batch is learned.
  std::vector<Example> mixed = RuleExamples(1, 71);
  for (Example& e : RuleExamples(200, 72)) mixed.push_back(std::move(e));
  std::vector<ExampleView> views = Views(mixed);
  views[0].holdout = true;
  absl::StatusOr<UpdateResult> next = store.Update("m", views);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(twin.Update("m", views).ok());
  EXPECT_FALSE(next->quarantined);
  EXPECT_EQ(next->quarantine_dropped, 1);
  EXPECT_EQ(next->quarantine_released, 0);
  info = *store.GetModel("m");
  EXPECT_EQ(info.adaptation.quarantine_held, 0);
  EXPECT_EQ(info.adaptation.quarantine_dropped, 1u);
  EXPECT_EQ(info.adaptation.quarantine_released, 0u);
  ASSERT_EQ(events.Of(ModelEvent::Kind::kQuarantineDropped).size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      events.Of(ModelEvent::Kind::kQuarantineDropped)[0].detail,
      "failed its second check"));
  // Exactly the weights of a model that never saw the poisoned batch.
  EXPECT_TRUE(BitEqual(Weights(store), Weights(twin)));
  EXPECT_EQ(info.counters.steps, twin.GetModel("m")->counters.steps);
  EXPECT_EQ(info.counters.examples_seen,
            twin.GetModel("m")->counters.examples_seen);
}

TEST(QuarantineTest, AnUpdateTheFreshHoldoutConfirmsIsLearned) {
  // The concept flips: the first update of the new concept looks poisoned
  // to a holdout set of the old one. REJECT throws it away; QUARANTINE holds
  // it and learns it once the holdout set shows the new concept.
  ModelStore store, rejecting;
  Train(store, QuarantineSpec());
  Train(rejecting, QuarantineSpec(GuardrailPolicy::kReject));
  EventLog events(store);
  const std::vector<Example> changed = RuleExamples(300, 80, /*flip=*/true);
  absl::StatusOr<UpdateResult> held = store.Update("m", Views(changed));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(held->quarantined);
  EXPECT_EQ(rejecting.Update("m", Views(changed)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const ModelInfo before = *store.GetModel("m");
  const std::vector<float> weights = Weights(store);

  // 100 holdout examples of the new concept replace the old ones.
  const std::vector<Example> fresh = RuleExamples(100, 81, /*flip=*/true);
  absl::StatusOr<UpdateResult> checked = store.Update("m", AsHoldout(fresh));
  ASSERT_TRUE(checked.ok()) << checked.status();
  ASSERT_TRUE(rejecting.Update("m", AsHoldout(fresh)).ok());
  EXPECT_EQ(checked->quarantine_released, 1);
  EXPECT_EQ(checked->quarantine_dropped, 0);
  const ModelInfo after = *store.GetModel("m");
  EXPECT_EQ(after.adaptation.quarantine_held, 0);
  EXPECT_EQ(after.adaptation.quarantine_released, 1u);
  // Learned now: its 300 examples count, and the weights moved towards the
  // new concept.
  EXPECT_EQ(after.counters.examples_seen, before.counters.examples_seen + 300);
  EXPECT_GT(after.counters.loss_sum, before.counters.loss_sum);
  EXPECT_FALSE(BitEqual(Weights(store), weights));
  EXPECT_EQ(after.counters.examples_seen,
            rejecting.GetModel("m")->counters.examples_seen + 300);
  EXPECT_LT(after.adaptation.validation_loss,
            rejecting.GetModel("m")->adaptation.validation_loss);
  ASSERT_EQ(events.Of(ModelEvent::Kind::kQuarantineReleased).size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      events.Of(ModelEvent::Kind::kQuarantineReleased)[0].detail,
      "passed its second check"));
}

TEST(QuarantineTest, BeyondCapacityTheOldestIsDropped) {
  ModelSpec spec = QuarantineSpec();
  spec.guardrail.quarantine_capacity = 2;
  ModelStore store;
  Train(store, spec);
  EventLog events(store);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<UpdateResult> r =
        store.Update("m", Views(RuleExamples(500, 90 + i, /*flip=*/true)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->quarantined);
  }
  const ModelInfo info = *store.GetModel("m");
  EXPECT_EQ(info.adaptation.quarantine_held, 2);
  EXPECT_EQ(info.adaptation.quarantined_updates, 3u);
  EXPECT_EQ(info.adaptation.quarantine_dropped, 1u);
  ASSERT_EQ(events.Of(ModelEvent::Kind::kQuarantineDropped).size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      events.Of(ModelEvent::Kind::kQuarantineDropped)[0].detail, "displaced"));
}

TEST(QuarantineTest, SpecLimitsAreChecked) {
  ModelSpec spec = QuarantineSpec();
  spec.guardrail.quarantine_capacity = 0;
  EXPECT_TRUE(
      IsInvalid(ValidateModelSpec(spec), "spec.guardrail.quarantine_capacity"));
  spec = QuarantineSpec();
  spec.guardrail.recheck_holdout = 0;
  EXPECT_TRUE(
      IsInvalid(ValidateModelSpec(spec), "spec.guardrail.recheck_holdout"));
}

// A held update of delayed labels keeps the outputs served for them (3
// classes); AddClasses pads them like cached predictions, so the held
// update still exports, imports and gets its second check on 4 classes.
TEST(QuarantineTest, HeldDelayedLabelsFollowAddedClasses) {
  ModelSpec spec = QuarantineSpec();
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_classes = 3;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  ASSERT_TRUE(store.Update("m", AsHoldout(RuleExamples(100, 1))).ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store.Update("m", Views(RuleExamples(200, 10 + i))).ok());
  }
  const std::vector<Example> served = RuleExamples(300, 110);
  std::vector<FeaturesView> instances;
  for (const Example& e : served) instances.push_back(e.features.view());
  absl::StatusOr<Predictions> p =
      store.Predict("m", instances, 0, PredictOptions{.remember = true});
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<ExampleView> labels(served.size());
  for (size_t i = 0; i < served.size(); ++i) {
    labels[i].prediction_id = p->prediction_ids[i];
    labels[i].label = 2;  // a class the rule never uses: poisoned
  }
  absl::StatusOr<UpdateResult> held = store.Update("m", labels);
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(held->quarantined);

  ASSERT_TRUE(store.AddClasses("m", 4).ok());
  absl::StatusOr<std::string> blob = store.ExportModel("m", 0);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ModelStore imported;
  ASSERT_TRUE(imported.ImportModel("m", *blob).ok());
  EXPECT_EQ(imported.GetModel("m")->adaptation.quarantine_held, 1);
  for (ModelStore* s : {&store, &imported}) {
    absl::StatusOr<UpdateResult> r =
        s->Update("m", AsHoldout(RuleExamples(100, 111)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->quarantine_dropped, 1);
  }
  EXPECT_TRUE(BitEqual(Weights(store), Weights(imported)));
}

class QuarantineRestartTest : public testing::ScratchDirTest {};

// Two held updates, one in the checkpoint and one only in the log, then the
// new concept's holdout: a store that restarted in between and one that
// never did release the same updates and end bit-identical.
TEST_F(QuarantineRestartTest, HeldUpdatesSurviveARestartAndAnExportExactly) {
  const std::vector<Example> first = RuleExamples(300, 100, /*flip=*/true);
  const std::vector<Example> second = RuleExamples(300, 101, /*flip=*/true);
  const std::vector<Example> fresh = RuleExamples(100, 102, /*flip=*/true);
  ModelStore twin;
  Train(twin, QuarantineSpec());
  ASSERT_TRUE(twin.Update("m", Views(first), {}, "first")->quarantined);
  ASSERT_TRUE(twin.Update("m", Views(second), {}, "second")->quarantined);

  StoreOptions options;
  options.data_dir = root_;
  std::string exported;
  {
    RecoveryReport report;
    absl::StatusOr<std::unique_ptr<ModelStore>> store =
        ModelStore::Open(options, &report);
    ASSERT_TRUE(store.ok()) << store.status();
    Train(**store, QuarantineSpec());
    ASSERT_TRUE((*store)->Update("m", Views(first), {}, "first")->quarantined);
    ASSERT_TRUE((*store)->Checkpoint(/*force=*/true).ok());
    ASSERT_TRUE(
        (*store)->Update("m", Views(second), {}, "second")->quarantined);
    absl::StatusOr<std::string> blob = (*store)->ExportModel("m", 0);
    ASSERT_TRUE(blob.ok()) << blob.status();
    exported = *blob;
    // No Close(): the second held update is in the log only.
  }
  RecoveryReport report;
  absl::StatusOr<std::unique_ptr<ModelStore>> store =
      ModelStore::Open(options, &report);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(report.failed.size(), 0u);
  ModelStore imported;
  ASSERT_TRUE(imported.ImportModel("m", exported).ok());
  for (ModelStore* s : {store->get(), &imported}) {
    const ModelInfo info = *s->GetModel("m");
    EXPECT_EQ(info.adaptation.quarantine_held, 2);
    EXPECT_EQ(info.version, twin.GetModel("m")->version);
  }
  // A retry of a held update says so, from the checkpoint's memory of it.
  absl::StatusOr<UpdateResult> retry =
      (*store)->Update("m", Views(first), {}, "first");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->quarantined);
  EXPECT_EQ(retry->version, twin.GetModel("m")->version - 1);

  for (ModelStore* s : {store->get(), &imported, &twin}) {
    absl::StatusOr<UpdateResult> r = s->Update("m", AsHoldout(fresh));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->quarantine_released, 2);
  }
  const std::vector<float> want = Weights(twin);
  EXPECT_TRUE(BitEqual(Weights(**store), want));
  EXPECT_TRUE(BitEqual(Weights(imported), want));
  EXPECT_EQ((*store)->GetModel("m")->counters.loss_sum,
            twin.GetModel("m")->counters.loss_sum);
}

}  // namespace
}  // namespace lepton
