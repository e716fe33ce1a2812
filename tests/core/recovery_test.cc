// Recovery by default: a logistic model at the spec's defaults (AdaGrad, the
// default drift detector and policy) learns 100,000 examples of one concept,
// then the concept inverts (concept_stream.h, angle pi). 5,000 examples
// later, its newest version is scored on fresh examples of the new concept.
// Prints the figure for each policy, the default's first:
//   build/tests/core/recovery_test
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/learning/model_spec.h"
#include "core/store/model_store.h"
#include "tests/core/concept_stream.h"

namespace lepton {
namespace {

constexpr int kBatch = 100;
constexpr int64_t kBefore = 100000;
constexpr int64_t kAfter = 5000;
constexpr double kPi = 3.14159265358979323846;

ConceptStream::Options Inverting(uint64_t seed, int64_t change_at) {
  ConceptStream::Options o;
  o.change = ConceptStream::Change::kAbrupt;
  o.angle = kPi;
  o.seed = seed;
  o.change_at = change_at;
  return o;
}

// The accuracy on the new concept, kAfter examples after the inversion.
double AccuracyAfterInversion(const ModelSpec& spec, uint64_t seed) {
  ModelStore store;
  EXPECT_TRUE(store.CreateModel("m", spec).ok());
  ConceptStream stream(Inverting(seed, kBefore));
  for (int64_t seen = 0; seen < kBefore + kAfter; seen += kBatch) {
    const std::vector<Example> batch = stream.Batch(kBatch);
    EXPECT_TRUE(store.Update("m", Views(batch)).ok());
  }
  // The same seed gives the same concepts; inverted from the start, without
  // label noise.
  ConceptStream::Options held_out = Inverting(seed, 0);
  held_out.noise = 0;
  const std::vector<Example> probes = ConceptStream(held_out).Batch(5000);
  std::vector<FeaturesView> instances;
  for (const Example& e : probes) instances.push_back(e.features.view());
  absl::StatusOr<Predictions> p = store.Predict("m", instances);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return 0;
  int correct = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    correct += p->labels[i] == static_cast<int32_t>(probes[i].label);
  }
  return static_cast<double>(correct) / static_cast<double>(probes.size());
}

ModelSpec Defaults() {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 20;
  return spec;
}

TEST(RecoveryTest, TheDefaultsRecoverFromAnInvertedConcept) {
  struct Case {
    const char* name;
    bool set;
    DriftPolicy policy;
  };
  const Case cases[] = {{"defaults", false, DriftPolicy::kUnspecified},
                        {"ALERT", true, DriftPolicy::kAlert},
                        {"BOOST", true, DriftPolicy::kBoost},
                        {"CHALLENGER", true, DriftPolicy::kChallenger}};
  for (const Case& c : cases) {
    for (uint64_t seed : {1, 2, 3}) {
      ModelSpec spec = Defaults();
      if (c.set) spec.drift.policy = c.policy;
      const double accuracy = AccuracyAfterInversion(spec, seed);
      std::printf(
          "inverted after %lld examples, %-10s seed %llu: accuracy %.4f on "
          "the new concept %lld examples later\n",
          static_cast<long long>(kBefore), c.name,
          static_cast<unsigned long long>(seed), accuracy,
          static_cast<long long>(kAfter));
      if (!c.set) {
        EXPECT_GE(accuracy, 0.85) << "seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace lepton
