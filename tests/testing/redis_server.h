// RedisServer: a redis-server of the test's own (Debian's redis-server), on
// a free loopback port, keeping its data in a directory the test owns, with
// the AOF on and fsynced at every write (appendfsync always), so that a
// kill -9 loses nothing it acknowledged. Never the system's service.
//
//   absl::StatusOr<std::unique_ptr<RedisServer>> redis =
//       RedisServer::Start(scratch.Path("redis"));
//   ... (*redis)->port() ...
//   (*redis)->Kill();                      // kill -9
//   ASSERT_TRUE((*redis)->Restart().ok());  // same port, same data
//
// Thread safety: used by one thread.
#ifndef LEPTON_TESTS_TESTING_REDIS_SERVER_H_
#define LEPTON_TESTS_TESTING_REDIS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {

inline constexpr char kRedisServerPath[] = "/usr/bin/redis-server";

class RedisServer {
 public:
  // Starts redis-server with its data in `dir` (created if missing) and
  // waits until it answers PING. UNAVAILABLE if it does not.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const std::string& dir);

  // SIGKILL.
  void Kill();
  // Starts it again (after Kill) on the same port and data.
  absl::Status Restart();
  int port() const { return port_; }
  // The running redis-server's process id (for its CPU time); -1 if none.
  pid_t pid() const { return process_ != nullptr ? process_->pid() : -1; }

 private:
  RedisServer(std::string dir, int port) : dir_(std::move(dir)), port_(port) {}
  absl::Status Launch();

  const std::string dir_;
  const int port_;
  std::unique_ptr<Subprocess> process_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_REDIS_SERVER_H_
