// latency_bench: how far one caller's single-instance Predict is from the
// wire's floor on loopback, all measured in one run (issue 16, "Predict near
// the wire's floor").
//
// It starts a lepton_server of its own (--server, in memory: --data_dir=) on
// a free loopback port, opens one channel (one TCP connection), creates a
// softmax model (D = 784, K = 10, bench/load_workload.h's dense kind) and
// teaches it one Update of 256 examples. Then three phases, each
// --warmup_calls unmeasured calls and --calls measured ones, one after the
// other, from this program's main thread, one call at a time:
//   predict   ModelService/Predict with one dense instance, a synchronous
//             unary call (requests cycle through 64 ready-made ones);
//   health    grpc.health.v1.Health/Check with service "", the same way;
//   tcp echo  a thread of this program blocks in read() on an accepted
//             loopback socket and writes back what it read; the main thread
//             writes as many bytes as the serialized Predict request and
//             reads them all back. TCP_NODELAY on both ends.
// Each phase's row gives p50, p99 and max latency, and the context switches
// per measured call of the server side: for predict and health, voluntary +
// nonvoluntary switches summed over every /proc/<server>/task/*/status, read
// just before and just after the measured calls; for the echo, the same of
// the echo thread alone. A thread that ends between the two reads takes its
// switches with it, so the program says so when that happens (the figure is
// then a lower bound). Then the ratios the goals are stated in, each
// from this run: Predict p50 / echo p50 (goal <= 2), health p50 / echo p50,
// Predict p99 / Predict p50 (goal <= 3), and Predict's switches per call
// (goal <= 1.5). Goals are reported, never enforced: the machines are noisy.
//
// The last line is "unexpected errors: N"; the exit status is 0 iff N is 0
// (every call succeeded and the server exited 0 on SIGTERM).
//
//   latency_bench [--server=build/server/lepton_server] [--calls=5000]
//   latency_bench --calls=50 --warmup_calls=10   # CTest latency_bench_smoke
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "bench/load_stats.h"
#include "bench/load_workload.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, server, lepton::testing::kServerPath,
          "the lepton_server binary to start (default: the one built with "
          "this program)");
ABSL_FLAG(int32_t, calls, 5000, "measured calls of each phase");
ABSL_FLAG(int32_t, rounds, 1,
          "the phases take turns this many times, --calls / --rounds calls "
          "each turn");
ABSL_FLAG(int32_t, warmup_calls, 500,
          "unmeasured calls before each phase's measured ones");
ABSL_FLAG(std::vector<std::string>, server_flags, {},
          "comma-separated extra flags for the server");

namespace {

using namespace lepton;
using lepton::bench::Clock;
using lepton::testing::ServerProcess;

constexpr std::chrono::seconds kDeadline(10);
constexpr char kModel[] = "latency-bench";

// Context switches (voluntary + nonvoluntary) of each thread, by thread id.
using SwitchCounts = std::map<int64_t, int64_t>;

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

// Every thread of process `pid`, from /proc/<pid>/task/*/status.
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

// Thread `tid` of this process alone.
SwitchCounts ThreadSwitches(int64_t tid) {
  SwitchCounts counts;
  if (std::optional<int64_t> n =
          SwitchesOf(absl::StrCat("/proc/self/task/", tid, "/status"))) {
    counts[tid] = *n;
  }
  return counts;
}

struct SwitchDelta {
  int64_t switches = 0;
  // Threads seen before the phase and gone after it: their switches during
  // the phase are missing from `switches`.
  int ended_threads = 0;
};

// Threads born during the phase count from zero.
SwitchDelta Delta(const SwitchCounts& before, const SwitchCounts& after) {
  SwitchDelta d;
  for (const auto& [tid, n] : after) {
    auto it = before.find(tid);
    d.switches += n - (it == before.end() ? 0 : it->second);
  }
  for (const auto& [tid, n] : before) {
    if (!after.contains(tid)) ++d.ended_threads;
  }
  return d;
}

struct PhaseResult {
  std::string name;
  int64_t calls = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  double switches_per_call = 0;
  int ended_threads = 0;
};

// One kind of call, measured in slices: the phases take turns, so that a
// change of the machine's load between slices falls on all of them alike.
struct Phase {
  std::string name;
  std::function<bool(int64_t)> call;  // false: it failed
  std::function<SwitchCounts()> switches;
  std::vector<int64_t> latencies_ns;
  int64_t switches_total = 0;
  int ended_threads = 0;
  int64_t next = 0;  // the index of the next call
};

Phase MakePhase(std::string name, std::function<bool(int64_t)> call,
                std::function<SwitchCounts()> switches) {
  Phase phase;
  phase.name = std::move(name);
  phase.call = std::move(call);
  phase.switches = std::move(switches);
  return phase;
}

// `n` calls of `phase` (unmeasured with `measure` false), with its context
// switches read around them; false if a call failed.
bool RunSlice(Phase& phase, int n, bool measure) {
  const SwitchCounts before = phase.switches();
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
  if (measure) {
    const SwitchDelta delta = Delta(before, phase.switches());
    phase.switches_total += delta.switches;
    phase.ended_threads += delta.ended_threads;
  }
  return true;
}

PhaseResult ResultOf(Phase& phase) {
  PhaseResult result;
  result.name = phase.name;
  result.calls = static_cast<int64_t>(phase.latencies_ns.size());
  if (result.calls == 0) return result;
  result.max_us = static_cast<double>(*std::max_element(
                      phase.latencies_ns.begin(), phase.latencies_ns.end())) /
                  1e3;
  result.switches_per_call = static_cast<double>(phase.switches_total) /
                             static_cast<double>(result.calls);
  result.ended_threads = phase.ended_threads;
  const bench::LatencySummary summary =
      bench::Summarize(std::move(phase.latencies_ns));
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

// Reads exactly `n` bytes; false on an error or a closed peer.
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

// The floor: a thread that echoes whatever one loopback client sends, with
// one blocking read() and write() per chunk, the least a server can do per
// call. Start() returns once the client is connected.
class EchoServer {
 public:
  ~EchoServer() {
    // Ends the thread's read(), or its accept() if no client connected.
    if (client_fd_ >= 0) ::close(client_fd_);
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  // The connected client socket, or why there is none.
  absl::StatusOr<int> Start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) !=
            0) {
      return absl::UnavailableError(
          absl::StrCat("echo listen: ", std::strerror(errno)));
    }
    thread_ = std::thread([this] { Serve(); });
    client_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (client_fd_ < 0 ||
        ::connect(client_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return absl::UnavailableError(
          absl::StrCat("echo connect: ", std::strerror(errno)));
    }
    SetNoDelay(client_fd_);
    while (tid_.load() == 0) std::this_thread::yield();
    return client_fd_;
  }

  // The echo thread's id, for /proc/self/task/<tid>/status.
  int64_t tid() const { return tid_.load(); }

 private:
  void Serve() {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd >= 0) SetNoDelay(fd);
    tid_.store(static_cast<int64_t>(::syscall(SYS_gettid)));
    if (fd < 0) return;
    std::vector<char> buffer(1 << 16);
    while (true) {
      const ssize_t r = ::read(fd, buffer.data(), buffer.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || !WriteAll(fd, buffer.data(), static_cast<size_t>(r))) {
        break;
      }
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  int client_fd_ = -1;
  std::atomic<int64_t> tid_{0};
  std::thread thread_;
};

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kDeadline;
}

void PrintRow(const PhaseResult& r) {
  std::printf("%-10s %7lld %9.1f %9.1f %9.1f %12.2f%s\n", r.name.c_str(),
              static_cast<long long>(r.calls), r.p50_us, r.p99_us, r.max_us,
              r.switches_per_call, r.ended_threads > 0 ? " (lower bound)" : "");
  if (r.ended_threads > 0) {
    std::printf(
        "  note: %d server thread(s) ended during %s; their switches "
        "are not counted\n",
        r.ended_threads, r.name.c_str());
  }
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "One caller's Predict, health check and a TCP echo on loopback: "
      "p50/p99/max and server context switches per call, in one run.");
  absl::ParseCommandLine(argc, argv);
  const int calls = absl::GetFlag(FLAGS_calls);
  const int warmup = absl::GetFlag(FLAGS_warmup_calls);
  bench::Errors errors;

  std::vector<std::string> flags = {"--data_dir="};
  for (const std::string& f : absl::GetFlag(FLAGS_server_flags)) {
    flags.push_back(f);
  }
  ServerProcess server(absl::GetFlag(FLAGS_server));
  if (absl::Status s = server.Start(flags); !s.ok()) {
    errors.Add(absl::StrCat("server: ", s.ToString()));
    std::printf("unexpected errors: %lld\n",
                static_cast<long long>(errors.count));
    return 1;
  }
  std::shared_ptr<grpc::Channel> channel = bench::Connect(server.target());
  if (!channel->WaitForConnected(Deadline())) {
    errors.Add("cannot connect to " + server.target());
    std::printf("unexpected errors: %lld\n",
                static_cast<long long>(errors.count));
    return 1;
  }
  auto models = v1::ModelService::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);

  bench::WorkloadOptions options;
  options.kind = bench::WorkloadKind::kDenseSoftmax;
  options.pool_size = 256;
  const bench::Workload workload(options);
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    v1::ModelInfo info;
    grpc::Status s =
        models->CreateModel(&context, workload.CreateRequest(kModel), &info);
    if (!s.ok()) errors.Add("CreateModel: " + bench::Describe(s));
  }
  {
    // A taught model, not all zeros; Predict's arithmetic is the same.
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    v1::UpdateResponse response;
    grpc::Status s = models->Update(
        &context, workload.UpdateRequests(kModel, 256, 1)[0], &response);
    if (!s.ok()) errors.Add("Update: " + bench::Describe(s));
  }
  const std::vector<v1::PredictRequest> predicts =
      workload.PredictRequests(kModel, 1, 64);
  const size_t request_bytes = predicts[0].ByteSizeLong();

  std::printf("lepton_server pid %d on %s, one channel, one call at a time\n",
              server.pid(), server.target().c_str());
  std::printf("model: %s; Predict: 1 instance, %zu bytes serialized\n",
              workload.Describe().c_str(), request_bytes);
  std::printf(
      "%d warm-up + %d measured calls per phase, in %d turns of the phases\n\n",
      warmup, calls, std::max(1, std::min(absl::GetFlag(FLAGS_rounds), calls)));

  const int pid = server.pid();
  auto server_switches = [pid] { return ProcessSwitches(pid); };
  std::vector<Phase> phases;
  phases.push_back(MakePhase(
      "predict",
      [&](int64_t i) {
        grpc::ClientContext context;
        context.set_deadline(Deadline());
        v1::PredictResponse response;
        grpc::Status s = models->Predict(
            &context, predicts[static_cast<size_t>(i) % predicts.size()],
            &response);
        if (!s.ok()) errors.Add("Predict: " + bench::Describe(s));
        return s.ok();
      },
      server_switches));
  const grpc::health::v1::HealthCheckRequest health_request;
  phases.push_back(MakePhase(
      "health",
      [&](int64_t) {
        grpc::ClientContext context;
        context.set_deadline(Deadline());
        grpc::health::v1::HealthCheckResponse response;
        grpc::Status s = health->Check(&context, health_request, &response);
        if (!s.ok()) errors.Add("Health/Check: " + bench::Describe(s));
        return s.ok();
      },
      server_switches));
  EchoServer echo_server;
  absl::StatusOr<int> fd = echo_server.Start();
  const std::string out(request_bytes, 'x');
  std::string in(request_bytes, '\0');
  if (!fd.ok()) {
    errors.Add(fd.status().ToString());
  } else {
    const int64_t tid = echo_server.tid();
    phases.push_back(MakePhase(
        "tcp echo",
        [&](int64_t) {
          const bool ok = WriteAll(*fd, out.data(), out.size()) &&
                          ReadAll(*fd, in.data(), in.size());
          if (!ok) errors.Add("echo: the connection failed");
          return ok;
        },
        [tid] { return ThreadSwitches(tid); }));
  }
  bool failed = false;
  for (Phase& phase : phases)
    failed = failed || !RunSlice(phase, warmup, false);
  const int rounds = std::max(1, std::min(absl::GetFlag(FLAGS_rounds), calls));
  for (int r = 0; r < rounds && !failed; ++r) {
    // The last round takes what the division leaves.
    const int n = r + 1 < rounds ? calls / rounds : calls - calls / rounds * r;
    for (Phase& phase : phases) failed = failed || !RunSlice(phase, n, true);
  }
  std::optional<PhaseResult> predict, check, echo;
  if (!failed) {
    predict = ResultOf(phases[0]);
    check = ResultOf(phases[1]);
    if (phases.size() > 2) echo = ResultOf(phases[2]);
  }

  std::printf("%-10s %7s %9s %9s %9s %12s\n", "phase", "calls", "p50 us",
              "p99 us", "max us", "srv cs/call");
  for (const std::optional<PhaseResult>* r : {&predict, &check, &echo}) {
    if (r->has_value()) PrintRow(**r);
  }
  std::printf(
      "srv cs/call: context switches per measured call of all the server's "
      "threads\n(tcp echo: of the echo thread)\n\n");
  if (predict && check && echo) {
    std::printf("%-38s %7.2f\n", "Predict p50 / echo p50 (goal <= 2)",
                Ratio(predict->p50_us, echo->p50_us));
    std::printf("%-38s %7.2f\n", "health p50 / echo p50",
                Ratio(check->p50_us, echo->p50_us));
    std::printf("%-38s %7.2f\n", "Predict p99 / Predict p50 (goal <= 3)",
                Ratio(predict->p99_us, predict->p50_us));
    std::printf("%-38s %7.2f\n", "Predict srv cs/call (goal <= 1.5)",
                predict->switches_per_call);
  }

  const absl::StatusOr<int> exit = server.Terminate(absl::Seconds(30));
  if (!exit.ok() || *exit != 0) {
    errors.Add("server stop: " + bench::DescribeExit(exit));
  }
  std::printf("unexpected errors: %lld\n",
              static_cast<long long>(errors.count));
  return errors.count == 0 ? 0 : 1;
}
