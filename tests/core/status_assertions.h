// GoogleTest assertions on absl::Status for the core's tests (Debian's Abseil
// 20220623 ships no status matchers).
#ifndef LEPTON_TESTS_CORE_STATUS_ASSERTIONS_H_
#define LEPTON_TESTS_CORE_STATUS_ASSERTIONS_H_

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

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

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_STATUS_ASSERTIONS_H_
