// Runs a lepton_client subcommand in the test's process with its output
// captured, for the command-line tests.
//
// Capturing uses GoogleTest's stdout/stderr capture, which is process-wide:
// one RunCaptured at a time.
#ifndef LEPTON_TESTS_CLIENT_RUN_CAPTURED_H_
#define LEPTON_TESTS_CLIENT_RUN_CAPTURED_H_

#include <cstdio>
#include <string>

#include "client/cli/cli_common.h"
#include "client/cli/commands.h"
#include "gtest/gtest.h"

namespace lepton::client {

// What a command printed and returned.
struct Outcome {
  int exit_code = 0;
  std::string out;
  std::string err;
};

using CommandFn = int (*)(const CommandArgs&, const GlobalOptions&);

// Runs run(args, global) with stdout and stderr captured.
inline Outcome RunCaptured(CommandFn run, const CommandArgs& args,
                           const GlobalOptions& global) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Outcome outcome;
  outcome.exit_code = run(args, global);
  std::fflush(stdout);
  std::fflush(stderr);
  outcome.out = ::testing::internal::GetCapturedStdout();
  outcome.err = ::testing::internal::GetCapturedStderr();
  return outcome;
}

}  // namespace lepton::client

#endif  // LEPTON_TESTS_CLIENT_RUN_CAPTURED_H_
