#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lepton::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

// A wait that neither overflows the clock nor waits for ever.
Subprocess::Clock::time_point DeadlineAfter(absl::Duration timeout) {
  timeout = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24));
  return Subprocess::Clock::now() +
         std::chrono::duration_cast<Subprocess::Clock::duration>(
             absl::ToChronoNanoseconds(timeout));
}

void CloseIfOpen(int fd) {
  if (fd >= 0) close(fd);
}

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // -1 unless stdout was captured
  int err_fd = -1;
};

// Starts `argv` with stderr, and with `capture_out` stdout, on new pipes
// (stdout otherwise to /dev/null).
absl::StatusOr<Child> Spawn(const std::vector<std::string>& argv,
                            bool capture_out) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  // Everything the child needs is made before fork(): between fork() and
  // exec(), the child of a multithreaded process may only make
  // async-signal-safe calls (no allocation, no locks).
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  const std::string cannot_run = absl::StrCat("cannot run ", argv[0], "\n");
  sigset_t no_signals;
  sigemptyset(&no_signals);

  int err_pipe[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  bool out_ok;
  if (capture_out) {
    out_ok = pipe2(out_pipe, O_CLOEXEC) == 0;
  } else {
    out_pipe[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
    out_ok = out_pipe[1] >= 0;
  }
  if (!out_ok) {
    const int error = errno;
    close(err_pipe[0]);
    close(err_pipe[1]);
    return absl::InternalError(
        absl::StrCat("stdout of ", argv[0], ": ", std::strerror(error)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Dies with the thread that started it, even if its process crashes;
    // the check covers a parent that died before the prctl.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // The caller's thread may block signals (gRPC's threads do); a server
    // must see SIGTERM.
    sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(c_args[0], c_args.data());
    const ssize_t ignored =
        write(STDERR_FILENO, cannot_run.data(), cannot_run.size());
    (void)ignored;
    _exit(127);
  }
  const int fork_errno = errno;
  close(err_pipe[1]);
  close(out_pipe[1]);
  if (pid < 0) {
    close(err_pipe[0]);
    CloseIfOpen(out_pipe[0]);
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  return Child{pid, out_pipe[0], err_pipe[0]};
}

int WaitBlocking(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r == pid ? DecodeWaitStatus(status) : -1;
}

}  // namespace

std::string Field(const std::string& out, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, key + ": ")) {
      return std::string(line.substr(key.size() + 2));
    }
  }
  return "";
}

int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      return std::strtoll(line.c_str() + 6, nullptr, 10);
    }
  }
  return -1;
}

RunResult Run(const std::vector<std::string>& argv) {
  RunResult result;
  absl::StatusOr<Child> child = Spawn(argv, /*capture_out=*/true);
  if (!child.ok()) {
    result.err = std::string(child.status().message());
    return result;
  }
  // Both pipes are drained together, so that neither can fill up and block
  // the child.
  pollfd fds[2] = {{child->out_fd, POLLIN, 0}, {child->err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buffer[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& fd : fds) CloseIfOpen(fd.fd);
  result.exit_code = WaitBlocking(child->pid);
  return result;
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv) {
  const Clock::time_point started = Clock::now();
  absl::StatusOr<Child> child = Spawn(argv, /*capture_out=*/false);
  if (!child.ok()) return child.status();
  auto process = std::unique_ptr<Subprocess>(new Subprocess());
  process->started_ = started;
  process->pid_ = child->pid;
  process->err_fd_ = child->err_fd;
  process->reader_ = std::thread([p = process.get()] { p->ReadErr(); });
  return process;
}

Subprocess::~Subprocess() {
  Kill();
  // The pipe ends when the child dies, unless a child of the child still
  // holds it: the reader then stops at its next look at the flag.
  stop_reading_ = true;
  if (reader_.joinable()) reader_.join();
  CloseIfOpen(err_fd_);
}

void Subprocess::ReadErr() {
  char buffer[4096];
  while (!stop_reading_) {
    pollfd fd = {err_fd_, POLLIN, 0};
    const int ready = poll(&fd, 1, /*timeout_ms=*/100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = read(err_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    const Clock::time_point now = Clock::now();
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(mu_);
    err_.append(buffer, static_cast<size_t>(n));
    chunks_.emplace_back(err_.size(), now);
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  err_closed_ = true;
  changed_.notify_all();
}

std::optional<std::string> Subprocess::ReadErrLine(absl::Duration timeout,
                                                   Clock::time_point* read_at) {
  std::unique_lock<std::mutex> lock(mu_);
  size_t eol = std::string::npos;
  changed_.wait_until(lock, DeadlineAfter(timeout), [&] {
    eol = err_.find('\n', next_line_);
    return eol != std::string::npos || err_closed_;
  });
  eol = err_.find('\n', next_line_);
  if (eol == std::string::npos) return std::nullopt;
  std::string line = err_.substr(next_line_, eol - next_line_);
  // The chunk that held the '\n': the first that ends after it.
  const auto chunk = std::upper_bound(
      chunks_.begin(), chunks_.end(), eol,
      [](size_t offset, const std::pair<size_t, Clock::time_point>& c) {
        return offset < c.first;
      });
  if (read_at != nullptr && chunk != chunks_.end()) *read_at = chunk->second;
  next_line_ = eol + 1;
  chunks_.erase(chunks_.begin(), chunk);
  return line;
}

std::string Subprocess::err_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, signal);
}

bool Subprocess::Reap(bool block) {
  if (exit_code_.has_value()) return true;
  if (pid_ <= 0) return false;
  if (block) {
    exit_code_ = WaitBlocking(pid_);
    return true;
  }
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
  } else if (r < 0) {
    exit_code_ = -1;  // not a child of ours any more: nothing to wait for
  }
  return exit_code_.has_value();
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const Clock::time_point deadline = DeadlineAfter(timeout);
  while (!Reap(/*block=*/false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return exit_code_;
}

int Subprocess::Kill() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    kill(pid_, SIGKILL);
    Reap(/*block=*/true);
  }
  return exit_code_.value_or(-1);
}

}  // namespace lepton::testing
