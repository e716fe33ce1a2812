// Determinism: independent stores fed the same updates end bit-identical,
// whatever thread runs the updates and whatever other threads do meanwhile
// (core/learning/scoring.h: the order of every sum depends only on the layout
// and the batch).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

struct ModelDef {
  std::string name;
  ModelSpec spec;
};

ModelSpec Spec(ModelType type, int64_t d, int32_t k, OptimizerKind kind,
               int32_t minibatch) {
  ModelSpec s;
  s.type = type;
  s.num_features = d;
  s.num_classes = k;
  s.optimizer.kind = kind;
  s.minibatch_size = minibatch;
  if (kind == OptimizerKind::kSgd) {
    s.optimizer.learning_rate = 0.2f;
    s.optimizer.power_t = 0.3f;
  } else {
    s.optimizer.learning_rate = 0.1f;
    s.optimizer.initial_accumulator = 0.01f;
  }
  s.l2 = 1e-3f;
  return s;
}

// Softmax and logistic, minibatch 1 and 8, single-page and many-page models.
std::vector<ModelDef> Models() {
  return {
      {"softmax-mb8",
       Spec(ModelType::kSoftmaxRegression, 300, 5, OptimizerKind::kAdagrad, 8)},
      {"softmax-mb1-paged", Spec(ModelType::kSoftmaxRegression, 20000, 3,
                                 OptimizerKind::kAdagrad, 1)},
      {"logistic-mb1",
       Spec(ModelType::kLogisticRegression, 200, 0, OptimizerKind::kSgd, 1)},
      {"logistic-mb8-paged",
       Spec(ModelType::kLogisticRegression, 70000, 0, OptimizerKind::kSgd, 8)},
  };
}

struct Call {
  size_t model;  // index into Models()
  std::vector<Example> examples;
  UpdateOptions options;
};

// A seeded sequence of mixed dense and sparse updates with varied epochs and
// learning-rate overrides.
std::vector<Call> MakeCalls(const std::vector<ModelDef>& models, int n,
                            uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<Call> calls;
  for (int c = 0; c < n; ++c) {
    Call call;
    call.model = rng() % models.size();
    const ModelSpec& spec = models[call.model].spec;
    const int64_t d = spec.num_features;
    // Dense examples of the big models are rarer: they touch every page.
    const float dense_share = d > 1000 ? 0.1f : 0.5f;
    const int count = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < count; ++i) {
      Example e;
      if (unit(rng) < dense_share) {
        e.features.dense.resize(d);
        for (float& v : e.features.dense) v = normal(rng);
      } else {
        const int nnz = static_cast<int>(rng() % 12);
        std::vector<uint8_t> used(d, 0);
        for (int j = 0; j < nnz; ++j) {
          // Half the indices from a small hot set, half from anywhere.
          const uint32_t idx = static_cast<uint32_t>(
              j % 2 == 0 ? rng() % std::min<int64_t>(d, 40) : rng() % d);
          if (used[idx]) continue;
          used[idx] = 1;
          e.features.indices.push_back(idx);
          e.features.values.push_back(normal(rng));
        }
      }
      e.label = static_cast<float>(rng() % std::max(2, spec.num_classes));
      e.weight = unit(rng) < 0.1f ? 0.0f : 0.5f + unit(rng);
      call.examples.push_back(std::move(e));
    }
    call.options.epochs = 1 + static_cast<int32_t>(rng() % 3);
    if (unit(rng) < 0.5f) call.options.learning_rate = 0.01f + unit(rng) / 2;
    calls.push_back(std::move(call));
  }
  return calls;
}

void CreateAll(ModelStore& store, const std::vector<ModelDef>& models) {
  for (const ModelDef& m : models) {
    ASSERT_TRUE(store.CreateModel(m.name, m.spec).ok()) << m.name;
  }
}

// Runs `calls` on `store`; returns the results (or records failures in
// *errors, so that it can run on any thread).
std::vector<UpdateResult> RunCalls(ModelStore& store,
                                   const std::vector<ModelDef>& models,
                                   const std::vector<Call>& calls,
                                   std::vector<std::string>* errors) {
  std::vector<UpdateResult> results;
  for (const Call& call : calls) {
    absl::StatusOr<UpdateResult> r = store.Update(
        models[call.model].name, Views(call.examples), call.options);
    if (!r.ok()) {
      errors->push_back(r.status().ToString());
      results.emplace_back();
    } else {
      results.push_back(*r);
    }
  }
  return results;
}

int64_t FirstDifference(const std::vector<float>& a,
                        const std::vector<float>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
  }
  return a.size() == b.size() ? -1 : static_cast<int64_t>(a.size());
}

std::vector<Features> Probes(const ModelSpec& spec) {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0, 1);
  std::vector<Features> probes(4);
  probes[0].dense.resize(spec.num_features);
  for (float& v : probes[0].dense) v = normal(rng);
  probes[1].indices = {0, 3, static_cast<uint32_t>(spec.num_features - 1)};
  probes[1].values = {1, -2, 0.5f};
  probes[2].dense.assign(spec.num_features, 0.25f);
  // probes[3]: no features, the bias alone.
  return probes;
}

void ExpectIdenticalStores(const ModelStore& a, const ModelStore& b,
                           const std::vector<ModelDef>& models) {
  for (const ModelDef& m : models) {
    SCOPED_TRACE(m.name);
    auto va = a.AcquireVersion(m.name);
    auto vb = b.AcquireVersion(m.name);
    ASSERT_TRUE(va.ok() && vb.ok());
    EXPECT_EQ((*va)->version(), (*vb)->version());
    EXPECT_GT((*va)->version(), 1u) << "the sequence never updated it";
    const std::vector<float> wa = AllWeights(**va);
    const std::vector<float> wb = AllWeights(**vb);
    EXPECT_TRUE(BitEqual(wa, wb))
        << "weights differ at coordinate " << FirstDifference(wa, wb);
    const std::vector<float> sa = AllState(**va);
    const std::vector<float> sb = AllState(**vb);
    EXPECT_TRUE(BitEqual(sa, sb))
        << "optimizer state differs at coordinate " << FirstDifference(sa, sb);
    // The weights really moved.
    int64_t nonzero = 0;
    for (float w : wa) nonzero += w != 0;
    EXPECT_GT(nonzero, 10);

    const ModelCounters& ca = (*va)->counters();
    const ModelCounters& cb = (*vb)->counters();
    EXPECT_EQ(ca.examples_seen, cb.examples_seen);
    EXPECT_EQ(ca.updates, cb.updates);
    EXPECT_EQ(ca.steps, cb.steps);
    EXPECT_EQ(ca.weight_seen, cb.weight_seen);
    EXPECT_EQ(ca.loss_sum, cb.loss_sum);
    EXPECT_EQ(ca.correct_weight, cb.correct_weight);

    const std::vector<Features> probes = Probes(m.spec);
    const Predictions pa = (*va)->Predict(Views(probes));
    const Predictions pb = (*vb)->Predict(Views(probes));
    EXPECT_TRUE(BitEqual(pa.scores, pb.scores));
    EXPECT_EQ(pa.labels, pb.labels);
  }
}

void ExpectSameResults(const std::vector<UpdateResult>& a,
                       const std::vector<UpdateResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].version, b[i].version) << "call " << i;
    EXPECT_EQ(a[i].examples, b[i].examples) << "call " << i;
    // Bit-identical progressive metrics.
    EXPECT_EQ(std::memcmp(&a[i].loss_before, &b[i].loss_before, sizeof(double)),
              0)
        << "call " << i << ": " << a[i].loss_before << " vs "
        << b[i].loss_before;
    EXPECT_EQ(a[i].accuracy_before, b[i].accuracy_before) << "call " << i;
  }
}

constexpr int kCalls = 40;

TEST(DeterminismTest, SameUpdatesGiveBitIdenticalModels) {
  const std::vector<ModelDef> models = Models();
  const std::vector<Call> calls = MakeCalls(models, kCalls, 2024);
  ModelStore a;
  ModelStore b(StoreOptions{.retained_versions = 2});  // retention is moot
  CreateAll(a, models);
  CreateAll(b, models);
  std::vector<std::string> errors;
  const std::vector<UpdateResult> ra = RunCalls(a, models, calls, &errors);
  const std::vector<UpdateResult> rb = RunCalls(b, models, calls, &errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  ExpectSameResults(ra, rb);
  ExpectIdenticalStores(a, b, models);
}

TEST(DeterminismTest, DifferentSeedsGiveDifferentModels) {
  // The comparison above is meaningful: another sequence gives other bits.
  const std::vector<ModelDef> models = Models();
  ModelStore a;
  ModelStore b;
  CreateAll(a, models);
  CreateAll(b, models);
  std::vector<std::string> errors;
  RunCalls(a, models, MakeCalls(models, kCalls, 1), &errors);
  RunCalls(b, models, MakeCalls(models, kCalls, 2), &errors);
  EXPECT_TRUE(errors.empty());
  auto va = a.AcquireVersion(models[0].name);
  auto vb = b.AcquireVersion(models[0].name);
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_FALSE(BitEqual(AllWeights(**va), AllWeights(**vb)));
}

// Runs predictions on every model of `store` until *stop; counts them.
void PredictUntil(const ModelStore& store, const std::vector<ModelDef>& models,
                  const std::atomic<bool>* stop, uint32_t seed,
                  int64_t* predictions, std::vector<std::string>* errors) {
  std::vector<std::vector<Features>> probes;
  for (const ModelDef& m : models) probes.push_back(Probes(m.spec));
  std::mt19937 rng(seed);
  do {
    const size_t m = rng() % models.size();
    absl::StatusOr<Predictions> p =
        store.Predict(models[m].name, Views(probes[m]));
    if (!p.ok()) {
      errors->push_back(p.status().ToString());
      return;
    }
    ++*predictions;
  } while (!stop->load(std::memory_order_acquire));
}

TEST(DeterminismTest, UpdatesOnAnotherThreadWithConcurrentReaders) {
  const std::vector<ModelDef> models = Models();
  const std::vector<Call> calls = MakeCalls(models, kCalls, 7);
  ModelStore a;
  ModelStore b;
  CreateAll(a, models);
  CreateAll(b, models);

  // Reference: store a, on this thread, alone.
  std::vector<std::string> errors_a;
  const std::vector<UpdateResult> ra = RunCalls(a, models, calls, &errors_a);
  ASSERT_TRUE(errors_a.empty()) << errors_a.front();

  // Store b: updated by a writer thread while readers predict from it.
  constexpr int kReaders = 3;
  std::atomic<bool> stop{false};
  std::vector<int64_t> predictions(kReaders, 0);
  std::vector<std::vector<std::string>> reader_errors(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back(PredictUntil, std::cref(b), std::cref(models), &stop,
                         100 + r, &predictions[r], &reader_errors[r]);
  }
  std::vector<std::string> errors_b;
  std::vector<UpdateResult> rb;
  std::thread writer([&] { rb = RunCalls(b, models, calls, &errors_b); });
  writer.join();
  stop.store(true, std::memory_order_release);
  for (std::thread& t : readers) t.join();

  EXPECT_TRUE(errors_b.empty()) << errors_b.front();
  for (int r = 0; r < kReaders; ++r) {
    EXPECT_TRUE(reader_errors[r].empty()) << reader_errors[r].front();
    EXPECT_GT(predictions[r], 0);
  }
  ExpectSameResults(ra, rb);
  ExpectIdenticalStores(a, b, models);
}

TEST(DeterminismTest, TwoStoresUpdatedConcurrently) {
  // Both stores learn at the same time on two threads, sharing nothing but
  // the process (Eigen's settings, the allocator).
  const std::vector<ModelDef> models = Models();
  const std::vector<Call> calls = MakeCalls(models, kCalls, 99);
  ModelStore a;
  ModelStore b;
  CreateAll(a, models);
  CreateAll(b, models);
  std::vector<std::string> errors_a, errors_b;
  std::vector<UpdateResult> ra, rb;
  std::thread ta([&] { ra = RunCalls(a, models, calls, &errors_a); });
  std::thread tb([&] { rb = RunCalls(b, models, calls, &errors_b); });
  ta.join();
  tb.join();
  EXPECT_TRUE(errors_a.empty()) << errors_a.front();
  EXPECT_TRUE(errors_b.empty()) << errors_b.front();
  ExpectSameResults(ra, rb);
  ExpectIdenticalStores(a, b, models);
}

}  // namespace
}  // namespace lepton
