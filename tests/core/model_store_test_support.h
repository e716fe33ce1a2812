// What the tests of the core's public API share (model_store_test.cc,
// update_rejection_test.cc, learning_semantics_test.cc,
// learning_reference_test.cc, convergence_test.cc): specs by parts, calls of
// a ModelStore that fail the test instead of returning a status, and random
// batches.
//
//   ModelStore store;
//   ASSERT_TRUE(store.CreateModel("m",
//   SpecBuilder(ModelType::kLinearRegression, 2)
//                                          .Sgd(0.5f)).ok());
//   MustUpdate(store, "m", {Dense({1, 0}, 1)});
//   std::shared_ptr<const ModelVersion> v = MustAcquire(store, "m");
#ifndef LEPTON_TESTS_CORE_MODEL_STORE_TEST_SUPPORT_H_
#define LEPTON_TESTS_CORE_MODEL_STORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "tests/core/test_support.h"

namespace lepton {

inline bool NotFound(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound;
}

// A ModelSpec by parts: SpecBuilder(type, d).Sgd(0.1f).Minibatch(4).
struct SpecBuilder {
  ModelSpec spec;

  explicit SpecBuilder(ModelType type, int64_t num_features,
                       int32_t num_classes = 0) {
    spec.type = type;
    spec.num_features = num_features;
    spec.num_classes = num_classes;
  }
  SpecBuilder& Sgd(float learning_rate, float power_t = 0) {
    spec.optimizer.kind = OptimizerKind::kSgd;
    spec.optimizer.learning_rate = learning_rate;
    spec.optimizer.power_t = power_t;
    return *this;
  }
  SpecBuilder& Adagrad(float learning_rate, float initial_accumulator = 0) {
    spec.optimizer.kind = OptimizerKind::kAdagrad;
    spec.optimizer.learning_rate = learning_rate;
    spec.optimizer.initial_accumulator = initial_accumulator;
    return *this;
  }
  SpecBuilder& Minibatch(int32_t m) {
    spec.minibatch_size = m;
    return *this;
  }
  SpecBuilder& L2(float l2) {
    spec.l2 = l2;
    return *this;
  }
  operator ModelSpec() const { return spec; }  // NOLINT
};

// The features of `examples`, as prediction instances.
inline std::vector<Features> FeaturesOf(const std::vector<Example>& examples) {
  std::vector<Features> f;
  for (const Example& e : examples) f.push_back(e.features);
  return f;
}

// The calls below report a failure as a test failure and return an empty
// value (nullptr), so that the test goes on to its next assertion.
inline Predictions MustPredict(const ModelStore& store, absl::string_view name,
                               const std::vector<Features>& instances,
                               uint64_t version = 0) {
  absl::StatusOr<Predictions> p =
      store.Predict(name, Views(instances), version);
  if (!p.ok()) {
    ADD_FAILURE() << "Predict(" << name << ", v" << version
                  << "): " << p.status();
    return {};
  }
  return *std::move(p);
}

inline UpdateResult MustUpdate(ModelStore& store, absl::string_view name,
                               const std::vector<Example>& examples,
                               const UpdateOptions& options = {}) {
  absl::StatusOr<UpdateResult> r = store.Update(name, Views(examples), options);
  if (!r.ok()) {
    ADD_FAILURE() << "Update(" << name << "): " << r.status();
    return {};
  }
  return *r;
}

inline std::shared_ptr<const ModelVersion> MustAcquire(const ModelStore& store,
                                                       absl::string_view name,
                                                       uint64_t version = 0) {
  auto v = store.AcquireVersion(name, version);
  if (!v.ok()) {
    ADD_FAILURE() << "AcquireVersion(" << name << ", " << version
                  << "): " << v.status();
    return nullptr;
  }
  return *v;
}

// `n` examples for a model of `type` (d features, k classes): random labels
// and importance weights in [0.25, 2); with `sparse_too`, every other
// example sparse (one or two features).
inline std::vector<Example> RandomBatch(ModelType type, int64_t d, int32_t k,
                                        int n, std::mt19937& rng,
                                        bool sparse_too) {
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> weight(0.25f, 2.0f);
  std::vector<Example> batch;
  for (int i = 0; i < n; ++i) {
    float label = 0;
    if (type == ModelType::kLinearRegression) {
      label = normal(rng);
    } else if (type == ModelType::kLogisticRegression) {
      label = static_cast<float>(rng() % 2);
    } else {
      label = static_cast<float>(rng() % k);
    }
    if (sparse_too && i % 2 == 1) {
      std::vector<uint32_t> idx = {static_cast<uint32_t>(rng() % d)};
      const uint32_t other = static_cast<uint32_t>(rng() % d);
      if (other != idx[0]) idx.push_back(other);
      std::vector<float> values;
      for (size_t j = 0; j < idx.size(); ++j) values.push_back(normal(rng));
      batch.push_back(Sparse(idx, values, label, weight(rng)));
    } else {
      std::vector<float> x(d);
      for (float& v : x) v = normal(rng);
      batch.push_back(Dense(x, label, weight(rng)));
    }
  }
  return batch;
}

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_MODEL_STORE_TEST_SUPPORT_H_
