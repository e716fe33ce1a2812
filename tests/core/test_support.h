// Helpers shared by the core's tests: a status assertion (Debian's Abseil
// 20220623 ships no status matchers), example builders, and bit-exact views
// of a version's parameters.
#ifndef LEPTON_TESTS_CORE_TEST_SUPPORT_H_
#define LEPTON_TESTS_CORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "core/example.h"
#include "core/model_version.h"

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

// Every optimizer state value of `v`, in the order of AllWeights.
inline std::vector<float> AllState(const ModelVersion& v) {
  std::vector<float> s;
  for (int64_t f = 0; f <= v.spec().num_features; ++f) {
    for (int32_t o = 0; o < v.spec().num_outputs(); ++o) {
      s.push_back(v.optimizer_state(f, o));
    }
  }
  return s;
}

inline bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() ||
          std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_TEST_SUPPORT_H_
