// CaptureRun: runs a function in the test's own process with what it prints
// on stdout and stderr captured, for testing command-line code without
// starting a binary (tests/testing/subprocess.h starts one).
//
//   RunResult r = CaptureRun([&] { return RunWatch(args, global); });
//   EXPECT_EQ(r.exit_code, kExitUsage);
//   EXPECT_THAT(r.err, StartsWith("lepton_client: watch: "));
//
// The capture is GoogleTest's, which redirects the process's file
// descriptors 1 and 2: one CaptureRun at a time, and whatever other threads
// print meanwhile is captured too.
#ifndef LEPTON_TESTS_TESTING_CAPTURE_H_
#define LEPTON_TESTS_TESTING_CAPTURE_H_

#include <gtest/gtest.h>

#include <cstdio>

#include "absl/functional/function_ref.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {

// What `fn` returned (as exit_code) and printed.
inline RunResult CaptureRun(absl::FunctionRef<int()> fn) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  RunResult result;
  result.exit_code = fn();
  // stdio buffers what the function printed; the capture reads the files.
  std::fflush(stdout);
  std::fflush(stderr);
  result.out = ::testing::internal::GetCapturedStdout();
  result.err = ::testing::internal::GetCapturedStderr();
  return result;
}

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_CAPTURE_H_
