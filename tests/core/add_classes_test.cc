// Adding classes to a softmax model (Model::AddClasses, ModelStore::
// AddClasses): what is kept bit for bit, how the new classes start per
// optimizer, versions, pinned older versions, labels, errors, rollback,
// restart from a data directory, determinism, delayed labels served before
// the change, the challenger and the events, and a learning check on a
// stream where a fourth class appears.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/adaptation/model_events.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/storage/model_state.h"
#include "core/store/model_store.h"
#include "core/store/prediction_cache.h"
#include "core/util/mutex.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton {
namespace {

constexpr int64_t kD = 6;

ModelSpec Softmax(OptimizerKind kind, int32_t k = 3) {
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = kD;
  spec.num_classes = k;
  spec.optimizer.kind = kind;
  spec.optimizer.learning_rate = 0.1f;
  spec.optimizer.initial_accumulator = 0.25f;  // AdaGrad only
  spec.minibatch_size = 2;
  return spec;
}

// `n` examples, dense and sparse mixed, labels in [0, k) from a fixed rule.
std::vector<Example> MakeExamples(int n, int32_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> x(kD);
    for (float& v : x) v = value(rng);
    float best = -1e9f;
    int label = 0;
    for (int c = 0; c < k; ++c) {
      const float s = x[c % kD] - 0.5f * x[(c + 2) % kD];
      if (s > best) best = s, label = c;
    }
    if (i % 3 == 2) {
      out.push_back(Sparse({static_cast<uint32_t>(i % (kD - 1)), kD - 1},
                           {x[0], x[1]}, static_cast<float>(label)));
    } else {
      out.push_back(Dense(x, static_cast<float>(label)));
    }
  }
  return out;
}

ModelState StateOf(const ModelStore& store, absl::string_view name,
                   uint64_t version = 0) {
  absl::StatusOr<std::string> blob = store.ExportModel(name, version);
  EXPECT_TRUE(blob.ok()) << blob.status();
  absl::StatusOr<ModelState> state = DecodeModelState(*blob);
  EXPECT_TRUE(state.ok()) << state.status();
  return *state;
}

void Train(ModelStore& store, absl::string_view name,
           const std::vector<Example>& examples, size_t batch = 5) {
  for (size_t i = 0; i < examples.size(); i += batch) {
    const size_t n = std::min(batch, examples.size() - i);
    std::vector<Example> part(examples.begin() + i, examples.begin() + i + n);
    absl::StatusOr<UpdateResult> r = store.Update(name, Views(part));
    ASSERT_TRUE(r.ok()) << r.status();
  }
}

::testing::AssertionResult HasCode(const absl::Status& s, absl::StatusCode code,
                                   absl::string_view prefix) {
  if (s.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << absl::StatusCodeToString(code) << ", got " << s;
  }
  if (!absl::StartsWith(s.message(), prefix)) {
    return ::testing::AssertionFailure()
           << "message \"" << s.message() << "\" does not start with \""
           << prefix << "\"";
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------- What is kept, what is new

class AddClassesOptimizerTest : public ::testing::TestWithParam<OptimizerKind> {
};

TEST_P(AddClassesOptimizerTest, KeepsEveryOldValueAndStartsNewClassesFresh) {
  const ModelSpec spec = Softmax(GetParam());
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  Train(store, "m", MakeExamples(60, 3, 1));
  const ModelState before = StateOf(store, "m");

  absl::StatusOr<ModelInfo> info = store.AddClasses("m", 5);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, before.version + 1);
  EXPECT_EQ(info->spec.num_classes, 5);
  EXPECT_EQ(info->counters.examples_seen, before.counters.examples_seen);
  EXPECT_EQ(info->counters.loss_sum, before.counters.loss_sum);
  EXPECT_EQ(info->counters.steps, before.counters.steps);

  const ModelState after = StateOf(store, "m");
  EXPECT_EQ(after.version, before.version + 1);
  EXPECT_EQ(after.spec.num_classes, 5);
  const int64_t rows = kD + 1;
  const int32_t arrays = ParamArrays(spec);
  ASSERT_EQ(before.params.size(), static_cast<size_t>(arrays * rows * 3));
  ASSERT_EQ(after.params.size(), static_cast<size_t>(arrays * rows * 5));
  // The initial value of each array for a new class.
  std::vector<float> initial(arrays, 0.0f);
  if (GetParam() == OptimizerKind::kAdagrad) initial[1] = 0.25f;
  std::vector<float> old_part, kept_part;
  int nonzero_old = 0;
  for (int32_t a = 0; a < arrays; ++a) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int32_t k = 0; k < 5; ++k) {
        const float v = after.params[(a * rows + r) * 5 + k];
        if (k < 3) {
          old_part.push_back(before.params[(a * rows + r) * 3 + k]);
          kept_part.push_back(v);
          nonzero_old += before.params[(a * rows + r) * 3 + k] != 0;
        } else {
          EXPECT_EQ(v, initial[a])
              << "array " << a << " row " << r << " class " << k;
        }
      }
    }
  }
  EXPECT_TRUE(BitEqual(old_part, kept_part));
  EXPECT_GT(nonzero_old, 0);  // the comparison is not of zeros only
}

INSTANTIATE_TEST_SUITE_P(Optimizers, AddClassesOptimizerTest,
                         ::testing::Values(OptimizerKind::kSgd,
                                           OptimizerKind::kAdagrad,
                                           OptimizerKind::kFtrl,
                                           OptimizerKind::kAdam));

TEST(AddClassesTest, PinnedOlderVersionKeepsItsClasses) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kAdagrad)).ok());
  Train(store, "m", MakeExamples(40, 3, 2));
  const uint64_t old_version = store.GetModel("m")->version;
  ASSERT_TRUE(store.AddClasses("m", 5).ok());

  Features x;
  x.dense = {0.3f, -0.2f, 0.9f, 0.1f, -0.7f, 0.4f};
  const std::vector<FeaturesView> instances = {x.view()};
  absl::StatusOr<Predictions> old_p =
      store.Predict("m", instances, old_version);
  absl::StatusOr<Predictions> new_p = store.Predict("m", instances);
  ASSERT_TRUE(old_p.ok()) << old_p.status();
  ASSERT_TRUE(new_p.ok()) << new_p.status();
  EXPECT_EQ(old_p->version, old_version);
  EXPECT_EQ(old_p->num_outputs, 3);
  EXPECT_EQ(old_p->scores.size(), 3u);
  EXPECT_EQ(new_p->version, old_version + 1);
  EXPECT_EQ(new_p->num_outputs, 5);
  ASSERT_EQ(new_p->scores.size(), 5u);
  // The new classes' logits are 0; the old classes' probabilities change only
  // through the normalization.
  EXPECT_EQ(new_p->scores[3], new_p->scores[4]);
  const float old_mass = new_p->scores[0] + new_p->scores[1] + new_p->scores[2];
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(new_p->scores[k] / old_mass, old_p->scores[k], 1e-6) << k;
  }
  EXPECT_EQ(old_p->labels[0],
            std::max_element(new_p->scores.begin(), new_p->scores.begin() + 3) -
                new_p->scores.begin());
  // The model's description follows the newest version.
  EXPECT_EQ(store.GetModel("m")->spec.num_classes, 5);
}

TEST(AddClassesTest, NewLabelsAreUsableOnlyAfterTheCall) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kSgd)).ok());
  const std::vector<Example> fourth = {Dense({0, 0, 0, 1, 1, 0}, 0),
                                       Dense({1, 0, 0, 0, 0, 1}, 3)};
  EXPECT_TRUE(IsInvalid(store.Update("m", Views(fourth)).status(),
                        "examples[1].label"));
  EXPECT_EQ(store.GetModel("m")->version, 1u);  // nothing applied
  ASSERT_TRUE(store.AddClasses("m", 4).ok());
  absl::StatusOr<UpdateResult> r = store.Update("m", Views(fourth));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 3u);
  // Learning moved the new class's weights off zero.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
      store.AcquireVersion("m");
  ASSERT_TRUE(v.ok());
  EXPECT_NE((*v)->weight(0, 3), 0.0f);
  EXPECT_NE((*v)->weight(kD, 3), 0.0f);  // the bias
  const std::vector<Example> beyond = {Dense({1, 0, 0, 0, 0, 1}, 4)};
  EXPECT_TRUE(IsInvalid(store.Update("m", Views(beyond)).status(),
                        "examples[0].label"));
}

TEST(AddClassesTest, Errors) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kSgd)).ok());
  ModelSpec logistic;
  logistic.type = ModelType::kLogisticRegression;
  logistic.num_features = kD;
  ASSERT_TRUE(store.CreateModel("bin", logistic).ok());

  EXPECT_TRUE(HasCode(store.AddClasses("nope", 4).status(),
                      absl::StatusCode::kNotFound, ""));
  EXPECT_TRUE(HasCode(store.AddClasses("bin", 4).status(),
                      absl::StatusCode::kFailedPrecondition, "num_classes: "));
  EXPECT_TRUE(IsInvalid(store.AddClasses("m", 2).status(), "num_classes: "));
  EXPECT_TRUE(IsInvalid(store.AddClasses("m", -1).status(), "num_classes: "));
  EXPECT_TRUE(IsInvalid(store.AddClasses("m", kMaxClasses + 1).status(),
                        "num_classes: "));
  // Equal: a no-op (a retry), same version.
  absl::StatusOr<ModelInfo> same = store.AddClasses("m", 3);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->version, 1u);
  EXPECT_EQ(same->spec.num_classes, 3);
  // A retry of a successful call changes nothing either.
  ASSERT_TRUE(store.AddClasses("m", 4).ok());
  absl::StatusOr<ModelInfo> retry = store.AddClasses("m", 4);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->version, 2u);

  // (num_features + 1) * num_classes beyond the parameter limit.
  ModelSpec wide = Softmax(OptimizerKind::kSgd, 2);
  wide.num_features = int64_t{1} << 20;
  ASSERT_TRUE(store.CreateModel("wide", wide).ok());
  EXPECT_TRUE(
      IsInvalid(store.AddClasses("wide", 300).status(), "num_classes: "));
  EXPECT_EQ(store.GetModel("wide")->spec.num_classes, 2);
}

TEST(AddClassesTest, RollbackAcrossTheChangeIsRefused) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kAdagrad)).ok());
  Train(store, "m", MakeExamples(20, 3, 3));
  const uint64_t before = store.GetModel("m")->version;
  ASSERT_TRUE(store.AddClasses("m", 4).ok());
  Train(store, "m", MakeExamples(20, 4, 4));
  const uint64_t grown = before + 1;

  const absl::Status refused = store.Rollback("m", before).status();
  EXPECT_TRUE(
      HasCode(refused, absl::StatusCode::kFailedPrecondition, "version: "));
  EXPECT_TRUE(absl::StrContains(refused.message(), "cannot remove classes"))
      << refused;
  // Within the grown versions a rollback works as usual.
  const ModelState target = StateOf(store, "m", grown);
  absl::StatusOr<ModelInfo> back = store.Rollback("m", grown);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->spec.num_classes, 4);
  EXPECT_TRUE(BitEqual(StateOf(store, "m").params, target.params));
}

TEST(AddClassesTest, Deterministic) {
  const std::vector<Example> first = MakeExamples(50, 3, 5);
  const std::vector<Example> second = MakeExamples(50, 5, 6);
  std::vector<std::vector<float>> params;
  for (int run = 0; run < 2; ++run) {
    ModelStore store;
    ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kAdam)).ok());
    Train(store, "m", first);
    ASSERT_TRUE(store.AddClasses("m", 5).ok());
    Train(store, "m", second);
    params.push_back(StateOf(store, "m").params);
  }
  EXPECT_TRUE(BitEqual(params[0], params[1]));
}

// ---------------------------------------------- Durability

class AddClassesDurabilityTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    testing::ScratchDirTest::SetUp();
    dir_ = Path("data");
  }

  std::unique_ptr<ModelStore> Open(const std::string& dir) {
    StoreOptions options;
    options.data_dir = dir;
    RecoveryReport report;
    absl::StatusOr<std::unique_ptr<ModelStore>> store =
        ModelStore::Open(options, &report);
    EXPECT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE(report.failed.empty());
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
};

TEST_F(AddClassesDurabilityTest, RestartGivesTheGrownModelBitForBit) {
  const ModelSpec spec = Softmax(OptimizerKind::kFtrl);
  const std::vector<Example> first = MakeExamples(40, 3, 7);
  const std::vector<Example> second = MakeExamples(30, 4, 8);
  ModelStore twin;  // memory only: the same calls
  ASSERT_TRUE(twin.CreateModel("m", spec).ok());
  Train(twin, "m", first);
  ASSERT_TRUE(twin.AddClasses("m", 4).ok());
  const ModelState twin_grown = StateOf(twin, "m");
  Train(twin, "m", second);
  const ModelState twin_final = StateOf(twin, "m");

  // Copies of the data directory taken while the store runs (as a crash
  // would leave it): right after AddClasses, and after later updates, which
  // are then in the log only (no checkpoint is due).
  const std::string at_grown = Path("grown");
  const std::string at_final = Path("final");
  {
    std::unique_ptr<ModelStore> store = Open(dir_);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    Train(*store, "m", first);
    ASSERT_TRUE(store->AddClasses("m", 4).ok());
    std::filesystem::copy(dir_, at_grown,
                          std::filesystem::copy_options::recursive);
    Train(*store, "m", second);
    std::filesystem::copy(dir_, at_final,
                          std::filesystem::copy_options::recursive);
  }
  for (const auto& [dir, expected] :
       {std::pair{at_grown, twin_grown}, std::pair{at_final, twin_final}}) {
    SCOPED_TRACE(dir);
    std::unique_ptr<ModelStore> store = Open(dir);
    ASSERT_NE(store, nullptr);
    const ModelState recovered = StateOf(*store, "m");
    EXPECT_EQ(recovered.version, expected.version);
    EXPECT_EQ(recovered.spec.num_classes, 4);
    EXPECT_EQ(recovered.counters.examples_seen,
              expected.counters.examples_seen);
    EXPECT_EQ(recovered.counters.loss_sum, expected.counters.loss_sum);
    EXPECT_TRUE(BitEqual(recovered.params, expected.params));
    // The refusal holds after a restart too: the older checkpoints have 3
    // classes.
    const ModelInfo info = *store->GetModel("m");
    ASSERT_FALSE(info.checkpointed_versions.empty());
    ASSERT_LT(info.checkpointed_versions.front(), twin_grown.version);
    EXPECT_TRUE(HasCode(
        store->Rollback("m", info.checkpointed_versions.front()).status(),
        absl::StatusCode::kFailedPrecondition, "version: "));
  }
}

TEST_F(AddClassesDurabilityTest, ExportCarriesTheNewClasses) {
  std::unique_ptr<ModelStore> store = Open(dir_);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", Softmax(OptimizerKind::kSgd)).ok());
  Train(*store, "m", MakeExamples(20, 3, 9));
  ASSERT_TRUE(store->AddClasses("m", 6).ok());
  absl::StatusOr<std::string> blob = store->ExportModel("m", 0);
  ASSERT_TRUE(blob.ok());
  absl::StatusOr<ModelInfo> imported = store->ImportModel("copy", *blob);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->spec.num_classes, 6);
  EXPECT_TRUE(
      BitEqual(StateOf(*store, "copy").params, StateOf(*store, "m").params));
}

TEST_F(AddClassesDurabilityTest, RacesWithUpdatesAndPredictions) {
  // Updates (labels < 3, valid before and after) and predictions from other
  // threads while classes are added twice, on a store that syncs each
  // update: every call succeeds, versions stay consecutive, and the
  // predictions have the classes of the version that served them.
  std::unique_ptr<ModelStore> store = Open(dir_);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", Softmax(OptimizerKind::kAdagrad)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> updates{0};
  std::thread updater([&] {
    const std::vector<Example> batch = MakeExamples(4, 3, 31);
    while (!stop) {
      if (!store->Update("m", Views(batch)).ok()) ++failures;
      ++updates;
    }
  });
  std::thread predictor([&] {
    Features x;
    x.dense = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    const std::vector<FeaturesView> one = {x.view()};
    while (!stop) {
      absl::StatusOr<Predictions> p = store->Predict("m", one);
      absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
          p.ok()
              ? store->AcquireVersion("m", p->version)
              : absl::StatusOr<std::shared_ptr<const ModelVersion>>(p.status());
      // The version may be evicted meanwhile; otherwise it must agree.
      if (!p.ok() || (v.ok() && (*v)->spec().num_classes != p->num_outputs)) {
        ++failures;
      }
    }
  });
  while (updates < 20) std::this_thread::yield();
  ASSERT_TRUE(store->AddClasses("m", 4).ok());
  while (updates < 40) std::this_thread::yield();
  ASSERT_TRUE(store->AddClasses("m", 6).ok());
  while (updates < 60) std::this_thread::yield();
  stop = true;
  updater.join();
  predictor.join();
  EXPECT_EQ(failures, 0);
  const ModelInfo info = *store->GetModel("m");
  EXPECT_EQ(info.spec.num_classes, 6);
  EXPECT_EQ(info.version, 1 + static_cast<uint64_t>(updates) + 2);
  EXPECT_EQ(info.counters.examples_seen, 4 * static_cast<uint64_t>(updates));
}

// ---------------------------------------------- Delayed labels

TEST(AddClassesTest, PaddedServedOutputs) {
  const std::vector<float> served = {1.0f, -2.0f, 0.5f};
  const std::vector<float> padded = PadServedOutputs(served, 5);
  ASSERT_EQ(padded.size(), 5u);
  EXPECT_EQ(padded[0], 1.0f);
  EXPECT_EQ(padded[2], 0.5f);
  EXPECT_EQ(padded[3], 1.0f - kAddedClassLogitGap);
  EXPECT_EQ(padded[4], 1.0f - kAddedClassLogitGap);
  EXPECT_EQ(PadServedOutputs(served, 3), served);
  EXPECT_TRUE(PadServedOutputs({}, 3).empty());
}

TEST(AddClassesTest, DelayedLabelsOfPredictionsServedBefore) {
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", Softmax(OptimizerKind::kAdagrad)).ok());
  Train(store, "m", MakeExamples(40, 3, 10));
  Features x;
  x.dense = {0.5f, 0.1f, -0.3f, 0.8f, 0.2f, -0.6f};
  const std::vector<FeaturesView> instances = {x.view(), x.view()};
  absl::StatusOr<Predictions> served =
      store.Predict("m", instances, 0, PredictOptions{.remember = true});
  ASSERT_TRUE(served.ok()) << served.status();
  ASSERT_EQ(served->prediction_ids.size(), 2u);
  ASSERT_TRUE(store.AddClasses("m", 4).ok());

  // A label of the added class: scored as if its served probability had been
  // (about) 0: loss 30 - log(the largest served probability).
  Example added;
  added.prediction_id = served->prediction_ids[0];
  added.label = 3;
  absl::StatusOr<UpdateResult> r = store.Update("m", Views({added}));
  ASSERT_TRUE(r.ok()) << r.status();
  const float top =
      *std::max_element(served->scores.begin(), served->scores.begin() + 3);
  EXPECT_NEAR(r->loss_before, kAddedClassLogitGap - std::log(top), 1e-4);
  EXPECT_EQ(r->accuracy_before.value_or(-1), 0.0);
  EXPECT_TRUE(std::isfinite(store.GetModel("m")->counters.loss_sum));

  // An old label: the served probability of that class, as before.
  Example old;
  old.prediction_id = served->prediction_ids[1];
  old.label = 1;
  r = store.Update("m", Views({old}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->loss_before, -std::log(served->scores[1]), 1e-5);
}

// ---------------------------------------------- Adaptation and events

TEST(AddClassesTest, DropsAChallengerAndEmitsTheEvents) {
  ModelSpec spec = Softmax(OptimizerKind::kSgd);
  spec.drift.detector.kind = DriftDetectorKind::kAdwin;
  spec.drift.policy = DriftPolicy::kChallenger;
  spec.drift.challenger_window = 10;
  spec.guardrail.holdout_capacity = 50;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("src", spec).ok());
  Train(store, "src", MakeExamples(30, 3, 11));
  std::vector<Example> holdout = MakeExamples(8, 3, 12);
  for (Example& e : holdout) e.holdout = true;
  ASSERT_TRUE(store.Update("src", Views(holdout)).ok());
  // A model with a challenger in progress (as a drift would start one).
  ModelState state = StateOf(store, "src");
  AdaptationState& a = state.adaptation;
  a.has_challenger = true;
  a.challenger_params = state.params;
  a.challenger.started_at = 10;
  a.challenger.examples = 5;
  a.challenger.champion_window.assign(10, 0.5f);
  a.challenger.challenger_window.assign(10, 0.6f);
  ASSERT_TRUE(store.ImportModel("m", EncodeModelState(state)).ok());
  ASSERT_TRUE(store.GetModel("m")->adaptation.challenger_active);
  const ModelInfo before = *store.GetModel("m");
  EXPECT_EQ(before.adaptation.holdout_examples, 8);

  Mutex mu;
  std::vector<ModelEvent> events;
  absl::StatusOr<std::unique_ptr<EventSubscription>> watch =
      store.Watch("m", [&](const ModelEvent& e) {
        MutexLock lock(&mu);
        events.push_back(e);
      });
  ASSERT_TRUE(watch.ok());
  absl::StatusOr<ModelInfo> info = store.AddClasses("m", 5);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->adaptation.challenger_active);
  // The holdout set carries on, scored by the grown weights.
  EXPECT_EQ(info->adaptation.holdout_examples, 8);
  EXPECT_NE(info->adaptation.validation_loss,
            before.adaptation.validation_loss);
  EXPECT_EQ(info->adaptation.drifts, before.adaptation.drifts);
  {
    MutexLock lock(&mu);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, ModelEvent::Kind::kChallengerDropped);
    EXPECT_TRUE(absl::StrContains(events[0].detail, "classes were added"))
        << events[0].detail;
    EXPECT_EQ(events[1].kind, ModelEvent::Kind::kClassesAdded);
    EXPECT_EQ(events[1].detail, "num_classes 3 -> 5");
    EXPECT_EQ(events[1].version, info->version);
  }
  // The grown model learns on, and a later export decodes (no challenger).
  Train(store, "m", MakeExamples(20, 5, 13));
  EXPECT_EQ(StateOf(store, "m").spec.num_classes, 5);
}

// ---------------------------------------------- Learning

// Four Gaussian clusters in 8 dimensions; the fourth class appears later.
std::vector<Example> ClusterStream(int n, int32_t classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.6f);
  std::uniform_int_distribution<int> pick(0, classes - 1);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    const int c = pick(rng);
    std::vector<float> x(8);
    for (int j = 0; j < 8; ++j) x[j] = noise(rng);
    x[2 * c] += 2.0f;
    x[2 * c + 1] += 1.0f;
    out.push_back(Dense(std::move(x), static_cast<float>(c)));
  }
  return out;
}

double ClassAccuracy(ModelStore& store, const std::vector<Example>& test,
                     int32_t label) {
  int total = 0, correct = 0;
  for (const Example& e : test) {
    if (e.label != label) continue;
    const std::vector<FeaturesView> one = {e.features.view()};
    absl::StatusOr<Predictions> p = store.Predict("m", one);
    EXPECT_TRUE(p.ok());
    ++total;
    correct += p->labels[0] == label;
  }
  return total > 0 ? static_cast<double>(correct) / total : 0;
}

TEST(AddClassesTest, ANewClassIsLearned) {
  ModelSpec spec;
  spec.type = ModelType::kSoftmaxRegression;
  spec.num_features = 8;
  spec.num_classes = 3;
  spec.optimizer.kind = OptimizerKind::kAdagrad;
  spec.optimizer.learning_rate = 0.1f;
  spec.minibatch_size = 4;
  ModelStore store;
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  Train(store, "m", ClusterStream(3000, 3, 21), 50);
  const std::vector<Example> test = ClusterStream(2000, 4, 22);
  const double old_before = ClassAccuracy(store, test, 0);
  EXPECT_EQ(ClassAccuracy(store, test, 3), 0.0);  // cannot be predicted

  ASSERT_TRUE(store.AddClasses("m", 4).ok());
  Train(store, "m", ClusterStream(2000, 4, 23), 50);
  const double new_after = ClassAccuracy(store, test, 3);
  const double old_after = ClassAccuracy(store, test, 0);
  std::printf(
      "class 3 accuracy after 2000 examples: %.4f; class 0: %.4f "
      "before, %.4f after\n",
      new_after, old_before, old_after);
  EXPECT_GT(new_after, 0.80);
  EXPECT_GT(old_after, old_before - 0.05);
}

}  // namespace
}  // namespace lepton
