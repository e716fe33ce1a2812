// ServerProcess: the real lepton_server binary, started on an ephemeral
// loopback port for one test and stopped (SIGKILL) when the object dies.
//
// Start() launches it with `--listen=127.0.0.1:0` (and, unless the flags
// name one, `--metrics_listen=127.0.0.1:0`) plus any extra flags and waits
// for the "serving on port N" line it prints on stderr, so target() and
// metrics_port() are valid once Start() returns. Unless the flags name a
// --data_dir, the server gets a fresh temporary one of its own (kept across
// Start() calls of the same object, removed when it dies), so parallel tests
// never share models.
//
// Thread safety: one ServerProcess is used by one thread.
#ifndef LEPTON_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define LEPTON_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/integration/subprocess.h"

namespace lepton::testing {

// Paths of the binaries under test, set by CMake.
inline constexpr char kServerPath[] = LEPTON_SERVER_PATH;
inline constexpr char kClientPath[] = LEPTON_CLIENT_PATH;

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  absl::Status Start(const std::vector<std::string>& extra_flags = {});
  // "127.0.0.1:<port>".
  const std::string& target() const { return target_; }
  // The port of its /metrics endpoint; 0 if it serves none.
  int metrics_port() const { return metrics_port_; }
  // The data directory it was given (its own unless the flags named one).
  const std::string& data_dir() const { return data_dir_; }
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
  std::string target_;
  int metrics_port_ = 0;
  std::string data_dir_;
  std::string own_data_dir_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_INTEGRATION_SERVER_PROCESS_H_
