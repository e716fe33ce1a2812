// What the one-caller latency programs (latency_bench, grpc_floor_bench)
// share: context switches and CPU time of a server process read from /proc,
// phases of calls measured in slices, the TCP echo that is their floor, and
// the taught dense model whose single-instance Predict they time.
//
//   Phase phase = MakePhase("health", [&](int64_t) { return Check(); },
//                           [pid] { return ProcessSwitches(pid); });
//   phase.server_cpu_ns = [pid] { return ProcessCpuNanos(pid); };
//   RunSlice(phase, 500, /*measure=*/false);   // warm-up
//   RunSlice(phase, 5000, /*measure=*/true);
//   PhaseResult r = ResultOf(phase);           // p50, p99, switches per call
//
// A phase's switches are the voluntary + nonvoluntary context switches of
// every thread its `switches` function reports (for a server, every
// /proc/<pid>/task/*/status), read just before and just after each measured
// slice. A thread that ends between the two reads takes its switches with
// it: ended_threads says so (the figure is then a lower bound).
//
// Thread safety: the functions are safe on any thread; a Phase is used by one
// thread.
#ifndef LEPTON_BENCH_LATENCY_SUPPORT_H_
#define LEPTON_BENCH_LATENCY_SUPPORT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::bench {

// Now plus 10 s: the deadline of every call the latency programs make.
std::chrono::system_clock::time_point CallDeadline();

// Context switches (voluntary + nonvoluntary) of each thread, by thread id.
using SwitchCounts = std::map<int64_t, int64_t>;

// Every thread of process `pid`, from /proc/<pid>/task/*/status.
SwitchCounts ProcessSwitches(int pid);
// Thread `tid` of this process alone.
SwitchCounts ThreadSwitches(int64_t tid);
// The name (comm) of every thread of process `pid`, by thread id.
std::map<int64_t, std::string> ThreadNames(int pid);

struct SwitchDelta {
  int64_t switches = 0;
  // Threads seen before and gone after: their switches in between are
  // missing from `switches`.
  int ended_threads = 0;
  // The switches of each thread (threads born in between count from zero).
  SwitchCounts by_thread;
};
SwitchDelta Delta(const SwitchCounts& before, const SwitchCounts& after);

// CPU time (user + system, every thread) process `pid` has used so far, in
// nanoseconds, from its CPU-time clock (clock_getcpuclockid); -1 if
// unreadable.
int64_t ProcessCpuNanos(int pid);
// The same for this process (CLOCK_PROCESS_CPUTIME_ID).
int64_t SelfCpuNanos();

struct PhaseResult {
  std::string name;
  int64_t calls = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  double switches_per_call = 0;
  int ended_threads = 0;
  // Switches per call of the server's threads, summed by thread name.
  std::map<std::string, double> switches_by_name;
  // Microseconds of CPU per call: the server's (with server_cpu_ns; else -1)
  // and this process's, every thread (with measure_self_cpu; else -1).
  double server_cpu_us = -1;
  double client_cpu_us = -1;
  // Cores the whole machine kept busy during the measured calls
  // (/proc/stat), beside the server's and this process's share of them;
  // -1 if unreadable.
  double machine_cores = -1;
  double wall_seconds = 0;
};

// One kind of call, measured in slices: the phases may take turns, so that a
// change of the machine's load between slices falls on all of them alike.
struct Phase {
  std::string name;
  std::function<bool(int64_t)> call;  // false: it failed
  std::function<SwitchCounts()> switches;
  // Optional: the server's CPU clock, and the names of its threads (read
  // at the end, for switches_by_name).
  std::function<int64_t()> server_cpu_ns;
  std::function<std::map<int64_t, std::string>()> thread_names;
  bool measure_self_cpu = false;

  std::vector<int64_t> latencies_ns;
  int64_t switches_total = 0;
  int ended_threads = 0;
  SwitchCounts switches_by_thread;
  int64_t server_cpu_total_ns = 0;
  int64_t self_cpu_total_ns = 0;
  double machine_busy_seconds = 0;
  double wall_seconds = 0;
  bool cpu_unreadable = false;
  int64_t next = 0;  // the index of the next call
};

Phase MakePhase(std::string name, std::function<bool(int64_t)> call,
                std::function<SwitchCounts()> switches);

// `n` calls of `phase` (unmeasured with `measure` false), with its context
// switches (and CPU times) read around them; false if a call failed.
bool RunSlice(Phase& phase, int n, bool measure);

// Latency percentiles and per-call figures of the measured calls (consumes
// the latencies).
PhaseResult ResultOf(Phase& phase);

// Writes all of `data`; false on an error.
bool WriteAll(int fd, const char* data, size_t n);
// Reads exactly `n` bytes; false on an error or a closed peer.
bool ReadAll(int fd, char* data, size_t n);
void SetNoDelay(int fd);
// The echo: one blocking read() and one write() of what it read, per chunk,
// on connected socket `fd`, until the peer closes it or an error.
void EchoLoop(int fd);

// A loopback listening socket on a free port: {fd, port}, or why not.
absl::StatusOr<std::pair<int, int>> ListenLoopback(int backlog);
// A TCP_NODELAY connection to 127.0.0.1:`port`.
absl::StatusOr<int> ConnectLoopback(int port);

// The floor as a thread of this process: it echoes whatever one loopback
// client sends (EchoLoop). Start() returns once the client is connected.
class EchoServer {
 public:
  ~EchoServer();

  // The connected client socket, or why there is none.
  absl::StatusOr<int> Start();
  // The echo thread's id, for /proc/self/task/<tid>/status.
  int64_t tid() const { return tid_.load(); }

 private:
  void Serve();

  int listen_fd_ = -1;
  int client_fd_ = -1;
  std::atomic<int64_t> tid_{0};
  std::thread thread_;
};

// The model whose single-instance Predict the latency programs time: a
// softmax model (D = 784, K = 10, load_workload.h's dense kind) created as
// `model` and taught one Update of 256 examples, and 64 ready-made
// single-instance requests for it.
struct DenseModel {
  std::string description;  // Workload::Describe()
  std::vector<v1::PredictRequest> predicts;
};
// The failed call, if one did.
absl::StatusOr<DenseModel> PrepareDenseModel(v1::ModelService::Stub& models,
                                             const std::string& model);

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LATENCY_SUPPORT_H_
