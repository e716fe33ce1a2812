#include "tests/integration/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace lepton::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

// Starts argv with stdout and stderr connected to new pipes (or /dev/null for
// stdout when out_fd is null); returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, int* out_fd, int* err_fd) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2];
  if ((out_fd != nullptr && pipe2(out_pipe, O_CLOEXEC) != 0) ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (out_fd != nullptr) {
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null",
                                     O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out_fd != nullptr) {
    close(out_pipe[1]);
    *out_fd = out_pipe[0];
  }
  close(err_pipe[1]);
  *err_fd = err_pipe[0];
  if (rc != 0) throw std::runtime_error(absl::StrCat("cannot run ", argv[0]));
  return pid;
}

}  // namespace

RunResult Run(const std::vector<std::string>& argv) {
  int out_fd = -1;
  int err_fd = -1;
  const pid_t pid = Spawn(argv, &out_fd, &err_fd);
  RunResult result;
  // Drain both pipes together so neither child stream can fill up and block.
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open = 2;
  char buffer[4096];
  while (open > 0) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = DecodeWaitStatus(status);
  return result;
}

Subprocess::Subprocess(const std::vector<std::string>& argv) {
  pid_ = Spawn(argv, nullptr, &err_fd_);
}

Subprocess::~Subprocess() {
  if (!exit_code_.has_value()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (err_fd_ >= 0) close(err_fd_);
}

std::optional<std::string> Subprocess::ReadErrLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (const size_t eol = err_buffer_.find('\n'); eol != std::string::npos) {
      std::string line = err_buffer_.substr(0, eol);
      err_buffer_.erase(0, eol + 1);
      return line;
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return std::nullopt;
    pollfd fd = {err_fd_, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left_ms)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(err_fd_, buffer, sizeof(buffer));
    if (n <= 0) return std::nullopt;
    err_buffer_.append(buffer, n);
  }
}

void Subprocess::Signal(int signal) {
  if (!exit_code_.has_value()) kill(pid_, signal);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_code_.has_value()) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      break;
    }
    if (absl::Now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_code_;
}

}  // namespace lepton::testing
