// Subprocess: runs a program (the real lepton_server or lepton_client) for the
// integration tests, with its stdout and stderr captured through pipes.
//
// Run() starts a program and waits for it, returning its exit status and
// output; Subprocess keeps a long-running one (the server) alive, lets the
// test read its stderr line by line (to learn the port it bound), signal it,
// and wait for it. The destructor kills a process still running.
//
// Thread safety: one Subprocess is used by one thread.
#ifndef LEPTON_TESTS_INTEGRATION_SUBPROCESS_H_
#define LEPTON_TESTS_INTEGRATION_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace lepton::testing {

struct RunResult {
  int exit_code = -1;  // the exit status, or -signal if killed by one
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs `argv` (argv[0] is a path) to completion.
RunResult Run(const std::vector<std::string>& argv);

class Subprocess {
 public:
  // Starts `argv` with stdout discarded and stderr readable.
  explicit Subprocess(const std::vector<std::string>& argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // The next line of stderr (without '\n'), or nullopt at end of file or
  // after `timeout`.
  std::optional<std::string> ReadErrLine(absl::Duration timeout);
  void Signal(int signal);
  // The exit status (or -signal), or nullopt if it has not exited within
  // `timeout` (the process then keeps running).
  std::optional<int> Wait(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string err_buffer_;
  std::optional<int> exit_code_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_INTEGRATION_SUBPROCESS_H_
