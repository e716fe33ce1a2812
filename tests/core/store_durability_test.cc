// Durability tests of the model store (core/store/model_store.h) on a data
// directory: restarts, crashes (a copy of the data directory taken while the
// store is running, with acknowledged updates), torn and corrupt files,
// checkpoints, rollbacks, export/import, idempotent retries, injected I/O
// faults (tests/core/fault_file_system.h) and group commit.
//
// Every recovered model is compared bit for bit (weights, optimizer state,
// counters, version) with a memory-only reference store that applied exactly
// the same updates. Each test runs in its own fresh directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/storage/update_journal.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "tests/core/fault_file_system.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton {
namespace {

namespace fs = std::filesystem;

using absl::StatusCode;

// ------------------------------------------------------------ Workloads

enum class Kind { kLogistic, kSoftmax, kLinear };

std::string KindName(Kind kind) {
  switch (kind) {
    case Kind::kLogistic:
      return "LogisticAdagrad";
    case Kind::kSoftmax:
      return "SoftmaxSgdPowerT";
    case Kind::kLinear:
      return "LinearSgd";
  }
  return "?";
}

ModelSpec SpecFor(Kind kind) {
  ModelSpec spec;
  spec.num_features = 48;
  switch (kind) {
    case Kind::kLogistic:
      spec.type = ModelType::kLogisticRegression;
      spec.optimizer.kind = OptimizerKind::kAdagrad;
      spec.optimizer.learning_rate = 0.2f;
      spec.optimizer.initial_accumulator = 0.1f;
      spec.l2 = 1e-3f;
      spec.minibatch_size = 4;
      break;
    case Kind::kSoftmax:
      spec.type = ModelType::kSoftmaxRegression;
      spec.num_classes = 3;
      spec.optimizer.kind = OptimizerKind::kSgd;
      spec.optimizer.learning_rate = 0.1f;
      spec.optimizer.power_t = 0.5f;  // the rate depends on the step count
      spec.minibatch_size = 1;
      break;
    case Kind::kLinear:
      spec.type = ModelType::kLinearRegression;
      spec.optimizer.kind = OptimizerKind::kSgd;
      spec.optimizer.learning_rate = 0.01f;
      spec.optimizer.power_t = 0.25f;
      spec.l2 = 1e-4f;
      spec.minibatch_size = 8;
      break;
  }
  return spec;
}

// One Update call.
struct Batch {
  std::vector<Example> examples;
  UpdateOptions options;
  std::string id;  // update id; empty = none
};

// `n` batches of 3 to 9 examples for `spec`, dense and sparse mixed, labels
// from a fixed hidden linear function; every 4th batch (from the 2nd) runs 3
// epochs, every 5th (from the 4th) overrides the learning rate. With a
// non-empty `id_prefix`, batch b has update id id_prefix + b.
std::vector<Batch> MakeBatches(const ModelSpec& spec, int n, uint32_t seed,
                               absl::string_view id_prefix = "") {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int64_t d = spec.num_features;
  const int32_t k = spec.num_outputs();
  const auto truth = [](int64_t f, int32_t o) {
    return std::sin(0.7f * static_cast<float>(f) + 1.3f * o + 0.1f);
  };
  std::vector<Batch> batches(n);
  for (int b = 0; b < n; ++b) {
    Batch& batch = batches[b];
    const int size = 3 + static_cast<int>(rng() % 7);
    for (int i = 0; i < size; ++i) {
      Example e;
      std::vector<float> z(k);
      for (int32_t o = 0; o < k; ++o) z[o] = truth(d, o);  // the bias
      if ((b + i) % 3 != 2) {
        e.features.dense.resize(d);
        for (int64_t f = 0; f < d; ++f) {
          e.features.dense[f] = value(rng);
          for (int32_t o = 0; o < k; ++o) {
            z[o] += truth(f, o) * e.features.dense[f];
          }
        }
      } else {
        std::set<uint32_t> picked;
        const size_t nnz = 1 + rng() % 6;
        while (picked.size() < nnz) picked.insert(rng() % d);
        for (uint32_t f : picked) {
          e.features.indices.push_back(f);
          e.features.values.push_back(2 * value(rng));
          for (int32_t o = 0; o < k; ++o) {
            z[o] += truth(f, o) * e.features.values.back();
          }
        }
      }
      switch (spec.type) {
        case ModelType::kLogisticRegression:
          e.label = z[0] > 0 ? 1.0f : 0.0f;
          break;
        case ModelType::kSoftmaxRegression:
          e.label = static_cast<float>(std::max_element(z.begin(), z.end()) -
                                       z.begin());
          break;
        default:
          e.label = 0.5f * z[0] + 0.05f * value(rng);
          break;
      }
      e.weight = i % 4 == 3 ? 0.5f : (i % 5 == 4 ? 2.0f : 1.0f);
      batch.examples.push_back(std::move(e));
    }
    if (b % 4 == 1) batch.options.epochs = 3;
    if (b % 5 == 3) {
      batch.options.learning_rate = spec.optimizer.learning_rate * 0.5f;
    }
    if (!id_prefix.empty()) batch.id = absl::StrCat(id_prefix, b);
  }
  return batches;
}

std::vector<Features> Probes(const std::vector<Batch>& batches) {
  std::vector<Features> probes;
  for (const Batch& b : batches) {
    for (const Example& e : b.examples) probes.push_back(e.features);
  }
  return probes;
}

// ------------------------------------------------------------ Model images

// Everything a version is, to compare bit for bit.
struct Image {
  uint64_t version = 0;
  ModelCounters counters;
  std::vector<float> weights;
  std::vector<float> state;
};

Image Capture(const ModelStore& store, absl::string_view name,
              uint64_t version = 0) {
  Image image;
  absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
      store.AcquireVersion(name, version);
  if (!v.ok()) {
    ADD_FAILURE() << "AcquireVersion(" << name << ", " << version
                  << "): " << v.status();
    return image;
  }
  image.version = (*v)->version();
  image.counters = (*v)->counters();
  image.weights = AllWeights(**v);
  image.state = AllState(**v);
  return image;
}

::testing::AssertionResult SameFloats(const char* what,
                                      const std::vector<float>& a,
                                      const std::vector<float>& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure()
           << what << ": " << a.size() << " vs " << b.size() << " values";
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << what << "[" << i << "] differs: " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Weights, optimizer state and counters bit-identical (versions may differ).
::testing::AssertionResult SameParams(const Image& actual,
                                      const Image& expected) {
  if (::testing::AssertionResult r =
          SameFloats("weights", actual.weights, expected.weights);
      !r) {
    return r;
  }
  if (::testing::AssertionResult r =
          SameFloats("optimizer state", actual.state, expected.state);
      !r) {
    return r;
  }
  const ModelCounters& a = actual.counters;
  const ModelCounters& e = expected.counters;
  if (a.examples_seen != e.examples_seen || a.updates != e.updates ||
      a.steps != e.steps ||
      std::memcmp(&a.weight_seen, &e.weight_seen, sizeof(double)) != 0 ||
      std::memcmp(&a.loss_sum, &e.loss_sum, sizeof(double)) != 0 ||
      std::memcmp(&a.correct_weight, &e.correct_weight, sizeof(double)) != 0) {
    return ::testing::AssertionFailure()
           << "counters differ: examples_seen " << a.examples_seen << " vs "
           << e.examples_seen << ", updates " << a.updates << " vs "
           << e.updates << ", steps " << a.steps << " vs " << e.steps
           << ", weight_seen " << a.weight_seen << " vs " << e.weight_seen
           << ", loss_sum " << a.loss_sum << " vs " << e.loss_sum
           << ", correct_weight " << a.correct_weight << " vs "
           << e.correct_weight;
  }
  return ::testing::AssertionSuccess();
}

// SameParams and the same version.
::testing::AssertionResult SameModel(const Image& actual,
                                     const Image& expected) {
  if (actual.version != expected.version) {
    return ::testing::AssertionFailure()
           << "version " << actual.version << ", expected " << expected.version;
  }
  return SameParams(actual, expected);
}

::testing::AssertionResult SameResult(const UpdateResult& actual,
                                      const UpdateResult& expected,
                                      bool compare_version = true) {
  if (compare_version && actual.version != expected.version) {
    return ::testing::AssertionFailure() << "result version " << actual.version
                                         << ", expected " << expected.version;
  }
  if (actual.examples != expected.examples ||
      std::memcmp(&actual.loss_before, &expected.loss_before, sizeof(double)) !=
          0 ||
      actual.accuracy_before.has_value() !=
          expected.accuracy_before.has_value() ||
      (actual.accuracy_before.has_value() &&
       *actual.accuracy_before != *expected.accuracy_before)) {
    return ::testing::AssertionFailure()
           << "result differs: examples " << actual.examples << " vs "
           << expected.examples << ", loss_before " << actual.loss_before
           << " vs " << expected.loss_before << ", accuracy_before "
           << actual.accuracy_before.value_or(-1) << " vs "
           << expected.accuracy_before.value_or(-1);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult HasCode(const absl::Status& s, StatusCode code,
                                   absl::string_view substring = "") {
  if (s.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << absl::StatusCodeToString(code) << ", got " << s;
  }
  if (!absl::StrContains(s.message(), substring)) {
    return ::testing::AssertionFailure()
           << "message \"" << s.message() << "\" lacks \"" << substring << "\"";
  }
  return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------ Stores

StoreOptions Durable(const std::string& dir,
                     FileSystem* file_system = nullptr) {
  StoreOptions options;
  options.data_dir = dir;
  if (file_system != nullptr) options.fs = file_system;
  return options;
}

std::unique_ptr<ModelStore> MustOpen(const StoreOptions& options,
                                     RecoveryReport* report = nullptr) {
  RecoveryReport ignored;
  absl::StatusOr<std::unique_ptr<ModelStore>> store =
      ModelStore::Open(options, report != nullptr ? report : &ignored);
  if (!store.ok()) {
    ADD_FAILURE() << "Open(" << options.data_dir << "): " << store.status();
    return nullptr;
  }
  return *std::move(store);
}

absl::StatusOr<UpdateResult> Apply(ModelStore& store, absl::string_view name,
                                   const Batch& batch) {
  return store.Update(name, Views(batch.examples), batch.options, batch.id);
}

UpdateResult MustApply(ModelStore& store, absl::string_view name,
                       const Batch& batch) {
  absl::StatusOr<UpdateResult> r = Apply(store, name, batch);
  if (!r.ok()) {
    ADD_FAILURE() << "Update(" << name << "): " << r.status();
    return {};
  }
  return *r;
}

// A memory-only store holding `name`, created with `spec`, after batches
// [0, n).
std::unique_ptr<ModelStore> Reference(absl::string_view name,
                                      const ModelSpec& spec,
                                      const std::vector<Batch>& batches,
                                      size_t n) {
  auto store = std::make_unique<ModelStore>();
  absl::StatusOr<ModelInfo> info = store->CreateModel(name, spec);
  EXPECT_TRUE(info.ok()) << info.status();
  for (size_t i = 0; i < n; ++i) MustApply(*store, name, batches[i]);
  return store;
}

std::string Joined(const std::vector<std::string>& lines) {
  return absl::StrJoin(lines, "\n");
}

std::vector<std::string> Names(
    const std::vector<std::pair<std::string, absl::Status>>& failed) {
  std::vector<std::string> names;
  for (const auto& [name, status] : failed) names.push_back(name);
  return names;
}

// ------------------------------------------------------------ Files

std::string ModelDirOf(const std::string& data_dir, absl::string_view name) {
  return absl::StrCat(data_dir, "/models/", name);
}

std::string Ckpt(uint64_t version) {
  return ModelFiles::CheckpointFileName(version);
}

std::string Wal(uint64_t first_version) {
  return SegmentFileName(first_version);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The path of the newest log segment of a model directory.
std::string NewestSegment(const std::string& model_dir) {
  std::string newest;
  uint64_t newest_first = 0;
  for (const std::string& name : ListDir(model_dir)) {
    uint64_t first;
    if (ParseSegmentFileName(name, &first) &&
        (newest.empty() || first > newest_first)) {
      newest = name;
      newest_first = first;
    }
  }
  EXPECT_FALSE(newest.empty()) << "no log segment in " << model_dir;
  return JoinPath(model_dir, newest);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, absl::string_view data,
                bool append = false) {
  std::ofstream out(
      path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  EXPECT_TRUE(out.good()) << path;
}

void FlipByte(const std::string& path, size_t offset) {
  std::string bytes = ReadBytes(path);
  ASSERT_LT(offset, bytes.size()) << path;
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5A);
  WriteBytes(path, bytes);
}

// The offsets of the records of a log segment's content (framing only).
std::vector<uint64_t> RecordOffsets(absl::string_view contents) {
  std::vector<uint64_t> offsets;
  uint64_t offset = kSegmentHeaderBytes;
  while (offset + kRecordHeaderBytes <= contents.size()) {
    uint32_t payload_size;
    std::memcpy(&payload_size, contents.data() + offset, sizeof(payload_size));
    if (offset + kRecordHeaderBytes + payload_size > contents.size()) break;
    offsets.push_back(offset);
    offset += kRecordHeaderBytes + payload_size;
  }
  return offsets;
}

// A crash: the data directory as it is now, while the store is running.
void CrashCopy(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

// ------------------------------------------------------------ Fixtures

class DurabilityTest : public testing::ScratchDirTest {};

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
                      StatusCode::kUnavailable, "until the server restarts"));
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
                      StatusCode::kUnavailable, "until the server restarts"));
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

// ------------------------------------------------------------ Faults

TEST_F(DurabilityTest, FailedAppendChangesNothing) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 8, 171, "a");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  auto ref = Reference("m", spec, batches, 3);
  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  const Image before = Capture(*store, "m");
  const std::string segment = NewestSegment(ModelDirOf(dir, "m"));
  const uint64_t size = fs::file_size(segment);

  // A full disk.
  fault.FailAppends("/wal-", 1);
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[3]).status(),
                      StatusCode::kUnavailable, "No space left on device"));
  EXPECT_EQ(fault.injected(), 1);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), before));
  EXPECT_EQ(store->GetModel("m")->version, 4u);
  EXPECT_EQ(fs::file_size(segment), size);
  // A write cut short: 10 bytes of the record reach the file.
  fault.FailAppends("/wal-", 1, /*partial_bytes=*/10);
  absl::Status partial = Apply(*store, "m", batches[3]).status();
  EXPECT_TRUE(HasCode(partial, StatusCode::kUnavailable, "not applied"));
  EXPECT_TRUE(HasCode(partial, StatusCode::kUnavailable, "/wal-"));
  EXPECT_EQ(fault.injected(), 2);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), before));
  EXPECT_EQ(fs::file_size(segment), size);  // cut back

  // The faults are spent: the same update, id included, now applies.
  for (int i = 3; i < 7; ++i) {
    EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[i]),
                           MustApply(*ref, "m", batches[i])));
  }
  // The failed attempts are not in the log.
  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
  }
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

// A failed append whose partial record cannot be cut back breaks the log:
// the model takes no change until a restart, which drops the partial record
// as a torn tail.
TEST_F(DurabilityTest, FailedAppendThatCannotBeUndoneBreaksTheLog) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 181, "b");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  auto ref = Reference("m", spec, batches, 3);
  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  const Image before = Capture(*store, "m");

  fault.FailAppends("/wal-", 1, /*partial_bytes=*/10);
  fault.FailTruncates("/wal-", 1);
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[3]).status(),
                      StatusCode::kUnavailable, "No space left on device"));
  EXPECT_EQ(fault.injected(), 2);
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[3]).status(),
                      StatusCode::kUnavailable, "until the server restarts"));
  EXPECT_TRUE(
      HasCode(store->Rollback("m", 2).status(), StatusCode::kUnavailable));
  EXPECT_TRUE(SameModel(Capture(*store, "m"), before));

  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    ASSERT_EQ(report.notes.size(), 1u) << Joined(report.notes);
    EXPECT_TRUE(absl::StrContains(report.notes[0], "torn"));
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
    EXPECT_TRUE(SameResult(MustApply(*recovered, "m", batches[3]),
                           MustApply(*ref, "m", batches[3])));
  }
  store.reset();  // Close() cannot checkpoint a broken log; not asserted
  auto ref3 = Reference("m", spec, batches, 3);
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref3, "m")));
}

// fsync=always: an update whose fsync fails is not answered OK and not
// published; the log is then unusable until a restart, which recovers the
// acknowledged state (the failed fsync dropped the record's pages).
TEST_F(DurabilityTest, FailedSyncFailsTheUpdateAndTheLogUntilRestart) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 191, "s");
  const std::vector<Features> probes = Probes(batches);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  auto ref = Reference("m", spec, batches, 3);
  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  const Image before = Capture(*store, "m");

  fault.FailSyncs("/wal-", 1, /*drop_unsynced=*/true);
  // Kept until the store is closed: this status comes from the log
  // syncer's thread, whose copies are released inside Debian's Abseil, which
  // is not TSan-instrumented; released after the syncer is joined, TSan sees
  // the order.
  const absl::StatusOr<UpdateResult> failed = Apply(*store, "m", batches[3]);
  EXPECT_TRUE(HasCode(failed.status(), StatusCode::kUnavailable, "fdatasync"));
  EXPECT_EQ(fault.injected(), 1);
  EXPECT_EQ(store->GetModel("m")->version, 4u);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), before));
  EXPECT_TRUE(
      HasCode(store->AcquireVersion("m", 5).status(), StatusCode::kNotFound));
  absl::StatusOr<Predictions> p = store->Predict("m", Views(probes));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->version, 4u);
  // The log stays unusable, the fault long spent.
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[4]).status(),
                      StatusCode::kUnavailable, "until the server restarts"));
  EXPECT_TRUE(HasCode(Apply(*store, "m", batches[3]).status(),
                      StatusCode::kUnavailable));
  EXPECT_TRUE(
      HasCode(store->Rollback("m", 2).status(), StatusCode::kUnavailable));
  EXPECT_TRUE(SameModel(Capture(*store, "m"), before));

  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
    // The client's retry applies the update now.
    EXPECT_TRUE(SameResult(MustApply(*recovered, "m", batches[3]),
                           MustApply(*ref, "m", batches[3])));
  }
  store.reset();
  auto ref3 = Reference("m", spec, batches, 3);
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref3, "m")));
  EXPECT_TRUE(SameResult(MustApply(*store, "m", batches[3]),
                         MustApply(*ref3, "m", batches[3])));
}

// As above, but the record reached the disk although its fsync failed: a
// restart may or may not hold it, and the client's retry (same update id)
// ends in the same state either way.
TEST_F(DurabilityTest, FailedSyncWhoseRecordSurvivedIsRetriedOnce) {
  const ModelSpec spec = SpecFor(Kind::kLinear);
  const std::vector<Batch> batches = MakeBatches(spec, 6, 201, "r");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  FaultFileSystem fault;
  auto store = MustOpen(Durable(dir, &fault));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  auto ref3 = Reference("m", spec, batches, 3);
  auto ref4 = Reference("m", spec, batches, 4);
  for (int i = 0; i < 3; ++i) MustApply(*store, "m", batches[i]);  // v4
  fault.FailSyncs("/wal-", 1);
  // Kept until the store is closed: this status comes from the log
  // syncer's thread, whose copies are released inside Debian's Abseil, which
  // is not TSan-instrumented; released after the syncer is joined, TSan sees
  // the order.
  const absl::StatusOr<UpdateResult> failed = Apply(*store, "m", batches[3]);
  EXPECT_TRUE(HasCode(failed.status(), StatusCode::kUnavailable, "fdatasync"));
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref3, "m")));
  CrashCopy(dir, crash);
  store.reset();

  auto recovered = MustOpen(Durable(crash));
  ASSERT_NE(recovered, nullptr);
  const Image image = Capture(*recovered, "m");
  ASSERT_TRUE(image.version == 4 || image.version == 5) << image.version;
  EXPECT_TRUE(
      SameModel(image, Capture(image.version == 4 ? *ref3 : *ref4, "m")));
  // Retried: applied once.
  absl::StatusOr<UpdateResult> retry = Apply(*recovered, "m", batches[3]);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(SameResult(*retry, MustApply(*ref3, "m", batches[3])));
  EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref4, "m")));
}

// ------------------------------------------------------------ Group commit

TEST_F(DurabilityTest, GroupCommitFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  std::vector<std::vector<Batch>> batches;
  for (int t = 0; t < kThreads; ++t) {
    batches.push_back(
        MakeBatches(spec, kPerThread, 1000 + t, absl::StrCat("t", t, "-")));
  }
  FaultFileSystem counting;  // no faults: counts the fsyncs
  StoreOptions options = Durable(dir, &counting);
  options.checkpoint_every_updates = 37;
  options.keep_checkpoints = 3;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());

  std::vector<std::vector<absl::StatusOr<UpdateResult>>> results(kThreads);
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const Batch& b : batches[t]) {
        results[t].push_back(Apply(*store, "m", b));
      }
      --running;
    });
  }
  // Checkpoints and readers run meanwhile.
  std::atomic<int> checkpoint_errors{0};
  std::thread checkpointer([&] {
    while (running > 0) {
      if (!store->Checkpoint(/*force=*/false).ok()) ++checkpoint_errors;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::atomic<int> reader_errors{0};
  std::thread reader([&] {
    const std::vector<Features> probes = Probes({batches[0][0]});
    uint64_t last = 0;
    while (running > 0) {
      absl::StatusOr<Predictions> p = store->Predict("m", Views(probes));
      if (!p.ok() || p->version < last) ++reader_errors;
      if (p.ok()) last = p->version;
    }
  });
  for (std::thread& t : threads) t.join();
  checkpointer.join();
  reader.join();
  EXPECT_EQ(checkpoint_errors, 0);
  EXPECT_EQ(reader_errors, 0);

  // Every update succeeded, each with its own version: 2 to 401.
  std::vector<const Batch*> by_version(kThreads * kPerThread + 2, nullptr);
  std::vector<UpdateResult> result_of(by_version.size());
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(results[t].size(), static_cast<size_t>(kPerThread));
    uint64_t previous = 0;
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_TRUE(results[t][i].ok()) << results[t][i].status();
      const uint64_t v = results[t][i]->version;
      ASSERT_GE(v, 2u);
      ASSERT_LT(v, by_version.size());
      ASSERT_EQ(by_version[v], nullptr) << "version " << v << " twice";
      EXPECT_GT(v, previous);  // a thread's updates in its order
      previous = v;
      by_version[v] = &batches[t][i];
      result_of[v] = *results[t][i];
    }
  }
  EXPECT_EQ(store->GetModel("m")->version, 401u);
  RecordProperty("fsyncs", static_cast<int>(counting.syncs()));
  EXPECT_GT(counting.syncs(), 0);

  // The same updates in version order, in memory: each was scored by the
  // version before it, and the end state is the same.
  ModelStore ref;
  ASSERT_TRUE(ref.CreateModel("m", spec).ok());
  for (size_t v = 2; v < by_version.size(); ++v) {
    ASSERT_NE(by_version[v], nullptr);
    EXPECT_TRUE(SameResult(result_of[v], MustApply(ref, "m", *by_version[v])))
        << "version " << v;
  }
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));

  // No checkpoint is due now, so the store writes nothing during the copy.
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());
  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(ref, "m")));
    absl::StatusOr<UpdateResult> retry = Apply(*recovered, "m", batches[3][49]);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_TRUE(SameResult(*retry, *results[3][49]));
  }
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
}

// ------------------------------------------------------------ Fsync policies

class FsyncPolicyTest : public DurabilityTest,
                        public ::testing::WithParamInterface<FsyncPolicy> {};

TEST_P(FsyncPolicyTest, UpdatesAreAnsweredAndRecovered) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 20, 211, "p");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  StoreOptions options = Durable(dir);
  options.fsync = GetParam();
  options.fsync_interval = absl::Milliseconds(2);
  auto ref = Reference("m", spec, batches, 20);
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<UpdateResult> r;
    if (i % 2 == 0) {
      r = Apply(*store, "m", batches[i]);
    } else {  // the asynchronous form
      std::promise<absl::StatusOr<UpdateResult>> answered;
      store->StartUpdate("m", Views(batches[i].examples), batches[i].options,
                         batches[i].id, [&](absl::StatusOr<UpdateResult> a) {
                           answered.set_value(std::move(a));
                         });
      r = answered.get_future().get();
    }
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, static_cast<uint64_t>(i + 2));
    EXPECT_EQ(store->GetModel("m")->version, r->version);  // published
  }
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  // Every record was written before its answer (synced or not, a copy of
  // the files sees it).
  CrashCopy(dir, crash);
  {
    auto recovered = MustOpen(Durable(crash));
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
  }
  ASSERT_TRUE(store->Close().ok());
  RecoveryReport report;
  store = MustOpen(options, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

INSTANTIATE_TEST_SUITE_P(Policies, FsyncPolicyTest,
                         ::testing::Values(FsyncPolicy::kAlways,
                                           FsyncPolicy::kInterval,
                                           FsyncPolicy::kNever),
                         [](const ::testing::TestParamInfo<FsyncPolicy>& i) {
                           switch (i.param) {
                             case FsyncPolicy::kAlways:
                               return std::string("Always");
                             case FsyncPolicy::kInterval:
                               return std::string("Interval");
                             case FsyncPolicy::kNever:
                               return std::string("Never");
                           }
                           return std::string("?");
                         });

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
