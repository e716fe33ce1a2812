// Child processes for integration tests and benchmarks: the real
// lepton_server and lepton_client, openssl, curl.
//
//   RunResult r = Run({"/usr/bin/openssl", "version"});  // to completion
//
//   absl::StatusOr<std::unique_ptr<Subprocess>> server =
//       Subprocess::Start({binary, "--listen=127.0.0.1:0"});
//   std::optional<std::string> line = (*server)->ReadErrLine(absl::Seconds(5));
//   (*server)->Signal(SIGTERM);
//   std::optional<int> status = (*server)->Wait(absl::Seconds(30));
//
// Run() starts a program, waits for it and returns its exit status and all
// it printed. A Subprocess is a long-running child: its stdout goes to
// /dev/null, and a thread of the Subprocess reads its stderr for as long as
// the child keeps it open, so that a child that logs never blocks on a full
// pipe; the caller reads that text line by line (ReadErrLine, e.g. for the
// port a server bound) or whole (err_text(), for a failure message).
//
// Every child is started with PR_SET_PDEATHSIG: it is killed when the thread
// that started it ends, also when its process crashes, so a crashed test or
// benchmark leaves no server behind. Start children from a thread that
// outlives them (the test's or the benchmark's main thread). A Subprocess
// SIGKILLs and reaps its child when it dies. Exit statuses are the child's
// exit code, or -N when signal N ended it; 127 when the program could not
// be run.
//
// Thread safety: a Subprocess is used by one thread (its reader thread is
// its own business); Run() may be called from any thread.
#ifndef LEPTON_TESTS_TESTING_SUBPROCESS_H_
#define LEPTON_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lepton::testing {

struct RunResult {
  int exit_code = -1;  // the exit status (above); -1 if it could not start
  std::string out;     // stdout
  std::string err;     // stderr (or why it could not start)
};

// Runs `argv` (argv[0] is a path) to completion.
RunResult Run(const std::vector<std::string>& argv);

// The value of the "key: value" line of `out` (lepton_client's output), or
// "" if there is none.
std::string Field(const std::string& out, const std::string& key);

// The resident memory (VmRSS) of process `pid` in KiB, or -1.
int64_t RssKib(pid_t pid);

class Subprocess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `argv` (argv[0] is a path). INTERNAL if no process could be made;
  // a program that cannot be run exits with 127.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // The next line of stderr (without '\n'), or nullopt at its end or after
  // `timeout`. With `read_at`, also the instant the line's end was read
  // from the pipe (not when this call noticed it), for timing the child.
  std::optional<std::string> ReadErrLine(absl::Duration timeout,
                                         Clock::time_point* read_at = nullptr);
  // All of stderr read so far, whether or not ReadErrLine has returned it.
  std::string err_text() const;

  // Sends `signal`, unless the child has already been reaped.
  void Signal(int signal);
  // The exit status, or nullopt if the child has not exited within
  // `timeout` (it then keeps running).
  std::optional<int> Wait(absl::Duration timeout);
  // SIGKILL, then the exit status (-SIGKILL unless it had already exited).
  int Kill();

  pid_t pid() const { return pid_; }
  // Just before the child was made.
  Clock::time_point started() const { return started_; }

 private:
  Subprocess() = default;
  void ReadErr();
  // Reaps the child if it has exited; waits for that with `block`.
  bool Reap(bool block);

  pid_t pid_ = -1;
  int err_fd_ = -1;
  Clock::time_point started_;
  std::optional<int> exit_code_;
  std::thread reader_;
  std::atomic<bool> stop_reading_{false};

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string err_;          // guarded by mu_
  bool err_closed_ = false;  // guarded by mu_: end of file or an error
  size_t next_line_ = 0;     // guarded by mu_: where ReadErrLine goes on
  // guarded by mu_: (end offset in err_, when read) of each chunk read.
  std::vector<std::pair<size_t, Clock::time_point>> chunks_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_SUBPROCESS_H_
