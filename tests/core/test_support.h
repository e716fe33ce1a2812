// Helpers shared by the core's tests: a status assertion (Debian's Abseil
// 20220623 ships no status matchers), example builders, bit-exact views of a
// version's parameters, and a fixture with a scratch directory.
#ifndef LEPTON_TESTS_CORE_TEST_SUPPORT_H_
#define LEPTON_TESTS_CORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/learning/example.h"
#include "core/learning/model_version.h"
#include "core/util/file_system.h"

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

// Gives each test an empty directory of its own, root_, under the test
// temporary directory: named after the test and the process, so that tests
// running in parallel never share one, and removed with its contents after
// the test.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = absl::StrCat("lepton_", info->test_suite_name(), "_",
                                    info->name(), "_", getpid());
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized tests
    root_ = JoinPath(::testing::TempDir(), name);
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // root_/sub.
  std::string Path(absl::string_view sub) const { return JoinPath(root_, sub); }

  std::string root_;
};

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_TEST_SUPPORT_H_
