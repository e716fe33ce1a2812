// Checkpoints of the model store: when one is due (by bytes of log), and
// that writing one removes the log segments and older checkpoints it
// covers, keeping the newest.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/model_state.h"
#include "core/store/model_store.h"
#include "tests/core/durability_test_support.h"

namespace lepton {
namespace {

// ------------------------------------------------------------ Checkpoints

TEST_F(DurabilityTest, ACheckpointIsDueAfterCheckpointLogBytesOfLog) {
  const ModelSpec spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 4, 93);
  const std::string dir = Path("data");
  StoreOptions options = Durable(dir);
  options.checkpoint_every_updates = 1000000;
  options.checkpoint_interval = absl::Hours(1);
  options.checkpoint_log_bytes = 1 << 20;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  MustApply(*store, "m", batches[0]);  // v2: far less than 1 MiB of log
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions,
            std::vector<uint64_t>{1});
  store.reset();

  options.checkpoint_log_bytes = 1;  // any record is enough
  store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  MustApply(*store, "m", batches[1]);  // v3
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions,
            (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(DurabilityTest, CheckpointsRemoveCoveredSegmentsAndKeepTheNewest) {
  const ModelSpec spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 12, 91);
  const std::string dir = Path("data");
  const std::string model_dir = ModelDirOf(dir, "m");
  StoreOptions options = Durable(dir);
  options.checkpoint_every_updates = 5;
  options.keep_checkpoints = 2;
  options.retained_versions = 2;
  using Files = std::vector<std::string>;
  using Versions = std::vector<uint64_t>;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(1), Wal(2)}));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions, Versions{1});

  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());            // not due
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(1), Wal(2)}));

  for (int i = 3; i < 5; ++i) MustApply(*store, "m", batches[i]);  // v6
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());  // due: 5 updates
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(1), Ckpt(6), Wal(7)}));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions, (Versions{1, 6}));

  for (int i = 5; i < 7; ++i) MustApply(*store, "m", batches[i]);  // v8
  ASSERT_TRUE(store->Checkpoint(/*force=*/true).ok());
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(6), Ckpt(8), Wal(9)}));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions, (Versions{6, 8}));
  ASSERT_TRUE(store->Checkpoint(/*force=*/true).ok());  // nothing new
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(6), Ckpt(8), Wal(9)}));

  for (int i = 7; i < 12; ++i) MustApply(*store, "m", batches[i]);  // v13
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(8), Ckpt(13), Wal(14)}));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions, (Versions{8, 13}));

  // A checkpointed version can be exported although no longer retained.
  absl::StatusOr<std::string> blob = store->ExportModel("m", 8);
  ASSERT_TRUE(blob.ok()) << blob.status();
  absl::StatusOr<ModelState> state = DecodeModelState(*blob);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->version, 8u);
  auto ref8 = Reference("m", spec, batches, 7);
  ModelStore imported;
  ASSERT_TRUE(imported.ImportModel("m", *blob).ok());
  EXPECT_TRUE(SameModel(Capture(imported, "m"), Capture(*ref8, "m")));

  ASSERT_TRUE(store->Close().ok());
  RecoveryReport report;
  store = MustOpen(options, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
  EXPECT_EQ(ListDir(model_dir), (Files{Ckpt(8), Ckpt(13), Wal(14)}));
  EXPECT_EQ(store->GetModel("m")->checkpointed_versions, (Versions{8, 13}));
  auto ref = Reference("m", spec, batches, 12);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

}  // namespace
}  // namespace lepton
