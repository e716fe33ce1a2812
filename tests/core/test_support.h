// Helpers shared by the core's tests: a status assertion (Debian's Abseil
// 20220623 ships no status matchers), example builders and bit-exact views
// of a version's parameters. The fixture with a scratch directory is
// testing::ScratchDirTest (tests/testing/scratch_dir_fixture.h).
#ifndef LEPTON_TESTS_CORE_TEST_SUPPORT_H_
#define LEPTON_TESTS_CORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_version.h"

namespace lepton {

// INVALID_ARGUMENT whose message starts with `prefix` (the field path).
inline ::testing::AssertionResult IsInvalid(const absl::Status& s,
                                            absl::string_view prefix) {
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure()
           << "expected INVALID_ARGUMENT, got " << s;
  }
  if (!absl::StartsWith(s.message(), prefix)) {
    return ::testing::AssertionFailure()
           << "message \"" << s.message() << "\" does not start with \""
           << prefix << "\"";
  }
  return ::testing::AssertionSuccess();
}

inline Example Dense(std::vector<float> x, float label = 1, float weight = 1) {
  Example e;
  e.features.dense = std::move(x);
  e.label = label;
  e.weight = weight;
  return e;
}

inline Example Sparse(std::vector<uint32_t> indices, std::vector<float> values,
                      float label = 1, float weight = 1) {
  Example e;
  e.features.indices = std::move(indices);
  e.features.values = std::move(values);
  e.label = label;
  e.weight = weight;
  return e;
}

// n examples of the rule y = 1 if x0 + x1 > 0 over 4 dense features (or its
// opposite with `flip`), x ~ N(0, I) drawn from `seed`.
inline std::vector<Example> RuleExamples(int n, uint64_t seed,
                                         bool flip = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> x = {normal(rng), normal(rng), normal(rng), normal(rng)};
    const bool y = (x[0] + x[1] > 0) != flip;
    out.push_back(Dense(std::move(x), y ? 1.0f : 0.0f));
  }
  return out;
}

// Views of `examples`, every one a holdout example.
inline std::vector<ExampleView> AsHoldout(
    const std::vector<Example>& examples) {
  std::vector<ExampleView> views = Views(examples);
  for (ExampleView& v : views) v.holdout = true;
  return views;
}

// Every weight of `v` (bias row last), feature-major.
inline std::vector<float> AllWeights(const ModelVersion& v) {
  std::vector<float> w;
  for (int64_t f = 0; f <= v.spec().num_features; ++f) {
    for (int32_t o = 0; o < v.spec().num_outputs(); ++o) {
      w.push_back(v.weight(f, o));
    }
  }
  return w;
}

// Every optimizer state value of `v` (array 1: AdaGrad's accumulators,
// FTRL's z, Adam's m), in the order of AllWeights: from one copy of its
// parameters (optimizer_state() copies them on every call).
inline std::vector<float> AllState(const ModelVersion& v) {
  const std::vector<float> params = v.params();
  const int64_t array_floats =
      (v.spec().num_features + 1) * v.spec().num_outputs();
  if (static_cast<int64_t>(params.size()) < 2 * array_floats) {
    return std::vector<float>(array_floats, 0.0f);  // no state (SGD)
  }
  return std::vector<float>(params.begin() + array_floats,
                            params.begin() + 2 * array_floats);
}

inline bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() ||
          std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_TEST_SUPPORT_H_
