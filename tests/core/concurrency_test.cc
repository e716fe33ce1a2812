// Concurrency: readers predict from the newest version while writers update
// the same model (and another model) for about two seconds. Every prediction
// must come whole from one retained version, versions never go backwards for
// a reader, and writers publish in order. Runs under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"

namespace lepton {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kDuration = std::chrono::seconds(2);
constexpr int kReaders = 4;
constexpr int kWriters = 2;
// Bounds on the loops besides the time, so that a fast machine does not pile
// up versions without end (every version is retained in this test: about
// 2 KB each, as an update changes two pages).
constexpr int64_t kMaxUpdatesPerWriter = 5000;
constexpr int64_t kMaxPredictionsPerReader = 20000;
// Writers pause between updates, so that the test spans kDuration on a fast
// machine without reaching kMaxUpdatesPerWriter.
constexpr auto kWriterPause = std::chrono::microseconds(300);

// The shared model: logistic, 100000 features in ~1600 pages, so versions
// share most pages and a prediction reads many of them.
constexpr int64_t kSharedFeatures = 100000;
constexpr char kShared[] = "shared";
// The other model: softmax, single page, dense updates.
constexpr int64_t kOtherFeatures = 16;
constexpr int32_t kOtherClasses = 3;
constexpr char kOther[] = "other";

// Instances the readers predict: sparse over the rows the writers update,
// sparse over untouched rows, a dense one, and an empty one.
std::vector<Features> ReaderInstances(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<Features> x(4);
  x[0].indices = {0, 17, 100, 255, 128, 99840, 99999, 99900};
  for (size_t j = 0; j < x[0].indices.size(); ++j) {
    x[0].values.push_back(normal(rng));
  }
  x[1].indices = {99999, 50000, 12};
  x[1].values = {1.5f, -0.5f, 2};
  x[2].dense.resize(kSharedFeatures);
  for (float& v : x[2].dense) v = 0.01f * normal(rng);
  return x;
}

// A writer's update: sparse examples on two hot pages of the shared model,
// the first and the last (which also holds the bias).
std::vector<Example> SharedBatch(std::mt19937& rng) {
  std::normal_distribution<float> normal(0, 1);
  std::vector<Example> batch(4);
  for (Example& e : batch) {
    const uint32_t a = rng() % 256;
    const uint32_t b = 99840 + rng() % 160;
    e.features.indices = {a, b};
    e.features.values = {normal(rng), normal(rng)};
    e.label = static_cast<float>(rng() % 2);
  }
  return batch;
}

std::vector<Example> OtherBatch(std::mt19937& rng) {
  std::normal_distribution<float> normal(0, 1);
  std::vector<Example> batch(8);
  for (Example& e : batch) {
    e.features.dense.resize(kOtherFeatures);
    for (float& v : e.features.dense) v = normal(rng);
    e.label = static_cast<float>(rng() % kOtherClasses);
  }
  return batch;
}

// P(y = 1) recomputed from a version's weights, in double, plain loop.
double Recompute(const ModelVersion& v, const Features& f) {
  const int64_t d = v.spec().num_features;
  double z = v.weight(d);
  if (!f.dense.empty()) {
    for (int64_t j = 0; j < d; ++j) z += double{f.dense[j]} * v.weight(j);
  } else {
    for (size_t k = 0; k < f.indices.size(); ++k) {
      z += double{f.values[k]} * v.weight(f.indices[k]);
    }
  }
  return 1.0 / (1.0 + std::exp(-z));
}

struct ReaderResult {
  int64_t predictions = 0;
  int64_t checked = 0;  // predictions recomputed from the version's weights
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  std::vector<std::string> errors;
};

void Reader(const ModelStore& store, uint32_t seed,
            const std::atomic<bool>& stop, ReaderResult* out) {
  const std::vector<Features> instances = ReaderInstances(seed);
  const std::vector<FeaturesView> views = Views(instances);
  uint64_t last = 0;
  const auto deadline = Clock::now() + kDuration + std::chrono::seconds(5);
  while (out->predictions < kMaxPredictionsPerReader &&
         !stop.load(std::memory_order_acquire) && Clock::now() < deadline) {
    absl::StatusOr<Predictions> p = store.Predict(kShared, views);
    if (!p.ok()) {
      out->errors.push_back(absl::StrCat("Predict: ", p.status().ToString()));
      return;
    }
    ++out->predictions;
    if (p->version < last) {
      out->errors.push_back(
          absl::StrCat("version went back from ", last, " to ", p->version));
    }
    if (out->first_version == 0) out->first_version = p->version;
    last = p->version;
    absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
        store.AcquireVersion(kShared, p->version);
    if (!v.ok()) {
      out->errors.push_back(absl::StrCat("AcquireVersion(", p->version,
                                         "): ", v.status().ToString()));
      return;
    }
    // The same version, asked again, gives the same bits.
    const Predictions again = (*v)->Predict(views);
    if (again.version != p->version ||
        again.scores.size() != p->scores.size() ||
        std::memcmp(again.scores.data(), p->scores.data(),
                    p->scores.size() * sizeof(float)) != 0 ||
        again.labels != p->labels) {
      out->errors.push_back(
          absl::StrCat("version ", p->version, " predicted differently"));
    }
    // An independent recomputation from the version's weights.
    ++out->checked;
    for (size_t i = 0; i < instances.size(); ++i) {
      const double expected = Recompute(**v, instances[i]);
      if (std::fabs(p->value(i) - expected) > 1e-4 * std::fabs(expected)) {
        out->errors.push_back(absl::StrCat("version ", p->version, " instance ",
                                           i, ": predicted ", p->value(i),
                                           ", recomputed ", expected));
      }
    }
    if (out->errors.size() > 10) return;
  }
  out->last_version = last;
}

struct WriterResult {
  std::vector<uint64_t> versions;
  std::vector<std::string> errors;
};

void Writer(ModelStore& store, const char* model, uint32_t seed,
            std::vector<Example> (*make_batch)(std::mt19937&),
            const Clock::time_point end, WriterResult* out) {
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < kMaxUpdatesPerWriter && Clock::now() < end; ++i) {
    const std::vector<Example> batch = make_batch(rng);
    UpdateOptions options;
    if (i % 3 == 0) options.learning_rate = 0.05f;
    absl::StatusOr<UpdateResult> r = store.Update(model, Views(batch), options);
    if (!r.ok()) {
      out->errors.push_back(r.status().ToString());
      return;
    }
    out->versions.push_back(r->version);
    std::this_thread::sleep_for(kWriterPause);
  }
}

TEST(ConcurrencyTest, ReadersSeeWholeVersionsWhileWritersUpdate) {
  ModelStore store(StoreOptions{.retained_versions = 100000});
  ModelSpec shared;
  shared.type = ModelType::kLogisticRegression;
  shared.num_features = kSharedFeatures;
  shared.optimizer.kind = OptimizerKind::kSgd;
  shared.optimizer.learning_rate = 0.5f;
  shared.minibatch_size = 2;
  ASSERT_TRUE(store.CreateModel(kShared, shared).ok());
  ModelSpec other;
  other.type = ModelType::kSoftmaxRegression;
  other.num_features = kOtherFeatures;
  other.num_classes = kOtherClasses;
  ASSERT_TRUE(store.CreateModel(kOther, other).ok());

  std::atomic<bool> stop{false};
  std::vector<ReaderResult> readers(kReaders);
  std::vector<WriterResult> writers(kWriters);
  WriterResult other_writer;
  const Clock::time_point end = Clock::now() + kDuration;

  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back(Reader, std::cref(store), 10 + r, std::cref(stop),
                         &readers[r]);
  }
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back(Writer, std::ref(store), kShared, 20 + w, SharedBatch,
                         end, &writers[w]);
  }
  threads.emplace_back(Writer, std::ref(store), kOther, 30, OtherBatch, end,
                       &other_writer);
  // Writers stop at `end` (or their count); readers once the writers are done.
  for (size_t t = kReaders; t < threads.size(); ++t) threads[t].join();
  stop.store(true, std::memory_order_release);
  for (int r = 0; r < kReaders; ++r) threads[r].join();

  // Writers: no error, strictly increasing versions, none lost.
  std::vector<uint64_t> all;
  for (int w = 0; w < kWriters; ++w) {
    SCOPED_TRACE(::testing::Message() << "writer " << w);
    EXPECT_TRUE(writers[w].errors.empty()) << writers[w].errors.front();
    ASSERT_GT(writers[w].versions.size(), 0u);
    for (size_t i = 1; i < writers[w].versions.size(); ++i) {
      ASSERT_LT(writers[w].versions[i - 1], writers[w].versions[i]);
    }
    all.insert(all.end(), writers[w].versions.begin(),
               writers[w].versions.end());
  }
  std::sort(all.begin(), all.end());
  // The two writers' versions are exactly 2 .. N+1, each once.
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 2);

  absl::StatusOr<ModelInfo> info = store.GetModel(kShared);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version, all.size() + 1);
  EXPECT_EQ(info->counters.updates, all.size());
  EXPECT_EQ(info->counters.examples_seen, 4 * all.size());
  EXPECT_EQ(info->retained_versions.size(), all.size() + 1);

  // The other model advanced on its own: exactly its writer's updates.
  EXPECT_TRUE(other_writer.errors.empty()) << other_writer.errors.front();
  ASSERT_GT(other_writer.versions.size(), 0u);
  for (size_t i = 0; i < other_writer.versions.size(); ++i) {
    ASSERT_EQ(other_writer.versions[i], i + 2);
  }
  absl::StatusOr<ModelInfo> other_info = store.GetModel(kOther);
  ASSERT_TRUE(other_info.ok());
  EXPECT_EQ(other_info->version, other_writer.versions.size() + 1);
  EXPECT_EQ(other_info->counters.updates, other_writer.versions.size());

  int64_t total_predictions = 0;
  for (int r = 0; r < kReaders; ++r) {
    SCOPED_TRACE(::testing::Message() << "reader " << r);
    EXPECT_TRUE(readers[r].errors.empty()) << readers[r].errors.front();
    EXPECT_GT(readers[r].predictions, 0);
    EXPECT_EQ(readers[r].checked, readers[r].predictions);
    EXPECT_LE(readers[r].first_version, readers[r].last_version);
    EXPECT_LE(readers[r].last_version, info->version);
    total_predictions += readers[r].predictions;
  }
  std::printf("%lld predictions, %zu + %zu updates\n",
              static_cast<long long>(total_predictions), all.size(),
              other_writer.versions.size());
}

// Readers and writers on a store whose models are created and deleted while
// they run: lookups either find a model or report NOT_FOUND, never crash.
// Linear regression on 8 dense features, SGD: cheap to create and update.
ModelSpec SmallLinearSpec() {
  ModelSpec spec;
  spec.type = ModelType::kLinearRegression;
  spec.num_features = 8;
  spec.optimizer.kind = OptimizerKind::kSgd;
  spec.optimizer.learning_rate = 0.01f;
  return spec;
}

TEST(ConcurrencyTest, CreateAndDeleteWhileOthersUseTheStore) {
  ModelStore store(StoreOptions{.retained_versions = 4});
  const ModelSpec spec = SmallLinearSpec();
  ASSERT_TRUE(store.CreateModel("stable", spec).ok());

  std::atomic<bool> stop{false};
  std::atomic<int64_t> found{0}, not_found{0}, other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Example> batch(2);
      for (Example& e : batch) {
        e.features.dense.assign(8, 0.5f);
        e.label = 1;
      }
      std::vector<Features> x(1);
      x[0].indices = {1, 7};
      x[0].values = {1, 1};
      int64_t i = 0;
      do {
        const std::string name = (i + t) % 2 == 0 ? "churn" : "stable";
        absl::Status s = (i % 2 == 0)
                             ? store.Update(name, Views(batch)).status()
                             : store.Predict(name, Views(x)).status();
        if (s.ok()) {
          found.fetch_add(1);
        } else if (s.code() == absl::StatusCode::kNotFound) {
          not_found.fetch_add(1);
        } else {
          other_errors.fetch_add(1);
        }
        if (i % 16 == 0) store.ListModels();
        ++i;
      } while (!stop.load() && i < 200000);
    });
  }
  const Clock::time_point end = Clock::now() + std::chrono::milliseconds(500);
  int64_t cycles = 0;
  while (Clock::now() < end && cycles < 20000) {
    const absl::Status created = store.CreateModel("churn", spec).status();
    if (!created.ok()) other_errors.fetch_add(1);
    const absl::Status deleted = store.DeleteModel("churn");
    if (!deleted.ok()) other_errors.fetch_add(1);
    ++cycles;
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_GT(found.load(), 0);
  EXPECT_GT(cycles, 0);
  absl::StatusOr<ModelInfo> stable = store.GetModel("stable");
  ASSERT_TRUE(stable.ok());
  EXPECT_GT(stable->version, 1u);
  EXPECT_TRUE(store.AcquireVersion("churn").status().code() ==
              absl::StatusCode::kNotFound);
}

// A rollback answers the version it published, with that version's
// counters (those of its target), even when an update publishes a later
// version before the answer is made.
TEST(ConcurrencyTest, RollbackAnswersItsOwnVersionWhileUpdatesRun) {
  // Enough retained versions that the target is usually still kept when
  // the rollback reaches it.
  ModelStore store(StoreOptions{.retained_versions = 1000});
  const ModelSpec spec = SmallLinearSpec();
  ASSERT_TRUE(store.CreateModel("m", spec).ok());

  std::atomic<bool> stop{false};
  std::thread updater([&] {
    std::vector<Example> batch(1);
    batch[0].features.dense.assign(8, 0.5f);
    batch[0].label = 1;
    for (int64_t i = 0; !stop.load() && i < 200000; ++i) {
      EXPECT_TRUE(store.Update("m", Views(batch)).ok());
    }
  });
  const Clock::time_point end = Clock::now() + std::chrono::milliseconds(500);
  int64_t rollbacks = 0;
  while (Clock::now() < end && rollbacks < 100000) {
    absl::StatusOr<std::shared_ptr<const ModelVersion>> target =
        store.AcquireVersion("m");
    absl::StatusOr<ModelInfo> info =
        target.ok() ? store.Rollback("m", (*target)->version())
                    : target.status();
    // The updater may have published past the retained versions meanwhile.
    if (absl::IsNotFound(info.status())) continue;
    if (!info.ok()) {
      ADD_FAILURE() << info.status();
      break;
    }
    if (info->version <= (*target)->version() ||
        info->counters.examples_seen != (*target)->counters().examples_seen) {
      ADD_FAILURE() << "rollback to " << (*target)->version()
                    << " answered version " << info->version << " with "
                    << info->counters.examples_seen << " examples seen, not "
                    << (*target)->counters().examples_seen;
      break;
    }
    ++rollbacks;
  }
  stop.store(true);
  updater.join();
  EXPECT_GT(rollbacks, 0);
}

}  // namespace
}  // namespace lepton
