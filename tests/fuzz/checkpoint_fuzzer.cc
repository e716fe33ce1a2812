// Fuzz target: the checkpoint reader, i.e. start-up recovery of a model
// directory (ModelFiles::Read, core/storage/model_files.h: the newest
// checkpoint that reads back intact, DecodeModelState, then the log segments
// after it, replayed by Model::Recover), through ModelStore::Open on an
// in-memory file system.
//
// Input: u8 flags, then up to 8 files of the model directory "m", each
//   u8 kind | u64 version | u32 length | bytes
// kind % 3: 0 a checkpoint "checkpoint-<version>.ckpt", 1 a log segment
// "wal-<version>.log", 2 the temporary file of an interrupted checkpoint
// "checkpoint-<version>.ckpt.tmp".
//   flags & 1: every checkpoint's and segment's sizes and checksums
//              rewritten to match the bytes (fuzz_support.h)
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - a model that cannot be recovered is DATA_LOSS;
//   - a recovered model predicts and takes an update (or refuses it with a
//     client error); the store closes cleanly;
//   - opened again, the store recovers the model at the same version, with
//     bit-identical predictions (a clean shutdown leaves a directory that
//     recovers exactly).
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/storage/model_files.h"
#include "core/storage/update_journal.h"
#include "core/store/model_store.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/memory_file_system.h"

namespace lepton::fuzz {
namespace {

constexpr char kModelDir[] = "/d/models/m";

StoreOptions Options(MemoryFileSystem* fs) {
  StoreOptions options;
  options.data_dir = "/d";
  options.fs = fs;
  // No thread per store (no syncer, no checkpointer): ASan keeps memory for
  // every thread ever started, which -rss_limit_mb would count.
  options.fsync = FsyncPolicy::kNever;
  options.background_checkpoints = false;
  options.prediction_cache_bytes = 1 << 20;
  return options;
}

// Index 0 suits every model; label 0 every type.
const uint32_t kIndex = 0;
const float kOne = 1;
const FeaturesView kInstance{{}, {&kIndex, 1}, {&kOne, 1}};

std::vector<float> Scores(const ModelStore& store) {
  absl::StatusOr<Predictions> p = store.Predict("m", {&kInstance, 1});
  FUZZ_CHECK(p.ok(), "%s", p.status().ToString().c_str());
  return p->scores;
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  MemoryFileSystem fs;
  FUZZ_CHECK(fs.CreateDirectories(kModelDir).ok());
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    const uint8_t kind = in.U8() % 3;
    const uint64_t version = in.U64();
    std::string content(in.Chunk());
    std::string name;
    if (kind == 0) {
      if (flags & 1) FixModelStateChecksum(&content);
      name = ModelFiles::CheckpointFileName(version);
    } else if (kind == 1) {
      if (flags & 1) FixSegmentChecksums(&content);
      name = SegmentFileName(version);
    } else {
      name = ModelFiles::CheckpointFileName(version) + ".tmp";
    }
    fs.Put(absl::StrCat(kModelDir, "/", name), std::move(content));
  }

  RecoveryReport report;
  absl::StatusOr<std::unique_ptr<ModelStore>> store =
      ModelStore::Open(Options(&fs), &report);
  FUZZ_CHECK(store.ok(), "%s", store.status().ToString().c_str());
  for (const auto& [name, status] : report.failed) {
    FUZZ_CHECK(absl::IsDataLoss(status), "%s", status.ToString().c_str());
  }
  if (report.recovered.empty()) return;

  Scores(**store);
  ExampleView example;
  example.features = kInstance;
  absl::StatusOr<UpdateResult> u = (*store)->Update("m", {&example, 1});
  FUZZ_CHECK(u.ok() || absl::IsInvalidArgument(u.status()) ||
                 absl::IsFailedPrecondition(u.status()),
             "%s", u.status().ToString().c_str());
  const uint64_t version = (*store)->GetModel("m")->version;
  const std::vector<float> scores = Scores(**store);
  const absl::Status closed = (*store)->Close();
  FUZZ_CHECK(closed.ok(), "%s", closed.ToString().c_str());
  store->reset();

  RecoveryReport again;
  store = ModelStore::Open(Options(&fs), &again);
  FUZZ_CHECK(store.ok(), "%s", store.status().ToString().c_str());
  FUZZ_CHECK(again.recovered.size() == 1 && again.failed.empty(), "%s",
             again.failed.empty() ? "not recovered"
                                  : again.failed[0].second.ToString().c_str());
  FUZZ_CHECK((*store)->GetModel("m")->version == version);
  const std::vector<float> reopened = Scores(**store);
  FUZZ_CHECK(reopened.size() == scores.size() &&
             std::memcmp(reopened.data(), scores.data(),
                         scores.size() * sizeof(float)) == 0);
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
