// ServerProcess: a lepton_server binary on an ephemeral loopback port, for
// integration tests and benchmarks; killed (SIGKILL) when the object dies.
//
//   ServerProcess server(kServerPath);
//   absl::Status s = server.Start({"--fsync=always"});
//   Client client(server.target(), ClientOptions{});
//   ...
//   absl::StatusOr<int> status = server.Terminate(absl::Seconds(30));
//
// Start() runs the binary with --listen=127.0.0.1:0 and, unless the flags
// name one, --metrics_listen=127.0.0.1:0 (never a fixed port: tests run in
// parallel), then the given flags, and returns once the server has printed
// "serving on port N" on stderr, so that target(), port() and metrics_port()
// are valid. Unless the flags name a --data_dir, the server gets a scratch
// directory of its own (tests/testing/scratch_dir.h), kept across Start()
// calls of the same object and removed when it dies, so that parallel tests
// never share models. Start() again after the server has exited, or been
// killed through process(), is a restart; while it still runs, the old one
// is killed first.
//
// spawned() and serving() are the instants just before the server was made
// and when its "serving" line was read: serving() - spawned() is its
// start-up time (for a durable store, its recovery). The child lives as
// long as the thread that started it (tests/testing/subprocess.h).
//
// Thread safety: one ServerProcess is used by one thread.
#ifndef LEPTON_TESTS_TESTING_SERVER_PROCESS_H_
#define LEPTON_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {

class ServerProcess {
 public:
  using Clock = Subprocess::Clock;

  // `binary`: the path of a lepton_server.
  explicit ServerProcess(std::string binary);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // UNAVAILABLE, with the server's exit status and stderr, if it exits or
  // does not report its port within `timeout` (it is then killed).
  absl::Status Start(const std::vector<std::string>& extra_flags = {},
                     absl::Duration timeout = absl::Seconds(60));

  // SIGTERM (the server drains its calls and writes its final checkpoints),
  // then its exit status; DEADLINE_EXCEEDED if it has not exited within
  // `timeout` (it is then killed). FAILED_PRECONDITION if never started.
  absl::StatusOr<int> Terminate(absl::Duration timeout);
  // SIGKILL, and waits for it: nothing of the server runs after the
  // signal, so a durable store must recover from its files alone.
  void Kill();

  // "127.0.0.1:<port>".
  const std::string& target() const { return target_; }
  int port() const { return port_; }
  // The port of its /metrics endpoint; 0 if it serves none.
  int metrics_port() const { return metrics_port_; }
  // The data directory it was given (its own unless the flags named one;
  // empty for a memory-only server).
  const std::string& data_dir() const { return data_dir_; }
  Clock::time_point spawned() const { return spawned_; }
  Clock::time_point serving() const { return serving_; }
  // Everything the server printed on stderr so far.
  std::string err_text() const;
  // The running (or last) server. Valid after Start().
  Subprocess& process() { return *process_; }
  pid_t pid() const { return process_ != nullptr ? process_->pid() : -1; }

 private:
  const std::string binary_;
  std::unique_ptr<Subprocess> process_;
  std::string target_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string data_dir_;
  ScratchDir own_data_dir_;
  Clock::time_point spawned_;
  Clock::time_point serving_;
};

// GET /metrics of `server` with curl: the body, or "" if that failed.
std::string ScrapeMetrics(const ServerProcess& server);
// The value of `series` (name and labels exactly) in a scrape's `text`, or
// -1.
double MetricValue(absl::string_view text, absl::string_view series);

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_SERVER_PROCESS_H_
