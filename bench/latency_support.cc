#include "bench/latency_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_support.h"
#include "bench/load_stats.h"
#include "bench/load_workload.h"

namespace lepton::bench {
namespace {

// The switches of one /proc/.../status file; nullopt if it is unreadable
// (the thread ended).
std::optional<int64_t> SwitchesOf(const std::string& status_path) {
  std::ifstream in(status_path);
  if (!in) return std::nullopt;
  int64_t total = 0;
  int found = 0;
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key :
         {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
      if (line.rfind(key, 0) != 0) continue;
      int64_t n = 0;
      if (absl::SimpleAtoi(line.substr(std::strlen(key)), &n)) {
        total += n;
        ++found;
      }
    }
  }
  if (found != 2) return std::nullopt;
  return total;
}

int64_t ClockNanos(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

std::chrono::system_clock::time_point CallDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

SwitchCounts ProcessSwitches(int pid) {
  SwitchCounts counts;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), error)) {
    int64_t tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    if (std::optional<int64_t> n =
            SwitchesOf((entry.path() / "status").string())) {
      counts[tid] = *n;
    }
  }
  return counts;
}

SwitchCounts ThreadSwitches(int64_t tid) {
  SwitchCounts counts;
  if (std::optional<int64_t> n =
          SwitchesOf(absl::StrCat("/proc/self/task/", tid, "/status"))) {
    counts[tid] = *n;
  }
  return counts;
}

std::map<int64_t, std::string> ThreadNames(int pid) {
  std::map<int64_t, std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), error)) {
    int64_t tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    std::ifstream in(entry.path() / "comm");
    std::string name;
    if (in && std::getline(in, name)) names[tid] = name;
  }
  return names;
}

SwitchDelta Delta(const SwitchCounts& before, const SwitchCounts& after) {
  SwitchDelta d;
  for (const auto& [tid, n] : after) {
    auto it = before.find(tid);
    const int64_t delta = n - (it == before.end() ? 0 : it->second);
    d.switches += delta;
    d.by_thread[tid] = delta;
  }
  for (const auto& [tid, n] : before) {
    if (!after.contains(tid)) ++d.ended_threads;
  }
  return d;
}

int64_t ProcessCpuNanos(int pid) {
  clockid_t clock;
  if (pid <= 0 || clock_getcpuclockid(pid, &clock) != 0) return -1;
  return ClockNanos(clock);
}

int64_t SelfCpuNanos() { return ClockNanos(CLOCK_PROCESS_CPUTIME_ID); }

Phase MakePhase(std::string name, std::function<bool(int64_t)> call,
                std::function<SwitchCounts()> switches) {
  Phase phase;
  phase.name = std::move(name);
  phase.call = std::move(call);
  phase.switches = std::move(switches);
  return phase;
}

bool RunSlice(Phase& phase, int n, bool measure) {
  const SwitchCounts before = phase.switches();
  const int64_t server_cpu_before =
      measure && phase.server_cpu_ns ? phase.server_cpu_ns() : 0;
  const int64_t self_cpu_before =
      measure && phase.measure_self_cpu ? SelfCpuNanos() : 0;
  const double busy_before = measure ? MachineBusySeconds() : 0;
  const Clock::time_point slice_start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const Clock::time_point start = Clock::now();
    if (!phase.call(phase.next++)) return false;
    if (measure) {
      phase.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                               start)
              .count());
    }
  }
  if (!measure) return true;
  phase.wall_seconds += Seconds(Clock::now() - slice_start);
  const double busy_after = MachineBusySeconds();
  if (busy_before < 0 || busy_after < 0) phase.cpu_unreadable = true;
  phase.machine_busy_seconds += busy_after - busy_before;
  if (phase.measure_self_cpu) {
    phase.self_cpu_total_ns += SelfCpuNanos() - self_cpu_before;
  }
  if (phase.server_cpu_ns) {
    const int64_t after = phase.server_cpu_ns();
    if (server_cpu_before < 0 || after < 0) phase.cpu_unreadable = true;
    phase.server_cpu_total_ns += after - server_cpu_before;
  }
  const SwitchDelta delta = Delta(before, phase.switches());
  phase.switches_total += delta.switches;
  phase.ended_threads += delta.ended_threads;
  for (const auto& [tid, n] : delta.by_thread) {
    phase.switches_by_thread[tid] += n;
  }
  return true;
}

PhaseResult ResultOf(Phase& phase) {
  PhaseResult result;
  result.name = phase.name;
  result.calls = static_cast<int64_t>(phase.latencies_ns.size());
  if (result.calls == 0) return result;
  const double calls = static_cast<double>(result.calls);
  result.max_us = static_cast<double>(*std::max_element(
                      phase.latencies_ns.begin(), phase.latencies_ns.end())) /
                  1e3;
  result.switches_per_call =
      static_cast<double>(phase.switches_total) / calls;
  result.ended_threads = phase.ended_threads;
  if (phase.thread_names) {
    const std::map<int64_t, std::string> names = phase.thread_names();
    for (const auto& [tid, n] : phase.switches_by_thread) {
      auto it = names.find(tid);
      result.switches_by_name[it == names.end() ? "(ended)" : it->second] +=
          static_cast<double>(n) / calls;
    }
  }
  if (!phase.cpu_unreadable) {
    if (phase.server_cpu_ns) {
      result.server_cpu_us =
          static_cast<double>(phase.server_cpu_total_ns) / 1e3 / calls;
    }
    if (phase.measure_self_cpu) {
      result.client_cpu_us =
          static_cast<double>(phase.self_cpu_total_ns) / 1e3 / calls;
    }
    if (phase.wall_seconds > 0) {
      result.machine_cores = phase.machine_busy_seconds / phase.wall_seconds;
    }
  }
  result.wall_seconds = phase.wall_seconds;
  const LatencySummary summary = Summarize(std::move(phase.latencies_ns));
  result.p50_us = summary.p50_us;
  result.p99_us = summary.p99_us;
  return result;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, data, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    data += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void EchoLoop(int fd) {
  std::vector<char> buffer(1 << 16);
  while (true) {
    const ssize_t r = ::read(fd, buffer.data(), buffer.size());
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || !WriteAll(fd, buffer.data(), static_cast<size_t>(r))) {
      break;
    }
  }
}

absl::StatusOr<std::pair<int, int>> ListenLoopback(int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("echo listen: ", std::strerror(error)));
  }
  return std::make_pair(fd, static_cast<int>(ntohs(addr.sin_port)));
}

absl::StatusOr<int> ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr),
                          sizeof(addr)) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("echo connect: ", std::strerror(error)));
  }
  SetNoDelay(fd);
  return fd;
}

EchoServer::~EchoServer() {
  // Ends the thread's read(), or its accept() if no client connected.
  if (client_fd_ >= 0) ::close(client_fd_);
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

absl::StatusOr<int> EchoServer::Start() {
  absl::StatusOr<std::pair<int, int>> listening = ListenLoopback(1);
  if (!listening.ok()) return listening.status();
  listen_fd_ = listening->first;
  thread_ = std::thread([this] { Serve(); });
  absl::StatusOr<int> client = ConnectLoopback(listening->second);
  if (!client.ok()) return client.status();
  client_fd_ = *client;
  while (tid_.load() == 0) std::this_thread::yield();
  return client_fd_;
}

void EchoServer::Serve() {
  const int fd = ::accept(listen_fd_, nullptr, nullptr);
  if (fd >= 0) SetNoDelay(fd);
  tid_.store(static_cast<int64_t>(::syscall(SYS_gettid)));
  if (fd < 0) return;
  EchoLoop(fd);
  ::close(fd);
}

absl::StatusOr<DenseModel> PrepareDenseModel(v1::ModelService::Stub& models,
                                             const std::string& model) {
  WorkloadOptions options;
  options.kind = WorkloadKind::kDenseSoftmax;
  options.pool_size = 256;
  const Workload workload(options);
  {
    grpc::ClientContext context;
    context.set_deadline(CallDeadline());
    v1::ModelInfo info;
    grpc::Status s =
        models.CreateModel(&context, workload.CreateRequest(model), &info);
    if (!s.ok()) return absl::UnavailableError("CreateModel: " + Describe(s));
  }
  {
    // A taught model, not all zeros; Predict's arithmetic is the same.
    grpc::ClientContext context;
    context.set_deadline(CallDeadline());
    v1::UpdateResponse response;
    grpc::Status s = models.Update(
        &context, workload.UpdateRequests(model, 256, 1)[0], &response);
    if (!s.ok()) return absl::UnavailableError("Update: " + Describe(s));
  }
  DenseModel dense;
  dense.description = workload.Describe();
  dense.predicts = workload.PredictRequests(model, 1, 64);
  return dense;
}

}  // namespace lepton::bench
