// What the durability tests of the model store share (store_*_test.cc):
// seeded workloads of Update batches for three kinds of model, bit-exact
// images of a version and the assertions that compare them, stores opened on
// a data directory or in memory, and the files of a data directory (log
// segments, checkpoints, torn and corrupted bytes).
//
// The tests compare every recovered model bit for bit (weights, optimizer
// state, counters, version) with a memory-only reference store that applied
// exactly the same updates:
//
//   const std::vector<Batch> batches = MakeBatches(SpecFor(kind), 20, seed);
//   auto store = MustOpen(Durable(Path("data")));
//   ... MustApply(*store, "m", batches[i]) ...
//   auto ref = Reference("m", spec, batches, 20);
//   EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
//
// DurabilityTest gives each test a fresh directory (root_, Path("data")).
// The functions report a failed call as a test failure and return an empty
// value, so that a test goes on to its next assertion.
#ifndef LEPTON_TESTS_CORE_DURABILITY_TEST_SUPPORT_H_
#define LEPTON_TESTS_CORE_DURABILITY_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/storage/model_files.h"
#include "core/storage/update_journal.h"
#include "core/storage/update_log_format.h"
#include "core/store/model_store.h"
#include "core/util/file_system.h"
#include "tests/core/test_support.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton {

// ------------------------------------------------------------ Workloads

enum class Kind { kLogistic, kSoftmax, kLinear };

inline std::string KindName(Kind kind) {
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

inline ModelSpec SpecFor(Kind kind) {
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
inline std::vector<Batch> MakeBatches(const ModelSpec& spec, int n,
                                      uint32_t seed,
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

inline std::vector<Features> Probes(const std::vector<Batch>& batches) {
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

inline Image Capture(const ModelStore& store, absl::string_view name,
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

inline ::testing::AssertionResult SameFloats(const char* what,
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
inline ::testing::AssertionResult SameParams(const Image& actual,
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
inline ::testing::AssertionResult SameModel(const Image& actual,
                                            const Image& expected) {
  if (actual.version != expected.version) {
    return ::testing::AssertionFailure()
           << "version " << actual.version << ", expected " << expected.version;
  }
  return SameParams(actual, expected);
}

inline ::testing::AssertionResult SameResult(const UpdateResult& actual,
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

inline ::testing::AssertionResult HasCode(const absl::Status& s,
                                          absl::StatusCode code,
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

inline StoreOptions Durable(const std::string& dir,
                            FileSystem* file_system = nullptr) {
  StoreOptions options;
  options.data_dir = dir;
  if (file_system != nullptr) options.fs = file_system;
  return options;
}

inline std::unique_ptr<ModelStore> MustOpen(const StoreOptions& options,
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

inline absl::StatusOr<UpdateResult> Apply(ModelStore& store,
                                          absl::string_view name,
                                          const Batch& batch) {
  return store.Update(name, Views(batch.examples), batch.options, batch.id);
}

inline UpdateResult MustApply(ModelStore& store, absl::string_view name,
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
inline std::unique_ptr<ModelStore> Reference(absl::string_view name,
                                             const ModelSpec& spec,
                                             const std::vector<Batch>& batches,
                                             size_t n) {
  auto store = std::make_unique<ModelStore>();
  absl::StatusOr<ModelInfo> info = store->CreateModel(name, spec);
  EXPECT_TRUE(info.ok()) << info.status();
  for (size_t i = 0; i < n; ++i) MustApply(*store, name, batches[i]);
  return store;
}

inline std::string Joined(const std::vector<std::string>& lines) {
  return absl::StrJoin(lines, "\n");
}

inline std::vector<std::string> Names(
    const std::vector<std::pair<std::string, absl::Status>>& failed) {
  std::vector<std::string> names;
  for (const auto& [name, status] : failed) names.push_back(name);
  return names;
}

// ------------------------------------------------------------ Files

inline std::string ModelDirOf(const std::string& data_dir,
                              absl::string_view name) {
  return absl::StrCat(data_dir, "/models/", name);
}

inline std::string Ckpt(uint64_t version) {
  return ModelFiles::CheckpointFileName(version);
}

inline std::string Wal(uint64_t first_version) {
  return SegmentFileName(first_version);
}

inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const std::filesystem::directory_entry& e :
       std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The path of the newest log segment of a model directory.
inline std::string NewestSegment(const std::string& model_dir) {
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

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteBytes(const std::string& path, absl::string_view data,
                       bool append = false) {
  std::ofstream out(
      path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  EXPECT_TRUE(out.good()) << path;
}

inline void FlipByte(const std::string& path, size_t offset) {
  std::string bytes = ReadBytes(path);
  ASSERT_LT(offset, bytes.size()) << path;
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5A);
  WriteBytes(path, bytes);
}

// The offsets of the records of a log segment's content (framing only).
inline std::vector<uint64_t> RecordOffsets(absl::string_view contents) {
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
inline void CrashCopy(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

// ------------------------------------------------------------ Fixtures

class DurabilityTest : public testing::ScratchDirTest {};

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_DURABILITY_TEST_SUPPORT_H_
