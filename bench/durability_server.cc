#include "bench/durability_server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lepton::bench {
namespace {

constexpr absl::string_view kServing = "serving on port ";

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::vector<std::string>& flags,
    absl::Duration timeout) {
  std::vector<std::string> args = {binary, "--listen=127.0.0.1:0",
                                   "--metrics_listen=127.0.0.1:0"};
  args.insert(args.end(), flags.begin(), flags.end());
  // Everything the child needs is made before fork(): between fork() and
  // exec() a multithreaded parent's child may only make async-signal-safe
  // calls.
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t parent = getpid();

  auto process = std::unique_ptr<ServerProcess>(new ServerProcess());
  process->spawned_ = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    // The server dies with the benchmark, even if the benchmark crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (null_fd >= 0) dup2(null_fd, STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const int fork_errno = errno;
  close(err_pipe[1]);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    close(err_pipe[0]);
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  process->pid_ = pid;
  process->err_fd_ = err_pipe[0];
  process->drain_ = std::thread([p = process.get()] { p->Drain(); });

  bool ready;
  {
    std::unique_lock<std::mutex> lock(process->mu_);
    process->changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
      return process->found_port_ != 0 || process->err_closed_;
    });
    ready = process->found_port_ != 0;
    process->port_ = process->found_port_;
    process->serving_ = process->found_at_;
  }
  if (!ready) {
    process->Kill();
    return absl::UnavailableError(
        absl::StrCat(binary, " did not report its port (exit status ",
                     process->exit_status_.value_or(-1), "); stderr:\n",
                     process->stderr_text()));
  }
  return process;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !exit_status_.has_value()) Kill();
  if (drain_.joinable()) drain_.join();
  if (err_fd_ >= 0) close(err_fd_);
}

std::string ServerProcess::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string ServerProcess::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

void ServerProcess::Drain() {
  char buffer[4096];
  while (true) {
    const ssize_t n = read(err_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    const Clock::time_point now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    if (n <= 0) {
      err_closed_ = true;
      changed_.notify_all();
      return;
    }
    err_.append(buffer, static_cast<size_t>(n));
    if (found_port_ != 0) continue;
    const size_t at = absl::string_view(err_).find(kServing);
    if (at == std::string::npos) continue;
    absl::string_view rest =
        absl::string_view(err_).substr(at + kServing.size());
    const size_t end = rest.find_first_not_of("0123456789");
    if (end == absl::string_view::npos) continue;  // the number is incomplete
    int port = 0;
    if (absl::SimpleAtoi(rest.substr(0, end), &port) && port > 0) {
      found_port_ = port;
      found_at_ = now;
      changed_.notify_all();
    }
  }
}

bool ServerProcess::Reap(bool block) {
  if (exit_status_.has_value()) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  exit_status_ = DecodeWaitStatus(status);
  return true;
}

void ServerProcess::Kill() {
  if (exit_status_.has_value()) return;
  kill(pid_, SIGKILL);
  Reap(/*block=*/true);
}

absl::StatusOr<int> ServerProcess::Terminate(absl::Duration timeout) {
  if (!exit_status_.has_value()) {
    kill(pid_, SIGTERM);
    const Clock::time_point deadline =
        Clock::now() + absl::ToChronoNanoseconds(timeout);
    while (!Reap(/*block=*/false)) {
      if (Clock::now() >= deadline) {
        Kill();
        return absl::DeadlineExceededError(
            absl::StrCat("lepton_server did not exit within ",
                         absl::FormatDuration(timeout), " of SIGTERM; killed"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  return *exit_status_;
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/lepton-dbench-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "durability_bench: mkdtemp(%s): %s\n", pattern.c_str(),
                 std::strerror(errno));
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

int64_t TempDir::Bytes() const {
  int64_t total = 0;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(path_, error)) {
    std::error_code e;
    if (entry.is_regular_file(e)) {
      total += static_cast<int64_t>(entry.file_size(e));
    }
  }
  return total;
}

}  // namespace lepton::bench
