// Restarts of the model store on its data directory
// (core/store/model_store.h): a close and reopen, a crash (a copy of the data
// directory taken while the store runs, with acknowledged updates), update
// ids remembered across a crash, a deleted model staying deleted, and
// updates by prediction id replayed from the log. Every recovered model is
// compared bit for bit with a memory-only reference
// (tests/core/durability_test_support.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "tests/core/durability_test_support.h"

namespace lepton {
namespace {

namespace fs = std::filesystem;
using absl::StatusCode;

// ------------------------------------------------------------ Restarts

class RestartTest : public DurabilityTest,
                    public ::testing::WithParamInterface<Kind> {};

TEST_P(RestartTest, CloseAndReopenIsBitIdentical) {
  const ModelSpec spec = SpecFor(GetParam());
  const std::vector<Batch> batches =
      MakeBatches(spec, 16, 11 + static_cast<int>(GetParam()));
  const std::vector<Features> probes = Probes(batches);
  const std::string dir = Path("data");
  ModelStore ref;
  ASSERT_TRUE(ref.CreateModel("m", spec).ok());
  {
    RecoveryReport report;
    auto store = MustOpen(Durable(dir), &report);
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(report.recovered.empty());
    EXPECT_TRUE(report.failed.empty());
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (int i = 0; i < 12; ++i) {
      EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                             MustApply(ref, "m", batches[i])))
          << "batch " << i;
    }
    EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
    ASSERT_TRUE(store->Close().ok());
    EXPECT_TRUE(HasCode(Apply(*store, "m", batches[12]).status(),
                        StatusCode::kUnavailable));
    EXPECT_TRUE(store->Close().ok());  // idempotent
  }
  {
    RecoveryReport report;
    auto store = MustOpen(Durable(dir), &report);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    absl::StatusOr<ModelInfo> info = store->GetModel("m");
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->version, 13u);
    EXPECT_EQ(info->spec.type, spec.type);
    EXPECT_EQ(info->spec.num_features, spec.num_features);
    EXPECT_EQ(info->spec.num_classes, spec.num_classes);
    EXPECT_EQ(info->spec.optimizer.kind, spec.optimizer.kind);
    EXPECT_EQ(info->spec.optimizer.learning_rate, spec.optimizer.learning_rate);
    EXPECT_EQ(info->spec.optimizer.power_t, spec.optimizer.power_t);
    EXPECT_EQ(info->spec.minibatch_size, spec.minibatch_size);
    EXPECT_EQ(info->spec.l2, spec.l2);
    EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
    absl::StatusOr<Predictions> got = store->Predict("m", Views(probes));
    absl::StatusOr<Predictions> want = ref.Predict("m", Views(probes));
    ASSERT_TRUE(got.ok() && want.ok());
    EXPECT_EQ(got->version, 13u);
    EXPECT_TRUE(BitEqual(got->scores, want->scores));
    EXPECT_EQ(got->labels, want->labels);
    // Learning carries on exactly (SGD's step count, AdaGrad's accumulators).
    for (int i = 12; i < 16; ++i) {
      EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                             MustApply(ref, "m", batches[i])))
          << "batch " << i;
    }
    EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
  }
  auto store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
  EXPECT_EQ(store->GetModel("m")->version, 17u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, RestartTest,
                         ::testing::Values(Kind::kLogistic, Kind::kSoftmax,
                                           Kind::kLinear),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return KindName(info.param);
                         });

TEST_F(DurabilityTest, CrashKeepsEveryAcknowledgedUpdate) {
  const ModelSpec ctr_spec = SpecFor(Kind::kLogistic);
  const ModelSpec digits_spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> ctr = MakeBatches(ctr_spec, 14, 21, "c");
  const std::vector<Batch> digits = MakeBatches(digits_spec, 14, 22);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  auto ctr_ref = Reference("ctr", ctr_spec, ctr, 10);
  auto digits_ref = Reference("digits", digits_spec, digits, 10);
  {
    auto store = MustOpen(Durable(dir));  // fsync=always
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("ctr", ctr_spec).ok());
    ASSERT_TRUE(store->CreateModel("digits", digits_spec).ok());
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(MustApply(*store, "ctr", ctr[i]).version, i + 2u);
      EXPECT_EQ(MustApply(*store, "digits", digits[i]).version, i + 2u);
    }
    CrashCopy(dir, crash);  // the store is still open
  }
  // Leftovers of writes a crash interrupted, which recovery cleans up.
  const std::string stale_tmp =
      JoinPath(ModelDirOf(crash, "ctr"), Ckpt(7) + ".tmp");
  WriteBytes(stale_tmp, "half a checkpoint");
  const std::string stale_delete = Path("crash/models/.deleted-old-123");
  fs::create_directories(JoinPath(stale_delete, "sub"));

  RecoveryReport report;
  auto store = MustOpen(Durable(crash), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, (std::vector<std::string>{"ctr", "digits"}));
  EXPECT_TRUE(report.failed.empty());
  EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
  EXPECT_TRUE(SameModel(Capture(*store, "ctr"), Capture(*ctr_ref, "ctr")));
  EXPECT_TRUE(
      SameModel(Capture(*store, "digits"), Capture(*digits_ref, "digits")));
  EXPECT_FALSE(fs::exists(stale_tmp));
  EXPECT_FALSE(fs::exists(stale_delete));
  // The replayed versions are retained like any others.
  absl::StatusOr<ModelInfo> info = store->GetModel("ctr");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->retained_versions,
            (std::vector<uint64_t>{4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_TRUE(SameModel(Capture(*store, "ctr", 6),
                        Capture(*Reference("ctr", ctr_spec, ctr, 5), "ctr")));
  for (int i = 10; i < 14; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*store, "ctr", ctr[i]),
                           MustApply(*ctr_ref, "ctr", ctr[i])));
    EXPECT_TRUE(SameResult(MustApply(*store, "digits", digits[i]),
                           MustApply(*digits_ref, "digits", digits[i])));
  }
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(crash));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "ctr"), Capture(*ctr_ref, "ctr")));
  EXPECT_TRUE(
      SameModel(Capture(*store, "digits"), Capture(*digits_ref, "digits")));
}

// ------------------------------------------------------------ Idempotency

TEST_F(DurabilityTest, RetriedUpdateIdReturnsTheOriginalResult) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 161, "u");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  auto ref = Reference("m", spec, batches, 6);
  std::vector<UpdateResult> original;
  auto store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 6; ++i) {
    original.push_back(MustApply(*store, "m", batches[i]));
  }
  const Image before = Capture(*store, "m");
  ASSERT_EQ(before.version, 7u);

  const auto expect_retries_answered = [&](ModelStore& s, const char* when) {
    SCOPED_TRACE(when);
    for (int i = 0; i < 6; ++i) {
      absl::StatusOr<UpdateResult> retry = Apply(s, "m", batches[i]);
      ASSERT_TRUE(retry.ok()) << retry.status();
      EXPECT_TRUE(SameResult(*retry, original[i])) << "retry of " << i;
    }
    // The id decides, whatever the examples.
    Batch other = batches[7];
    other.id = batches[4].id;
    absl::StatusOr<UpdateResult> retry = Apply(s, "m", other);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_TRUE(SameResult(*retry, original[4]));
    EXPECT_TRUE(SameModel(Capture(s, "m"), before));  // nothing learned
  };
  expect_retries_answered(*store, "live");

  // After a crash, the ids come back from the log.
  CrashCopy(dir, crash);
  EXPECT_EQ(ListDir(ModelDirOf(crash, "m")),
            (std::vector<std::string>{Ckpt(1), Wal(2)}));
  {
    auto recovered = MustOpen(Durable(crash));
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
    expect_retries_answered(*recovered, "recovered from the log");
  }
  // After a restart, from the final checkpoint (the log is empty).
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(ListDir(ModelDirOf(dir, "m")),
            (std::vector<std::string>{Ckpt(1), Ckpt(7), Wal(8)}));
  EXPECT_EQ(fs::file_size(JoinPath(ModelDirOf(dir, "m"), Wal(8))),
            kSegmentHeaderBytes);
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  expect_retries_answered(*store, "recovered from a checkpoint");
  // A new id is a new update.
  EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[6]),
                         MustApply(*ref, "m", batches[6])));
  EXPECT_EQ(store->GetModel("m")->version, 8u);
}

// ------------------------------------------------------------ Deletion

TEST_F(DurabilityTest, DeletedModelStaysDeletedAndItsNameCanBeReused) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const ModelSpec other_spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 3, 221);
  const std::string dir = Path("data");
  auto store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (const Batch& b : batches) MustApply(*store, "m", b);
  ASSERT_TRUE(store->DeleteModel("m").ok());
  EXPECT_FALSE(fs::exists(ModelDirOf(dir, "m")));
  EXPECT_TRUE(ListDir(Path("data/models")).empty());
  EXPECT_TRUE(HasCode(store->DeleteModel("m"), StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(Apply(*store, "m", batches[0]).status(), StatusCode::kNotFound));
  absl::StatusOr<ModelInfo> info = store->CreateModel("m", other_spec);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 1u);
  ASSERT_TRUE(store->Close().ok());
  RecoveryReport report;
  store = MustOpen(Durable(dir), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
  info = store->GetModel("m");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->spec.type, ModelType::kLinearRegression);
  EXPECT_EQ(info->version, 1u);
}

// ------------------------------------------------------------ Delayed labels

// Updates by prediction id are logged resolved (features, served outputs,
// holdout): a crash and replay give the same weights and counters, though the
// served version is older than the model the labels arrive at.
TEST_F(DurabilityTest, DelayedLabelsReplayBitIdentical) {
  for (Kind kind : {Kind::kLogistic, Kind::kSoftmax, Kind::kLinear}) {
    SCOPED_TRACE(KindName(kind));
    const ModelSpec spec = SpecFor(kind);
    const std::vector<Batch> batches =
        MakeBatches(spec, 8, 31 + static_cast<int>(kind));
    const std::string dir = Path(absl::StrCat("data-", KindName(kind)));
    const std::string crash = Path(absl::StrCat("crash-", KindName(kind)));
    Image before;
    uint64_t unused_id = 0;
    UpdateResult delayed;
    {
      auto store = MustOpen(Durable(dir));  // fsync=always
      ASSERT_NE(store, nullptr);
      ASSERT_TRUE(store->CreateModel("m", spec).ok());
      for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);
      // Served by version 4; labeled after versions 5 and 6.
      std::vector<Features> served;
      for (const Example& e : batches[3].examples) served.push_back(e.features);
      absl::StatusOr<Predictions> p = store->Predict(
          "m", Views(served), 0, PredictOptions{.remember = true});
      ASSERT_TRUE(p.ok()) << p.status();
      ASSERT_EQ(p->prediction_ids.size(), served.size());
      MustApply(*store, "m", batches[4]);
      MustApply(*store, "m", batches[5]);
      std::vector<Example> labels;
      for (size_t i = 0; i + 1 < served.size(); ++i) {  // the last stays unused
        Example e;
        e.prediction_id = p->prediction_ids[i];
        e.label = batches[3].examples[i].label;
        e.weight = batches[3].examples[i].weight;
        e.holdout = i % 2 == 1;
        labels.push_back(e);
      }
      labels.push_back(batches[6].examples[0]);  // an ordinary one mixed in
      unused_id = p->prediction_ids.back();
      absl::StatusOr<UpdateResult> r =
          store->Update("m", Views(labels), {}, "delayed-1");
      ASSERT_TRUE(r.ok()) << r.status();
      delayed = *r;
      MustApply(*store, "m", batches[7]);
      before = Capture(*store, "m");
      CrashCopy(dir, crash);  // the store is still open
    }
    // The log holds the resolved examples.
    absl::StatusOr<LogSegment> segment = ReadLogSegment(
        ReadBytes(NewestSegment(ModelDirOf(crash, "m"))), "wal", true);
    ASSERT_TRUE(segment.ok()) << segment.status();
    EXPECT_EQ(segment->format_version, 2u);
    const LoggedUpdate* logged = nullptr;
    for (const LoggedUpdate& u : segment->records) {
      if (u.update_id == "delayed-1") logged = &u;
    }
    ASSERT_NE(logged, nullptr);
    ASSERT_EQ(logged->examples.size(), batches[3].examples.size());
    EXPECT_EQ(logged->examples[0].served_outputs.size(),
              static_cast<size_t>(spec.num_outputs()));
    EXPECT_TRUE(BitEqual(logged->examples[0].features.dense,
                         batches[3].examples[0].features.dense));
    EXPECT_TRUE(logged->examples[1].holdout);
    EXPECT_FALSE(logged->examples[0].holdout);
    EXPECT_TRUE(logged->examples.back().served_outputs.empty());

    RecoveryReport report;
    auto store = MustOpen(Durable(crash), &report);
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    EXPECT_TRUE(SameModel(Capture(*store, "m"), before));
    // The retry is answered from the replayed log, and the ids from before
    // the restart are gone.
    std::vector<Example> retry(1);
    retry[0].prediction_id = unused_id;
    retry[0].label = batches[3].examples.back().label;
    absl::StatusOr<UpdateResult> again =
        store->Update("m", Views(retry), {}, "delayed-1");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(SameResult(*again, delayed));
    EXPECT_TRUE(HasCode(store->Update("m", Views(retry)).status(),
                        StatusCode::kNotFound,
                        absl::StrCat("examples[0].prediction_id: ", unused_id,
                                     " is unknown or expired")));
    EXPECT_TRUE(SameModel(Capture(*store, "m"), before));
  }
}

}  // namespace
}  // namespace lepton
