// Process helpers for durability_bench: a lepton_server child of its own on
// an ephemeral loopback port, and the temporary data directories it runs on.
//
//   TempDir dir;                                     // mkdtemp under $TMPDIR
//   absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::Start(
//       server_binary, {"--data_dir=" + dir.path(), "--fsync=always"});
//   ... talk to (*s)->target() ...
//   (*s)->Terminate(absl::Seconds(30));              // SIGTERM, exit status
//
// Start() forks and execs the binary with --listen=127.0.0.1:0 plus the given
// flags, and returns once the server has printed "serving on port N" on
// stderr; spawned() and serving() are the steady-clock instants just before
// the fork and when that line was read, so serving() - spawned() is the
// server's start-up time (for a durable store: its recovery). A thread drains
// the server's stderr for as long as it runs, so the server never blocks on
// a full pipe, and stderr() returns all of it for diagnostics. The server is
// started with PR_SET_PDEATHSIG, so it dies with this process if the
// benchmark crashes; the destructor SIGKILLs a server still running.
//
// Thread safety: a ServerProcess and a TempDir are used by one thread.
#ifndef LEPTON_BENCH_DURABILITY_SERVER_H_
#define LEPTON_BENCH_DURABILITY_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lepton::bench {

class ServerProcess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `binary` --listen=127.0.0.1:0 `flags`... and waits at most
  // `timeout` for its port. UNAVAILABLE, with the server's stderr, if it
  // exits or stays silent.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::vector<std::string>& flags,
      absl::Duration timeout = absl::Seconds(60));
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  // "127.0.0.1:<port>".
  std::string target() const;
  Clock::time_point spawned() const { return spawned_; }
  Clock::time_point serving() const { return serving_; }
  // Everything the server printed on stderr so far.
  std::string stderr_text() const;

  // SIGKILL, then waits for the process: nothing runs after the signal, so a
  // durable server must recover from its log alone.
  void Kill();
  // SIGTERM (graceful: the server drains its calls and writes final
  // checkpoints) and waits at most `timeout`: the exit status (-signal if a
  // signal ended it), or DEADLINE_EXCEEDED (the process is then killed).
  absl::StatusOr<int> Terminate(absl::Duration timeout);

 private:
  ServerProcess() = default;
  void Drain();
  // Reaps the process if it has exited; blocks for it with `block`.
  bool Reap(bool block);

  pid_t pid_ = -1;
  int err_fd_ = -1;
  int port_ = 0;
  std::optional<int> exit_status_;
  Clock::time_point spawned_;
  Clock::time_point serving_;
  std::thread drain_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string err_;             // guarded by mu_
  bool err_closed_ = false;     // guarded by mu_: EOF on the pipe
  int found_port_ = 0;          // guarded by mu_: 0 until the line is read
  Clock::time_point found_at_;  // guarded by mu_
};

// A fresh directory "$TMPDIR/lepton-dbench-XXXXXX" (TMPDIR unset: /tmp),
// removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();  // aborts with a message if it cannot be created
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Bytes in the regular files below path(); what a store put there.
  int64_t Bytes() const;

 private:
  std::string path_;
};

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_DURABILITY_SERVER_H_
