// Damaged files of the model store's data directory: a torn tail of the
// update log (a write cut short by a crash) is dropped and cut off; a
// corrupt record or checkpoint is DATA_LOSS for that model only, or falls
// back to an older checkpoint when the log still covers it
// (core/storage/update_log_format.h tells the two apart).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "tests/core/durability_test_support.h"
#include "tests/core/fault_file_system.h"

namespace lepton {
namespace {

namespace fs = std::filesystem;
using absl::StatusCode;

// ------------------------------------------------------------ Torn tails

TEST_F(DurabilityTest, TornLastRecordIsDroppedAndCutOff) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 12, 31);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  const std::string crash2 = Path("crash2");
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (int i = 0; i < 8; ++i) MustApply(*store, "m", batches[i]);
    CrashCopy(dir, crash);
  }
  // The crash cut the last record's write short by 5 bytes.
  const std::string segment = NewestSegment(ModelDirOf(crash, "m"));
  const std::string contents = ReadBytes(segment);
  const std::vector<uint64_t> offsets = RecordOffsets(contents);
  ASSERT_EQ(offsets.size(), 8u);
  fs::resize_file(segment, contents.size() - 5);

  RecoveryReport report;
  auto store = MustOpen(Durable(crash), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
  EXPECT_TRUE(report.failed.empty());
  ASSERT_EQ(report.notes.size(), 1u) << Joined(report.notes);
  EXPECT_TRUE(absl::StrContains(report.notes[0], "torn"));
  EXPECT_TRUE(
      absl::StrContains(report.notes[0], fs::path(segment).filename().string()))
      << report.notes[0];
  // The model is at the version before the torn update.
  auto ref = Reference("m", spec, batches, 7);
  EXPECT_EQ(store->GetModel("m")->version, 8u);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  // The segment was cut back to the end of its last whole record.
  EXPECT_EQ(fs::file_size(segment), offsets.back());

  // The client retries the lost update, and goes on.
  for (int i = 7; i < 12; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                           MustApply(*ref, "m", batches[i])));
  }
  // A second crash: the cut segment, no longer the newest, reads as complete.
  CrashCopy(crash, crash2);
  RecoveryReport report2;
  auto store2 = MustOpen(Durable(crash2), &report2);
  ASSERT_NE(store2, nullptr);
  EXPECT_EQ(report2.recovered, std::vector<std::string>{"m"});
  EXPECT_TRUE(report2.failed.empty())
      << absl::StrJoin(Names(report2.failed), ", ");
  EXPECT_TRUE(report2.notes.empty()) << Joined(report2.notes);
  EXPECT_TRUE(SameModel(Capture(*store2, "m"), Capture(*ref, "m")));
  // And a clean restart.
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(crash));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

TEST_F(DurabilityTest, TornBytesAfterTheLastRecordAreDropped) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 41);
  const std::string dir = Path("data");
  auto store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 6; ++i) MustApply(*store, "m", batches[i]);
  const std::string last_record = [&] {
    const std::string contents = ReadBytes(NewestSegment(ModelDirOf(dir, "m")));
    return contents.substr(RecordOffsets(contents).back());
  }();

  struct Tail {
    std::string label;
    std::string bytes;
    std::string reason;  // in the note
  };
  const std::vector<Tail> tails = {
      {"short", std::string(7, '\xAB'), "incomplete"},
      {"zeros", std::string(300, '\0'), "zero bytes"},
      // An intact record header whose payload runs past the end of the file.
      {"payload", last_record.substr(0, kRecordHeaderBytes + 9), "incomplete"},
  };
  for (const Tail& tail : tails) {
    SCOPED_TRACE(tail.label);
    const std::string crash = Path(absl::StrCat("crash-", tail.label));
    const std::string crash2 = Path(absl::StrCat("crash2-", tail.label));
    CrashCopy(dir, crash);
    const std::string segment = NewestSegment(ModelDirOf(crash, "m"));
    const uint64_t size = fs::file_size(segment);
    WriteBytes(segment, tail.bytes, /*append=*/true);

    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
    ASSERT_EQ(report.notes.size(), 1u) << Joined(report.notes);
    EXPECT_TRUE(absl::StrContains(report.notes[0], "torn")) << report.notes[0];
    EXPECT_TRUE(absl::StrContains(report.notes[0], tail.reason))
        << report.notes[0];
    EXPECT_EQ(fs::file_size(segment), size);
    // Nothing acknowledged was lost.
    auto ref = Reference("m", spec, batches, 6);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
    EXPECT_TRUE(SameResult(MustApply(*recovered, "m", batches[6]),
                           MustApply(*ref, "m", batches[6])));
    CrashCopy(crash, crash2);
    RecoveryReport report2;
    auto recovered2 = MustOpen(Durable(crash2), &report2);
    ASSERT_NE(recovered2, nullptr);
    EXPECT_TRUE(report2.notes.empty()) << Joined(report2.notes);
    EXPECT_TRUE(report2.failed.empty());
    EXPECT_TRUE(SameModel(Capture(*recovered2, "m"), Capture(*ref, "m")));
  }
}

// ------------------------------------------------------------ Corruption

TEST_F(DurabilityTest, CorruptLogRecordIsDataLossForThatModelOnly) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const ModelSpec good_spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 51);
  const std::vector<Batch> good_batches = MakeBatches(good_spec, 6, 52);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_NE(store, nullptr);
    for (const char* name : {"bad", "bad2"}) {
      ASSERT_TRUE(store->CreateModel(name, spec).ok());
      for (int i = 0; i < 6; ++i) MustApply(*store, name, batches[i]);
    }
    ASSERT_TRUE(store->CreateModel("good", good_spec).ok());
    for (int i = 0; i < 6; ++i) MustApply(*store, "good", good_batches[i]);
    CrashCopy(dir, crash);
  }
  // "bad": one payload byte of its 2nd record (of 6); "bad2": the size field
  // of its 1st record.
  const std::string segment = NewestSegment(ModelDirOf(crash, "bad"));
  const std::vector<uint64_t> offsets = RecordOffsets(ReadBytes(segment));
  ASSERT_EQ(offsets.size(), 6u);
  FlipByte(segment, offsets[1] + kRecordHeaderBytes + 3);
  const std::string segment2 = NewestSegment(ModelDirOf(crash, "bad2"));
  FlipByte(segment2, kSegmentHeaderBytes + 1);

  RecoveryReport report;
  auto store = MustOpen(Durable(crash), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"good"});
  ASSERT_EQ(Names(report.failed), (std::vector<std::string>{"bad", "bad2"}));
  const absl::Status bad = report.failed[0].second;
  EXPECT_TRUE(HasCode(bad, StatusCode::kDataLoss,
                      fs::path(segment).filename().string()));
  EXPECT_TRUE(
      HasCode(bad, StatusCode::kDataLoss, absl::StrCat("offset ", offsets[1])));
  EXPECT_TRUE(HasCode(bad, StatusCode::kDataLoss, "checksum"));
  const absl::Status bad2 = report.failed[1].second;
  EXPECT_TRUE(HasCode(bad2, StatusCode::kDataLoss,
                      fs::path(segment2).filename().string()));
  EXPECT_TRUE(HasCode(bad2, StatusCode::kDataLoss,
                      absl::StrCat("offset ", kSegmentHeaderBytes)));

  // The other model is served, exactly.
  auto good_ref = Reference("good", good_spec, good_batches, 6);
  EXPECT_TRUE(SameModel(Capture(*store, "good"), Capture(*good_ref, "good")));

  // Every call on the failed model says why.
  const std::string file = fs::path(segment).filename().string();
  const std::vector<Features> probes = Probes(batches);
  EXPECT_TRUE(
      HasCode(store->GetModel("bad").status(), StatusCode::kDataLoss, file));
  EXPECT_TRUE(HasCode(store->Predict("bad", Views(probes)).status(),
                      StatusCode::kDataLoss, file));
  EXPECT_TRUE(HasCode(Apply(*store, "bad", batches[6]).status(),
                      StatusCode::kDataLoss, file));
  EXPECT_TRUE(
      HasCode(store->Rollback("bad", 2).status(), StatusCode::kDataLoss, file));
  EXPECT_TRUE(HasCode(store->ExportModel("bad", 0).status(),
                      StatusCode::kDataLoss, file));
  EXPECT_TRUE(HasCode(store->AcquireVersion("bad").status(),
                      StatusCode::kDataLoss, file));
  std::promise<absl::StatusOr<UpdateResult>> started;
  store->StartUpdate(
      "bad", Views(batches[6].examples), {}, "",
      [&](absl::StatusOr<UpdateResult> r) { started.set_value(std::move(r)); });
  EXPECT_TRUE(HasCode(started.get_future().get().status(),
                      StatusCode::kDataLoss, file));
  // Its name stays taken until it is deleted.
  EXPECT_TRUE(HasCode(store->CreateModel("bad", spec).status(),
                      StatusCode::kFailedPrecondition, "delete it first"));
  std::vector<std::string> listed;
  for (const ModelInfo& m : store->ListModels()) listed.push_back(m.name);
  EXPECT_EQ(listed, std::vector<std::string>{"good"});

  ASSERT_TRUE(store->DeleteModel("bad").ok());
  EXPECT_FALSE(fs::exists(ModelDirOf(crash, "bad")));
  EXPECT_TRUE(HasCode(store->GetModel("bad").status(), StatusCode::kNotFound));
  absl::StatusOr<ModelInfo> created = store->CreateModel("bad", spec);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->version, 1u);
  auto fresh_ref = Reference("bad", spec, batches, 0);
  EXPECT_TRUE(SameResult(MustApply(*store, "bad", batches[0]),
                         MustApply(*fresh_ref, "bad", batches[0])));
  ASSERT_TRUE(store->Close().ok());

  RecoveryReport report2;
  store = MustOpen(Durable(crash), &report2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report2.recovered, (std::vector<std::string>{"bad", "good"}));
  EXPECT_EQ(Names(report2.failed), std::vector<std::string>{"bad2"});
  EXPECT_TRUE(SameModel(Capture(*store, "bad"), Capture(*fresh_ref, "bad")));
  EXPECT_TRUE(SameModel(Capture(*store, "good"), Capture(*good_ref, "good")));
}

TEST_F(DurabilityTest, CorruptOnlyCheckpointIsDataLoss) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 5, 61);
  const std::string dir = Path("data");
  StoreOptions options = Durable(dir);
  options.keep_checkpoints = 1;
  {
    auto store = MustOpen(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (const Batch& b : batches) MustApply(*store, "m", b);
    ASSERT_TRUE(store->Close().ok());  // the final checkpoint, of version 6
  }
  const std::string model_dir = ModelDirOf(dir, "m");
  ASSERT_EQ(ListDir(model_dir), (std::vector<std::string>{Ckpt(6), Wal(7)}));
  const std::string checkpoint = JoinPath(model_dir, Ckpt(6));
  FlipByte(checkpoint, fs::file_size(checkpoint) / 2);

  RecoveryReport report;
  auto store = MustOpen(options, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.recovered.empty());
  ASSERT_EQ(Names(report.failed), std::vector<std::string>{"m"});
  const absl::Status& s = report.failed[0].second;
  EXPECT_TRUE(HasCode(s, StatusCode::kDataLoss, Ckpt(6)));
  EXPECT_TRUE(HasCode(s, StatusCode::kDataLoss, "offset "));
  EXPECT_TRUE(HasCode(s, StatusCode::kDataLoss, "no valid checkpoint"));
  EXPECT_TRUE(HasCode(store->Predict("m", Views(Probes(batches))).status(),
                      StatusCode::kDataLoss, Ckpt(6)));
}

// The newest checkpoint made the log before it redundant, and that log was
// removed; the newest checkpoint is then found corrupt. An older checkpoint
// is still valid, but the updates between the two are gone: the model must
// not be served (let alone at the older checkpoint's weights).
TEST_F(DurabilityTest, CorruptNewestCheckpointAfterLogRemovalIsDataLoss) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 71);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (int i = 0; i < 5; ++i) MustApply(*store, "m", batches[i]);
    ASSERT_TRUE(store->Checkpoint(/*force=*/true).ok());
    for (int i = 5; i < 8; ++i) MustApply(*store, "m", batches[i]);
    EXPECT_EQ(ListDir(ModelDirOf(dir, "m")),
              (std::vector<std::string>{Ckpt(1), Ckpt(6), Wal(7)}));
    CrashCopy(dir, crash);
  }
  const std::string checkpoint = JoinPath(ModelDirOf(crash, "m"), Ckpt(6));
  FlipByte(checkpoint, fs::file_size(checkpoint) / 2);

  RecoveryReport report;
  auto store = MustOpen(Durable(crash), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.recovered.empty());
  ASSERT_EQ(Names(report.failed), std::vector<std::string>{"m"});
  EXPECT_TRUE(HasCode(report.failed[0].second, StatusCode::kDataLoss, Wal(7)));
  EXPECT_TRUE(HasCode(store->GetModel("m").status(), StatusCode::kDataLoss));
}

// As above, with no update after the newest checkpoint: its log segment is
// empty, so nothing but the checkpoint's own version says that updates are
// missing.
TEST_F(DurabilityTest,
       CorruptNewestCheckpointAfterLogRemovalWithEmptyLogIsDataLoss) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 5, 72);
  const std::string dir = Path("data");
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (const Batch& b : batches) MustApply(*store, "m", b);
    ASSERT_TRUE(store->Close().ok());
  }
  const std::string model_dir = ModelDirOf(dir, "m");
  ASSERT_EQ(ListDir(model_dir),
            (std::vector<std::string>{Ckpt(1), Ckpt(6), Wal(7)}));
  const std::string checkpoint = JoinPath(model_dir, Ckpt(6));
  FlipByte(checkpoint, fs::file_size(checkpoint) / 2);

  RecoveryReport report;
  auto store = MustOpen(Durable(dir), &report);
  ASSERT_NE(store, nullptr);
  // Regression: ModelFiles::Read used to fall back to checkpoint-1 and, the
  // only segment (wal-7) holding no record, find no gap: the model was
  // served at version 1 with all-zero weights.
  EXPECT_TRUE(report.recovered.empty())
      << "served at version " << store->GetModel("m")->version
      << "; notes: " << Joined(report.notes);
  ASSERT_EQ(Names(report.failed), std::vector<std::string>{"m"});
  EXPECT_TRUE(HasCode(report.failed[0].second, StatusCode::kDataLoss));
  EXPECT_TRUE(HasCode(store->GetModel("m").status(), StatusCode::kDataLoss));
}

// When the log before the newest checkpoint is still there (its removal
// failed), a corrupt newest checkpoint is skipped: the older one plus the log
// give the same model.
TEST_F(DurabilityTest, CorruptNewestCheckpointFallsBackWhenTheLogIsKept) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 7, 81);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  {
    auto store = MustOpen(Durable(dir, &fault));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    for (int i = 0; i < 5; ++i) MustApply(*store, "m", batches[i]);
    fault.FailRemoveFiles("/wal-", 1000);
    const absl::Status checkpointed = store->Checkpoint(/*force=*/true);
    EXPECT_FALSE(checkpointed.ok());
    EXPECT_TRUE(absl::StrContains(checkpointed.message(), "unlink"))
        << checkpointed;
    fault.ClearFaults();
    for (int i = 5; i < 7; ++i) MustApply(*store, "m", batches[i]);
    EXPECT_EQ(ListDir(ModelDirOf(dir, "m")),
              (std::vector<std::string>{Ckpt(1), Ckpt(6), Wal(2), Wal(7)}));
    CrashCopy(dir, crash);
  }
  const std::string checkpoint = JoinPath(ModelDirOf(crash, "m"), Ckpt(6));
  FlipByte(checkpoint, fs::file_size(checkpoint) / 2);
  RecoveryReport report;
  auto store = MustOpen(Durable(crash), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
  ASSERT_EQ(report.notes.size(), 1u) << Joined(report.notes);
  EXPECT_TRUE(absl::StrContains(report.notes[0], "corrupt checkpoint"));
  EXPECT_TRUE(absl::StrContains(report.notes[0], Ckpt(6)));
  auto ref = Reference("m", spec, batches, 7);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

}  // namespace
}  // namespace lepton
