// Rollback and export/import on a durable model store: a rollback to a
// retained or a checkpointed version is published as a new version and
// survives a restart; one whose checkpoint cannot be written, synced or
// cleaned up changes nothing or stops the log
// (tests/core/fault_file_system.h); an exported model imports bit for bit
// into another data directory.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/store/model_store.h"
#include "tests/core/durability_test_support.h"
#include "tests/core/fault_file_system.h"

namespace lepton {
namespace {

using absl::StatusCode;

// ------------------------------------------------------------ Rollback

TEST_F(DurabilityTest, RollbackToRetainedVersion) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);  // SGD: steps matter
  const std::vector<Batch> batches = MakeBatches(spec, 10, 101);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  auto store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 6; ++i) MustApply(*store, "m", batches[i]);  // v7
  const Image v3 = Capture(*store, "m", 3);
  const Image v7 = Capture(*store, "m");
  absl::StatusOr<std::string> blob3 = store->ExportModel("m", 3);
  ASSERT_TRUE(blob3.ok()) << blob3.status();

  absl::StatusOr<ModelInfo> info = store->Rollback("m", 3);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 8u);
  EXPECT_EQ(info->retained_versions,
            (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(info->checkpointed_versions, (std::vector<uint64_t>{1, 8}));
  const Image rolled = Capture(*store, "m");
  EXPECT_EQ(rolled.version, 8u);
  EXPECT_TRUE(SameParams(rolled, v3));
  EXPECT_TRUE(SameModel(Capture(*store, "m", 7), v7));  // still pinnable

  // Later updates continue from version 3's state: like a store that
  // imported version 3 and applied them.
  ModelStore ref;
  absl::StatusOr<ModelInfo> imported = ref.ImportModel("m", *blob3);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->version, 3u);
  for (int i = 6; i < 10; ++i) {
    const UpdateResult got = MustApply(*store, "m", batches[i]);
    EXPECT_EQ(got.version, static_cast<uint64_t>(i + 3));
    EXPECT_TRUE(SameResult(got, MustApply(ref, "m", batches[i]),
                           /*compare_version=*/false));
  }
  const Image final_image = Capture(*store, "m");
  EXPECT_EQ(final_image.version, 12u);
  EXPECT_TRUE(SameParams(final_image, Capture(ref, "m")));

  // A crash now: the rollback's checkpoint plus the log after it.
  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), final_image));
    EXPECT_TRUE(SameParams(Capture(*recovered, "m", 8), v3));
  }
  // A restart.
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), final_image));
  EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[0]),
                         MustApply(ref, "m", batches[0]),
                         /*compare_version=*/false));
}

TEST_F(DurabilityTest, RollbackToCheckpointedVersionNoLongerRetained) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 111);
  const std::string dir = Path("data");
  StoreOptions options = Durable(dir);
  options.retained_versions = 2;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  ASSERT_TRUE(store->Checkpoint(/*force=*/true).ok());
  const Image v4 = Capture(*store, "m");
  for (int i = 3; i < 8; ++i) MustApply(*store, "m", batches[i]);  // v9
  absl::StatusOr<ModelInfo> info = store->GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->retained_versions, (std::vector<uint64_t>{8, 9}));
  EXPECT_EQ(info->checkpointed_versions, (std::vector<uint64_t>{1, 4}));
  EXPECT_TRUE(
      HasCode(store->AcquireVersion("m", 4).status(), StatusCode::kNotFound));

  // Neither retained nor checkpointed, or no such version: NOT_FOUND.
  EXPECT_TRUE(HasCode(store->Rollback("m", 3).status(), StatusCode::kNotFound,
                      "version 3"));
  EXPECT_TRUE(HasCode(store->Rollback("m", 42).status(), StatusCode::kNotFound,
                      "version 42"));
  EXPECT_TRUE(
      HasCode(store->Rollback("m", 0).status(), StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      HasCode(store->Rollback("nope", 1).status(), StatusCode::kNotFound));
  EXPECT_EQ(store->GetModel("m")->version, 9u);  // nothing changed

  info = store->Rollback("m", 4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 10u);
  EXPECT_EQ(info->retained_versions, (std::vector<uint64_t>{9, 10}));
  EXPECT_EQ(info->checkpointed_versions, (std::vector<uint64_t>{1, 4, 10}));
  EXPECT_TRUE(SameParams(Capture(*store, "m"), v4));

  // To the very first version: all zeros.
  info = store->Rollback("m", 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 11u);
  const Image v11 = Capture(*store, "m");
  for (float w : v11.weights) ASSERT_EQ(w, 0.0f);
  EXPECT_EQ(v11.counters.updates, 0u);
  // And forward again, to a retained version.
  info = store->Rollback("m", 10);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 12u);
  EXPECT_TRUE(SameParams(Capture(*store, "m"), v4));

  // It all survives a restart; the checkpointed versions stay targets.
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  const Image restarted = Capture(*store, "m");
  EXPECT_EQ(restarted.version, 12u);
  EXPECT_TRUE(SameParams(restarted, v4));
  info = store->Rollback("m", 11);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 13u);
  EXPECT_TRUE(SameParams(Capture(*store, "m"), v11));
}

// A rollback whose checkpoint cannot be written changes nothing.
TEST_F(DurabilityTest, RollbackWhoseCheckpointRenameFailsChangesNothing) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 121);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 4; ++i) MustApply(*store, "m", batches[i]);  // v5
  auto ref = Reference("m", spec, batches, 4);

  fault.FailRenames("checkpoint-", 1);
  EXPECT_TRUE(HasCode(store->Rollback("m", 3).status(),
                      StatusCode::kUnavailable, "rename"));
  EXPECT_EQ(fault.injected(), 1);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions,
            std::vector<uint64_t>{1});
  for (int i = 4; i < 6; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                           MustApply(*ref, "m", batches[i])));
  }
  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
  }
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

// As above, but the checkpoint file is renamed into place and only the
// directory fsync fails: the rollback fails, so the version number it
// would have used is taken by the next update, and a crash must not bring
// the rollback's state back under that number.
TEST_F(DurabilityTest, RollbackWhoseDirectorySyncFailsLeavesNoStaleCheckpoint) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 131);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 4; ++i) MustApply(*store, "m", batches[i]);  // v5
  auto ref = Reference("m", spec, batches, 4);

  fault.FailSyncDirectories("/models/m", 1);
  EXPECT_TRUE(HasCode(store->Rollback("m", 3).status(),
                      StatusCode::kUnavailable, "fsync"));
  EXPECT_EQ(fault.injected(), 1);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  for (int i = 4; i < 6; ++i) {  // versions 6 and 7
    EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                           MustApply(*ref, "m", batches[i])));
  }
  CrashCopy(dir, crash);
  RecoveryReport report;
  auto recovered = MustOpen(Durable(crash), &report);
  ASSERT_NE(recovered, nullptr);
  EXPECT_TRUE(report.failed.empty());
  // Regression: checkpoint-6 of the failed rollback (version 3's weights)
  // used to stay on disk; recovery started from it and replayed only update
  // 7 on top.
  EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")))
      << "files: " << absl::StrJoin(ListDir(ModelDirOf(crash, "m")), " ");
}

// As above, and the checkpoint the rollback reported as failed cannot even
// be removed: the log stops taking updates, so no later update can reuse
// the rollback's version number. After a crash the model is at one of the
// two states, never a mix.
TEST_F(DurabilityTest, RollbackWhoseStaleCheckpointCannotBeRemovedStopsTheLog) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 133);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 4; ++i) MustApply(*store, "m", batches[i]);  // v5
  auto ref = Reference("m", spec, batches, 4);
  const Image v3 = Capture(*store, "m", 3);

  fault.FailSyncDirectories("/models/m", 1);
  fault.FailRemoveFiles("checkpoint-", 1);
  EXPECT_TRUE(HasCode(store->Rollback("m", 3).status(),
                      StatusCode::kUnavailable, "could not be removed"));
  EXPECT_EQ(fault.injected(), 2);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[4]).status(),
                      StatusCode::kFailedPrecondition,
                      "until the server restarts"));
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));

  CrashCopy(dir, crash);
  RecoveryReport report;
  auto recovered = MustOpen(Durable(crash), &report);
  ASSERT_NE(recovered, nullptr);
  EXPECT_TRUE(report.failed.empty());
  const Image image = Capture(*recovered, "m");
  if (image.version == 5) {
    EXPECT_TRUE(SameModel(image, Capture(*ref, "m")));
  } else {
    EXPECT_EQ(image.version, 6u);
    EXPECT_TRUE(SameParams(image, v3));
  }
  // The recovered model takes updates again.
  absl::StatusOr<UpdateResult> r = Apply(*recovered, "m", batches[4]);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, image.version + 1);
}

// The rollback's checkpoint is written but the log segment after it cannot
// be started: the rollback stands (its checkpoint is its record), and the
// log takes no update until a restart, which recovers the rollback.
TEST_F(DurabilityTest, RollbackWhoseNextSegmentCannotBeStartedStopsTheLog) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 7, 137);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 4; ++i) MustApply(*store, "m", batches[i]);  // v5
  const Image v3 = Capture(*store, "m", 3);
  absl::StatusOr<std::string> blob3 = store->ExportModel("m", 3);
  ASSERT_TRUE(blob3.ok()) << blob3.status();

  fault.FailOpens("/wal-", 1);
  absl::StatusOr<ModelInfo> info = store->Rollback("m", 3);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(fault.injected(), 1);
  EXPECT_EQ(info->version, 6u);
  EXPECT_TRUE(SameParams(Capture(*store, "m"), v3));
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[4]).status(),
                      StatusCode::kFailedPrecondition,
                      "until the server restarts"));
  EXPECT_EQ(store->GetModel("m")->version, 6u);

  CrashCopy(dir, crash);
  RecoveryReport report;
  auto recovered = MustOpen(Durable(crash), &report);
  ASSERT_NE(recovered, nullptr);
  EXPECT_TRUE(report.failed.empty());
  const Image image = Capture(*recovered, "m");
  EXPECT_EQ(image.version, 6u);
  EXPECT_TRUE(SameParams(image, v3));
  // And learns on from version 3's state.
  ModelStore ref;
  ASSERT_TRUE(ref.ImportModel("m", *blob3).ok());
  for (int i = 4; i < 7; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*recovered, "m", batches[i]),
                           MustApply(ref, "m", batches[i]),
                           /*compare_version=*/false));
  }
  EXPECT_TRUE(SameParams(Capture(*recovered, "m"), Capture(ref, "m")));
}

TEST_F(DurabilityTest, MemoryOnlyStoreRollsBackAndExports) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 141);
  StoreOptions options;
  options.retained_versions = 3;
  ModelStore store(options);
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  for (int i = 0; i < 5; ++i) MustApply(store, "m", batches[i]);  // v6
  const Image v4 = Capture(store, "m", 4);
  absl::StatusOr<ModelInfo> info = store.Rollback("m", 4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 7u);
  EXPECT_EQ(info->retained_versions, (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_TRUE(info->checkpointed_versions.empty());
  EXPECT_TRUE(SameParams(Capture(store, "m"), v4));
  EXPECT_TRUE(HasCode(store.Rollback("m", 2).status(), StatusCode::kNotFound,
                      "version 2"));
  EXPECT_TRUE(
      HasCode(store.Rollback("m", 0).status(), StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      HasCode(store.ExportModel("m", 1).status(), StatusCode::kNotFound));

  absl::StatusOr<std::string> blob = store.ExportModel("m", 0);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ModelStore other;
  absl::StatusOr<ModelInfo> imported = other.ImportModel("copy", *blob);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->name, "copy");
  EXPECT_EQ(imported->version, 7u);
  EXPECT_TRUE(SameModel(Capture(other, "copy"), Capture(store, "m")));
  for (int i = 5; i < 8; ++i) {
    EXPECT_TRUE(SameResult(MustApply(other, "copy", batches[i]),
                           MustApply(store, "m", batches[i])));
  }
  EXPECT_TRUE(SameModel(Capture(other, "copy"), Capture(store, "m")));
  EXPECT_TRUE(store.Checkpoint(/*force=*/true).ok());
  EXPECT_TRUE(store.Close().ok());
  EXPECT_TRUE(HasCode(Apply(store, "m", batches[0]).status(),
                      StatusCode::kUnavailable));
}

// ------------------------------------------------------------ Export/import

TEST_F(DurabilityTest, ExportImportAcrossDataDirectories) {
  const ModelSpec spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 12, 151);
  const std::vector<Features> probes = Probes(batches);
  auto a = MustOpen(Durable(Path("a")));
  auto b = MustOpen(Durable(Path("b")));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->CreateModel("m", spec).ok());
  for (int i = 0; i < 8; ++i) MustApply(*a, "m", batches[i]);  // v9
  absl::StatusOr<std::string> blob = a->ExportModel("m", 0);
  absl::StatusOr<std::string> blob5 = a->ExportModel("m", 5);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_TRUE(blob5.ok()) << blob5.status();
  const Image a5 = Capture(*a, "m", 5);

  absl::StatusOr<ModelInfo> info = b->ImportModel("", *blob);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name, "m");
  EXPECT_EQ(info->version, 9u);
  EXPECT_TRUE(SameModel(Capture(*b, "m"), Capture(*a, "m")));
  absl::StatusOr<Predictions> pa = a->Predict("m", Views(probes));
  absl::StatusOr<Predictions> pb = b->Predict("m", Views(probes));
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pb->version, 9u);
  EXPECT_TRUE(BitEqual(pa->scores, pb->scores));
  info = b->ImportModel("m5", *blob5);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 5u);
  EXPECT_TRUE(SameModel(Capture(*b, "m5"), a5));

  EXPECT_TRUE(HasCode(b->ImportModel("", *blob).status(),
                      StatusCode::kAlreadyExists, "\"m\""));
  std::string flipped = *blob;
  flipped[flipped.size() / 2] ^= 0x10;
  EXPECT_TRUE(HasCode(b->ImportModel("x1", flipped).status(),
                      StatusCode::kInvalidArgument, "offset "));
  EXPECT_TRUE(
      HasCode(b->ImportModel("x2", blob->substr(0, blob->size() - 7)).status(),
              StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(b->ImportModel("x3", blob->substr(0, 30)).status(),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      HasCode(b->ImportModel("x4", "").status(), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(b->ImportModel("bad name", *blob).status(),
                      StatusCode::kInvalidArgument));
  std::vector<std::string> listed;
  for (const ModelInfo& m : b->ListModels()) listed.push_back(m.name);
  EXPECT_EQ(listed, (std::vector<std::string>{"m", "m5"}));
  EXPECT_EQ(ListDir(Path("b/models")), (std::vector<std::string>{"m", "m5"}));

  // Both copies learn alike.
  for (int i = 8; i < 12; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*b, "m", batches[i]),
                           MustApply(*a, "m", batches[i])));
  }
  EXPECT_TRUE(SameModel(Capture(*b, "m"), Capture(*a, "m")));

  // The imports survive a restart of their store.
  ASSERT_TRUE(b->Close().ok());
  RecoveryReport report;
  b = MustOpen(Durable(Path("b")), &report);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(report.recovered, (std::vector<std::string>{"m", "m5"}));
  EXPECT_TRUE(report.failed.empty());
  EXPECT_TRUE(SameModel(Capture(*b, "m"), Capture(*a, "m")));
  EXPECT_TRUE(SameModel(Capture(*b, "m5"), a5));
}

}  // namespace
}  // namespace lepton
