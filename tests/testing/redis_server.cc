#include "tests/testing/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lepton::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Whether a Redis server on `port` answers PING.
bool Pong(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr = Loopback(port);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  bool pong = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      write(fd, "PING\r\n", 6) == 6) {
    char buffer[16] = {};
    const ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
    pong = n > 0 && absl::StartsWith(buffer, "+PONG");
  }
  close(fd);
  return pong;
}

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  sockaddr_in addr = Loopback(0);
  socklen_t length = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return absl::InternalError(why);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const std::string& dir) {
  mkdir(dir.c_str(), 0700);
  absl::Status last;
  // Another process may take the port between FreeLoopbackPort and the
  // server's bind: try a few.
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::unique_ptr<RedisServer> server(new RedisServer(dir, *port));
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

absl::Status RedisServer::Launch() {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
      {kRedisServerPath, "--port", absl::StrCat(port_), "--bind", "127.0.0.1",
       "--dir", dir_, "--appendonly", "yes", "--appendfsync", "always",
       "--save", "", "--daemonize", "no", "--logfile", ""});
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    if (Pong(port_)) return absl::OkStatus();
    if (process_->Wait(absl::Milliseconds(20)).has_value()) break;  // exited
  }
  process_->Kill();
  return absl::UnavailableError(
      absl::StrCat("redis-server on port ", port_,
                   " did not answer PING: ", process_->err_text()));
}

void RedisServer::Kill() {
  if (process_ != nullptr) process_->Kill();
}

absl::Status RedisServer::Restart() {
  Kill();
  return Launch();
}

}  // namespace lepton::testing
