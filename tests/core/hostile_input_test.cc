// The core's readers under hostile input: their size limits, checked before
// anything is allocated, and the bugs the fuzz targets found (tests/fuzz/,
// docs/fuzzing.md), each kept as a test beside its input in the targets'
// corpus.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "tests/core/durability_test_support.h"

namespace lepton {
namespace {

namespace fs = std::filesystem;

TEST_F(DurabilityTest, ReadFileRefusesAFileOverItsLimitUnread) {
  const std::string path = Path("eleven");
  std::ofstream(path) << "hello world";
  absl::StatusOr<std::string> read = PosixFileSystem()->ReadFile(path, 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(read.status().message(),
                                "11 bytes or more, over the limit of 10"))
      << read.status();
  read = PosixFileSystem()->ReadFile(path, 11);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "hello world");
}

// A checkpoint file far larger than any model (here a sparse 17 GiB file,
// which takes no disk) costs the model, not the server: it is refused before
// a byte of it is read, where it used to be read whole.
TEST_F(DurabilityTest, AHugeCheckpointFileIsRefusedUnread) {
  const std::string dir = Path("data");
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 4;
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    ASSERT_TRUE(store->CreateModel("other", spec).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  const fs::path huge =
      fs::path(dir) / "models" / "m" / ModelFiles::CheckpointFileName(99);
  std::ofstream(huge).close();
  fs::resize_file(huge, kMaxModelStateBytes + 1);
  RecoveryReport report;
  auto store = MustOpen(Durable(dir), &report);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"other"});
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].first, "m");
  EXPECT_EQ(report.failed[0].second.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(report.failed[0].second.message(),
                                "over the limit of 17179869184"))
      << report.failed[0].second;
  EXPECT_EQ(DecodeModelState(std::string(64, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Found by checkpoint_fuzzer: a squared loss beyond the float range (a label
// near its end; max_gradient_norm keeps the step finite, so the update is
// applied) went into the drift detector as an infinite loss. The checkpoint
// written at shutdown then held a window that does not decode, and after a
// restart the model was lost (DATA_LOSS). The loss now saturates.
TEST_F(DurabilityTest, AHugeLossDoesNotMakeTheModelUnrecoverable) {
  const std::string dir = Path("data");
  ModelSpec spec;
  spec.type = ModelType::kLinearRegression;
  spec.num_features = 4;
  spec.optimizer.kind = OptimizerKind::kAdam;
  spec.max_gradient_norm = 10;
  spec.drift.detector.kind = DriftDetectorKind::kAdwin;
  Example e;
  e.features.dense = {0.5f, 1, -1, 0};
  e.label = -1.5e38f;
  const std::vector<Example> batch = {e, e};
  uint64_t version = 0;
  {
    auto store = MustOpen(Durable(dir));
    ASSERT_TRUE(store->CreateModel("m", spec).ok());
    absl::StatusOr<UpdateResult> r = store->Update("m", Views(batch));
    ASSERT_TRUE(r.ok()) << r.status();
    version = r->version;
    absl::StatusOr<std::string> blob = store->ExportModel("m", 0);
    ASSERT_TRUE(blob.ok()) << blob.status();
    EXPECT_TRUE(DecodeModelState(*blob).ok())
        << DecodeModelState(*blob).status();
    ASSERT_TRUE(store->Close().ok());
  }
  RecoveryReport report;
  auto store = MustOpen(Durable(dir), &report);
  ASSERT_TRUE(report.failed.empty()) << report.failed[0].second;
  EXPECT_EQ(store->GetModel("m")->version, version);
}

}  // namespace
}  // namespace lepton
