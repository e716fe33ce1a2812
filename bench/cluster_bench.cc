// cluster_bench: lepton_server's cluster mode (--cluster, a node of a
// cluster over a Redis Stream; core/replication/replicated_store.h)
// measured on one machine, against a redis-server and nodes of its own.
//
// It starts a redis-server (tests/testing/redis_server.h: a scratch
// directory, AOF on, appendfsync always) and nodes a and b (--cluster=
// redis://127.0.0.1:PORT/bench --data_dir=, each on a free loopback port,
// waited for until Health says SERVING), creates a logistic model (D = 1000,
// 10 nonzeros per example by default) through a, then runs three phases,
// each --warmup + --duration:
//
//  1. Replication lag. One client sends Updates of one example to a at
//     --lag_rate per second (0: closed loop). Right after each answer
//     (version v), the same thread starts an async Predict(min_version = v)
//     on b, and a second thread takes its completion: lag = b's answer time
//     - a's answer time. So a lag includes one Predict round trip (b may
//     have had v already); a plain Predict round trip on b, measured just
//     before, says how much. Prints p50, p99 and max over the samples
//     whose answer from a came in the window.
//  2. Update throughput. --update_clients closed-loop clients (caller i
//     sends to node i % 2, each a TCP connection of its own with one unary
//     Update of --batch examples in flight), first against a and b, then,
//     with the same clients and requests, against a fresh plain server
//     (--fsync=always on a temporary --data_dir, no --cluster): examples/s
//     of each and the ratio cluster / single. After each, every node must
//     show exactly the version the acknowledged updates make. --rounds=N
//     runs the pair N times and prints the medians: on a shared machine,
//     one burst of someone else's work then moves one round, not the
//     ratio.
//  3. Predict throughput with 1, 2 and 3 nodes (a; a and b; then c is
//     started, timed until it has caught up with the log, and all three):
//     --predict_callers per node, each a TCP connection of its own with one
//     unary Predict of one instance in flight. Per node: calls/s, the CPU
//     seconds its process used in the window (utime + stime from
//     /proc/PID/stat), calls per CPU-second; and this program's CPU.
//
// The clients are driven through gRPC's async API by --client_threads
// threads (bench/load_driver.h): a thread per client would take more of the
// two cores the nodes share with it. Every table shows each process's CPU,
// redis-server's and this program's included, and `other`: cores that
// processes outside this run kept busy. Since the nodes and the client
// share the machine's cores, calls/s cannot grow with nodes here; the calls
// per CPU-second of each node are what says how it scales on machines of
// their own.
//
// Every figure printed is measured in this run. The nodes are stopped with
// SIGTERM at the end (exit 0 required), and their warnings and errors are
// printed. The last line is "unexpected errors: N"; the exit status is 0 iff
// N is 0.
//
//   cluster_bench [--server=build/server/lepton_server] [--duration=3s]
//                 [--rounds=1] [--phases=lag,update,predict]
//   cluster_bench --smoke       # ~5 s: CTest cluster_bench_smoke
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "bench/load_driver.h"
#include "bench/load_stats.h"
#include "bench/load_workload.h"
#include "client/client.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, server, lepton::testing::kServerPath,
          "the lepton_server binary to start (default: the one built with "
          "this program)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "measured time of each run");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(500),
          "unmeasured time before each run's window");
ABSL_FLAG(double, lag_rate, 500,
          "Updates per second sent to node a in the lag phase; 0: closed "
          "loop (the next sent when the last is answered)");
ABSL_FLAG(int32_t, update_clients, 8,
          "closed-loop clients of the update phase (half to each node)");
ABSL_FLAG(int32_t, batch, 16, "examples per Update in the update phase");
ABSL_FLAG(int32_t, predict_callers, 4,
          "closed-loop Predict clients per node in the predict phase");
ABSL_FLAG(int32_t, client_threads, 2,
          "threads driving the closed-loop clients (async gRPC)");
ABSL_FLAG(int64_t, num_features, 1000, "D of the logistic model");
ABSL_FLAG(int32_t, nonzeros, 10, "nonzero features per example");
ABSL_FLAG(int32_t, rounds, 1,
          "runs of the update phase's pair (cluster, then single server), "
          "each with its ratio, then the medians: steadier on a shared "
          "machine");
ABSL_FLAG(std::vector<std::string>, phases,
          std::vector<std::string>({"lag", "update", "predict"}),
          "comma-separated, any of lag, update, predict (always run in "
          "that order)");
ABSL_FLAG(bool, smoke, false,
          "a short run for CI: --duration=0.3s --warmup=0.1s");

namespace {

using namespace lepton;
using lepton::bench::Clock;
using lepton::testing::RedisServer;
using lepton::testing::ScratchDir;
using lepton::testing::ServerProcess;

constexpr std::chrono::seconds kDeadline(10);
constexpr char kModel[] = "cluster-bench";
constexpr char kClusterName[] = "bench";

// A process whose CPU time a table shows; `serves`: it handles the run's
// calls (a node applies every update, whichever node was sent it).
struct Process {
  std::string name;
  int pid = -1;
  bool serves = false;
};

// CPU seconds of some processes, of this one and of the whole machine at
// the two edges of a measured window.
class CpuWindow {
 public:
  explicit CpuWindow(std::vector<Process> processes)
      : processes_(std::move(processes)),
        start_(processes_.size()),
        end_(processes_.size()) {}

  void Sample(bool start) {
    std::vector<double>& at = start ? start_ : end_;
    for (size_t i = 0; i < processes_.size(); ++i) {
      at[i] = bench::ProcessCpuSeconds(processes_[i].pid);
    }
    (start ? self_[0] : self_[1]) = bench::SelfCpuSeconds();
    (start ? machine_[0] : machine_[1]) = bench::MachineBusySeconds();
  }
  const std::vector<Process>& processes() const { return processes_; }
  // CPU seconds of processes()[i] in the window; -1 if unreadable.
  double Of(size_t i) const {
    return start_[i] < 0 || end_[i] < 0 ? -1 : end_[i] - start_[i];
  }
  double Self() const { return self_[1] - self_[0]; }
  // Cores that processes other than these and this one kept busy.
  double OtherCores(double window) const {
    if (machine_[0] < 0 || machine_[1] < 0) return -1;
    double other = machine_[1] - machine_[0] - Self();
    for (size_t i = 0; i < processes_.size(); ++i)
      other -= std::max(0.0, Of(i));
    // The counters tick at 100 Hz and are read at slightly different
    // moments, so a quiet machine can come out a hair below zero.
    return std::max(0.0, other / window);
  }

 private:
  const std::vector<Process> processes_;
  std::vector<double> start_;
  std::vector<double> end_;
  double self_[2] = {0, 0};
  double machine_[2] = {0, 0};
};

// One row of a per-process CPU table: `calls` (0: it served none) over
// `cpu_s` CPU seconds in a `window`-second window.
void PrintProcessRow(const std::string& name, int64_t calls, double cpu_s,
                     double window) {
  const std::string rate =
      calls > 0 ? absl::StrFormat("%.0f", calls / window) : "-";
  const std::string per_cpu =
      calls > 0 && cpu_s > 0 ? absl::StrFormat("%.0f", calls / cpu_s) : "-";
  const std::string per_call =
      calls > 0 && cpu_s >= 0 ? absl::StrFormat("%.1f", cpu_s * 1e6 / calls)
                              : "-";
  std::printf("    %-22s %10s %8.2f %6.2f %14s %12s\n", name.c_str(),
              rate.c_str(), cpu_s, cpu_s / window, per_cpu.c_str(),
              per_call.c_str());
}

void PrintProcessHeader(const char* unit) {
  std::printf("    %-22s %10s %8s %6s %14s %12s\n", "process",
              absl::StrCat(unit, "/s").c_str(), "CPU s", "cores",
              absl::StrCat(unit, "/CPU-s").c_str(),
              absl::StrCat("CPU us/", unit).c_str());
}

// A lepton_server node of the cluster, and its stub for the benchmark's
// own calls.
struct Node {
  std::string name;
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<client::Client> admin;
};

class Bench {
 public:
  Bench(std::string binary, bench::Errors* errors)
      : binary_(std::move(binary)), errors_(errors) {}

  absl::Status StartRedis() {
    absl::StatusOr<ScratchDir> dir = ScratchDir::Create("lepton-cbench");
    if (!dir.ok()) return dir.status();
    dir_ = *std::move(dir);
    absl::StatusOr<std::unique_ptr<RedisServer>> redis =
        RedisServer::Start(dir_.Path("redis"));
    if (!redis.ok()) return redis.status();
    redis_ = *std::move(redis);
    return absl::OkStatus();
  }
  int redis_pid() const { return redis_->pid(); }

  // Starts node `name` and waits until Health says SERVING (it has caught
  // up with the log); returns the seconds from its fork to then.
  absl::StatusOr<double> StartNode(const std::string& name) {
    Node node;
    node.name = name;
    node.process = std::make_unique<ServerProcess>(binary_);
    absl::Status s = node.process->Start(
        {absl::StrCat("--cluster=redis://127.0.0.1:", redis_->port(), "/",
                      kClusterName),
         "--data_dir=", absl::StrCat("--cluster_node_id=", name)});
    if (!s.ok()) return s;
    client::ClientOptions options;
    options.deadline = absl::Seconds(10);
    node.admin =
        std::make_unique<client::Client>(node.process->target(), options);
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(120);
    while (true) {
      absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> h =
          node.admin->Health();
      if (h.ok() && *h == grpc::health::v1::HealthCheckResponse::SERVING) {
        break;
      }
      if (Clock::now() > give_up) {
        return absl::UnavailableError(
            absl::StrCat("node ", name, " never became SERVING; stderr:\n",
                         node.process->err_text()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double seconds =
        bench::Seconds(Clock::now() - node.process->spawned());
    nodes_.push_back(std::move(node));
    return seconds;
  }

  std::vector<Node>& nodes() { return nodes_; }
  const std::string& binary() const { return binary_; }

  // Waits until node `i` has at least `version` (Predict with min_version),
  // then checks that it has exactly that version.
  void ExpectVersion(size_t i, uint64_t version, const std::string& label) {
    v1::PredictRequest probe = probe_;
    probe.set_min_version(version);
    absl::StatusOr<v1::PredictResponse> r = nodes_[i].admin->Predict(probe);
    if (!r.ok()) {
      errors_->Add(absl::StrCat(label, ": node ", nodes_[i].name,
                                " did not reach version ", version, ": ",
                                r.status().ToString()));
      return;
    }
    absl::StatusOr<v1::ModelInfo> info = nodes_[i].admin->GetModel(kModel);
    if (!info.ok() || info->version() != version) {
      errors_->Add(absl::StrCat(label, ": node ", nodes_[i].name, " is at ",
                                info.ok()
                                    ? absl::StrCat("version ", info->version())
                                    : info.status().ToString(),
                                ", expected version ", version));
    }
  }

  void set_probe(v1::PredictRequest probe) { probe_ = std::move(probe); }

  // SIGTERM to every node (exit 0 required); prints their warnings and
  // errors.
  void StopNodes() {
    for (Node& node : nodes_) node.admin.reset();
    for (Node& node : nodes_) {
      const Clock::time_point term = Clock::now();
      absl::StatusOr<int> exit = node.process->Terminate(absl::Seconds(30));
      const double stop_s = bench::Seconds(Clock::now() - term);
      if (!exit.ok() || *exit != 0) {
        errors_->Add(absl::StrCat(
            "node ", node.name,
            " did not stop cleanly on SIGTERM: ", bench::DescribeExit(exit),
            "; stderr:\n", node.process->err_text()));
        continue;
      }
      std::printf("  node %s: SIGTERM -> exit 0 in %.3f s\n", node.name.c_str(),
                  stop_s);
      PrintNotableLines(node.name, node.process->err_text());
    }
  }

 private:
  // The server's warn and error lines (server/log.h), the first few.
  static void PrintNotableLines(const std::string& name,
                                const std::string& err) {
    int shown = 0, total = 0;
    for (absl::string_view line : absl::StrSplit(err, '\n')) {
      if (!absl::StrContains(line, "level=warn") &&
          !absl::StrContains(line, "level=error")) {
        continue;
      }
      if (++total <= 5) {
        std::printf("    node %s logged: %.*s\n", name.c_str(),
                    static_cast<int>(std::min<size_t>(line.size(), 300)),
                    line.data());
        ++shown;
      }
    }
    if (total > shown) {
      std::printf("    node %s: %d more warn/error lines\n", name.c_str(),
                  total - shown);
    }
  }

  const std::string binary_;
  bench::Errors* const errors_;
  ScratchDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::vector<Node> nodes_;
  v1::PredictRequest probe_;
};

struct Window {
  std::chrono::nanoseconds warmup;
  std::chrono::nanoseconds duration;
};

// A closed loop of `callers` clients over `window`, caller i on channels[i]
// (a connection of its own), with `cpu` sampled at the window's edges.
bench::ClosedLoopResult RunCallers(
    const Window& window, int callers, int client_threads, CpuWindow* cpu,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const bench::CallerFactory& make_caller) {
  bench::ClosedLoopOptions loop;
  loop.callers = callers;
  loop.client_threads = client_threads;
  loop.channel_per_caller = true;
  loop.warmup = window.warmup;
  loop.duration = window.duration;
  loop.on_window = [cpu](bool start) { cpu->Sample(start); };
  return bench::RunClosedLoop(loop, channels, make_caller);
}

// ------------------------------------------------------------------- lag

// An async Predict(min_version) on b for one acknowledged update of a.
struct Probe {
  uint64_t version = 0;
  Clock::time_point acked;
  bool counted = false;  // acknowledged inside the window
  grpc::ClientContext context;
  v1::PredictResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PredictResponse>> reader;
};

// Phase 1; returns the updates a acknowledged.
int64_t RunLag(Bench& bench, const Window& window, double rate,
               const std::vector<v1::UpdateRequest>& updates,
               const v1::PredictRequest& probe_request, bench::Errors* errors) {
  Node& a = bench.nodes()[0];
  Node& b = bench.nodes()[1];
  auto a_stub = v1::ModelService::NewStub(bench::Connect(a.process->target()));
  auto b_stub = v1::ModelService::NewStub(bench::Connect(b.process->target()));

  // What one Predict round trip on b costs, for reading the lags; the
  // first 100 (connecting, warming up) are not counted.
  std::vector<int64_t> plain_ns;
  for (int i = 0; i < 1100; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::PredictResponse response;
    const Clock::time_point t0 = Clock::now();
    const grpc::Status s = b_stub->Predict(&context, probe_request, &response);
    if (!s.ok()) {
      errors->Add(
          absl::StrCat("lag: plain Predict on b: ", bench::Describe(s)));
      break;
    }
    if (i < 100) continue;
    plain_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0)
            .count());
  }
  const bench::LatencySummary plain = bench::Summarize(plain_ns);

  grpc::CompletionQueue cq;
  std::vector<int64_t> lag_ns;
  int64_t lag_errors = 0;
  std::string first_lag_error;
  // The second thread: takes each probe's answer.
  std::thread collector([&] {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      const Clock::time_point answered = Clock::now();
      std::unique_ptr<Probe> probe(static_cast<Probe*>(tag));
      if (!ok || !probe->status.ok() ||
          probe->response.version() < probe->version) {
        if (lag_errors++ == 0) {
          first_lag_error = absl::StrCat(
              "Predict(min_version=", probe->version, ") on b: ",
              probe->status.ok()
                  ? absl::StrCat("answered version ", probe->response.version())
                  : bench::Describe(probe->status));
        }
        continue;
      }
      if (probe->counted) {
        lag_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             answered - probe->acked)
                             .count());
      }
    }
  });

  std::vector<int64_t> update_ns;
  int64_t acked = 0, update_errors = 0, in_window = 0;
  std::string first_update_error;
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + window.warmup;
  const Clock::time_point stop_at = measure_from + window.duration;
  const auto interval = rate > 0
                            ? std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(1.0 / rate))
                            : Clock::duration::zero();
  Clock::time_point next_send = start;
  for (size_t i = 0;; ++i) {
    if (rate > 0) {
      // On schedule; a late update goes at once (and the rate falls short).
      if (next_send > Clock::now()) std::this_thread::sleep_until(next_send);
      next_send += interval;
    }
    const Clock::time_point sent = Clock::now();
    if (sent >= stop_at) break;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::UpdateResponse response;
    const grpc::Status s =
        a_stub->Update(&context, updates[i % updates.size()], &response);
    const Clock::time_point acked_at = Clock::now();
    if (!s.ok()) {
      if (update_errors++ == 0) first_update_error = bench::Describe(s);
      continue;
    }
    ++acked;
    auto probe = std::make_unique<Probe>();
    probe->version = response.version();
    probe->acked = acked_at;
    probe->counted = acked_at >= measure_from && acked_at < stop_at;
    probe->context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::PredictRequest request = probe_request;
    request.set_min_version(response.version());
    probe->reader = b_stub->PrepareAsyncPredict(&probe->context, request, &cq);
    probe->reader->StartCall();
    Probe* raw = probe.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
    if (sent >= measure_from) {
      ++in_window;
      update_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(acked_at - sent)
              .count());
    }
  }
  cq.Shutdown();  // the probes in flight still complete
  collector.join();

  const double seconds = bench::Seconds(window.duration);
  const size_t samples = lag_ns.size();
  std::sort(lag_ns.begin(), lag_ns.end());
  const bench::LatencySummary lag = bench::Summarize(lag_ns);
  const bench::LatencySummary update = bench::Summarize(update_ns);
  std::printf(
      "\n1. replication lag: nodes a and b; one client sends Updates of 1 "
      "example to a, %s (%.0f/s sent in the window), one at a time\n",
      rate > 0 ? absl::StrFormat("at %.0f/s", rate).c_str() : "closed loop",
      in_window / seconds);
  std::printf(
      "   lag = a's answer (version v) -> b's answer to Predict(min_version "
      "= v), sent right after a's answer; includes one Predict round trip\n");
  std::printf("   %-44s %8s %8s %8s %8s\n", "", "samples", "p50 us", "p99 us",
              "max us");
  std::printf("   %-44s %8zu %8.0f %8.0f %8.0f\n", "lag a -> b", samples,
              lag.p50_us, lag.p99_us, samples > 0 ? lag_ns.back() / 1e3 : 0.0);
  std::printf(
      "   %-44s %8lld %8.0f %8.0f %8s\n",
      "a's Update round trip (send -> answer)",
      static_cast<long long>(update.count), update.p50_us, update.p99_us,
      update_ns.empty()
          ? "-"
          : absl::StrFormat(
                "%.0f",
                *std::max_element(update_ns.begin(), update_ns.end()) / 1e3)
                .c_str());
  std::vector<int64_t> sorted_plain = plain_ns;
  std::sort(sorted_plain.begin(), sorted_plain.end());
  std::printf("   %-44s %8lld %8.0f %8.0f %8s\n",
              "plain Predict round trip on b (just before)",
              static_cast<long long>(plain.count), plain.p50_us, plain.p99_us,
              sorted_plain.empty()
                  ? "-"
                  : absl::StrFormat("%.0f", sorted_plain.back() / 1e3).c_str());
  std::fflush(stdout);
  if (update_errors > 0) {
    errors->Add(
        absl::StrCat("lag: ", update_errors,
                     " failed Updates on a; first: ", first_update_error),
        update_errors);
  }
  if (lag_errors > 0) {
    errors->Add(absl::StrCat("lag: ", lag_errors,
                             " failed probes; first: ", first_lag_error),
                lag_errors);
  }
  return acked;
}

// ---------------------------------------------------------------- updates

struct UpdateRun {
  double examples_per_s = 0;
  int64_t completed = 0;
  bool clean = false;  // no call failed
};

// Phase 2's runs: `clients` closed-loop Update clients, client i sending to
// targets[i % targets.size()]; prints the run's table under `title`.
UpdateRun RunUpdates(const std::string& title,
                     const std::vector<std::string>& targets,
                     const std::vector<Process>& processes, int clients,
                     int client_threads, int batch, const Window& window,
                     const std::vector<v1::UpdateRequest>& pool,
                     bench::Errors* errors) {
  const std::vector<std::shared_ptr<grpc::Channel>> channels =
      bench::ConnectEach(targets, clients, kDeadline);
  if (channels.empty()) {
    errors->Add(absl::StrCat(title, ": cannot connect"));
    return {};
  }
  CpuWindow cpu(processes);
  bench::ClosedLoopResult r = RunCallers(
      window, clients, client_threads, &cpu, channels,
      bench::UnaryCallers<v1::ModelService>(
          &v1::ModelService::Stub::PrepareAsyncUpdate, &pool, kDeadline,
          /*stride=*/17));
  const double seconds = r.window_seconds;
  const bench::LatencySummary latency =
      bench::Summarize(std::move(r.latencies_ns));

  std::printf(
      "   %s: %.0f updates/s = %.0f examples/s; Update latency p50 %.0f us, "
      "p99 %.0f us; errors %lld\n",
      title.c_str(), r.calls / seconds, r.calls * batch / seconds,
      latency.p50_us, latency.p99_us, static_cast<long long>(r.errors));
  PrintProcessHeader("upd");
  for (size_t p = 0; p < processes.size(); ++p) {
    PrintProcessRow(processes[p].name, processes[p].serves ? r.calls : 0,
                    cpu.Of(p), seconds);
  }
  PrintProcessRow("client (this program)", r.calls, cpu.Self(), seconds);
  const bool replicated =
      std::count_if(processes.begin(), processes.end(),
                    [](const Process& p) { return p.serves; }) > 1;
  std::printf("    other cores: %.2f%s\n", cpu.OtherCores(seconds),
              replicated ? "  (a node applies every update, whichever node "
                           "was sent it: its upd/s is the whole run's)"
                         : "");
  std::fflush(stdout);
  if (r.errors > 0) {
    errors->Add(absl::StrCat(title, ": ", r.errors,
                             " failed Update calls; first: ", r.first_error),
                r.errors);
  }
  return {r.calls * batch / seconds, r.completed, r.errors == 0};
}

// A fresh plain lepton_server (--fsync=always on a temporary --data_dir,
// no --cluster) under the update clients, the cluster's nodes idle beside
// it; checks that its model ends at 1 + the acknowledged updates.
UpdateRun RunSingle(const std::string& binary,
                    const v1::CreateModelRequest& create, Bench& bench,
                    int clients, int client_threads, int batch,
                    const Window& window,
                    const std::vector<v1::UpdateRequest>& pool,
                    bench::Errors* errors) {
  // Its own temporary --data_dir (server_process.h), on the disk Redis
  // writes to too.
  ServerProcess server(binary);
  if (absl::Status s = server.Start({"--fsync=always"}); !s.ok()) {
    errors->Add(absl::StrCat("single server: ", s.ToString()));
    return {};
  }
  client::ClientOptions options;
  options.deadline = absl::Seconds(10);
  auto admin = std::make_unique<client::Client>(server.target(), options);
  UpdateRun run;
  if (absl::StatusOr<v1::ModelInfo> c =
          admin->CreateModel(create.name(), create.spec());
      !c.ok()) {
    errors->Add(
        absl::StrCat("single server: CreateModel: ", c.status().ToString()));
  } else {
    std::vector<Process> processes = {
        {"single server", static_cast<int>(server.pid()), true}};
    for (const Node& node : bench.nodes()) {
      processes.push_back({absl::StrCat("node ", node.name, " (idle)"),
                           static_cast<int>(node.process->pid()), false});
    }
    processes.push_back({"redis-server (idle)", bench.redis_pid(), false});
    run = RunUpdates(
        "single server: --fsync=always --data_dir=<tmp>, all clients",
        {server.target()}, processes, clients, client_threads, batch, window,
        pool, errors);
    absl::StatusOr<v1::ModelInfo> info = admin->GetModel(create.name());
    if (run.clean &&
        (!info.ok() ||
         info->version() != static_cast<uint64_t>(1 + run.completed))) {
      errors->Add(
          absl::StrCat("single server: the model is at ",
                       info.ok() ? absl::StrCat("version ", info->version())
                                 : info.status().ToString(),
                       " after ", run.completed, " acknowledged updates"));
    }
  }
  admin.reset();
  absl::StatusOr<int> exit = server.Terminate(absl::Seconds(30));
  if (!exit.ok() || *exit != 0) {
    errors->Add(absl::StrCat(
        "single server did not stop cleanly: ",
        exit.ok() ? absl::StrCat("exit ", *exit) : exit.status().ToString()));
  }
  return run;
}

// ---------------------------------------------------------------- predict

struct PredictRun {
  int nodes = 0;
  double calls_per_s = 0;
  std::vector<double> node_calls_per_cpu_s;
  double client_cpu_s = 0;
};

// Phase 3's run over the first `serving` nodes (every node started so far
// is shown, the others idle).
PredictRun RunPredicts(Bench& bench, size_t serving, int redis_pid,
                       int callers_per_node, int client_threads,
                       const Window& window,
                       const std::vector<v1::PredictRequest>& pool,
                       bench::Errors* errors) {
  std::vector<Node>& nodes = bench.nodes();
  const int callers = static_cast<int>(serving) * callers_per_node;
  std::vector<std::string> targets;
  for (size_t i = 0; i < serving; ++i) {
    targets.push_back(nodes[i].process->target());
  }
  const std::vector<std::shared_ptr<grpc::Channel>> channels =
      bench::ConnectEach(targets, callers, kDeadline);
  if (channels.empty()) {
    errors->Add(absl::StrCat("predict: cannot connect"));
    return {};
  }
  std::vector<Process> processes;
  for (const Node& node : nodes) {
    processes.push_back({absl::StrCat("node ", node.name),
                         static_cast<int>(node.process->pid())});
  }
  processes.push_back({"redis-server", redis_pid});
  CpuWindow cpu(processes);
  bench::ClosedLoopResult r = RunCallers(
      window, callers, client_threads, &cpu, channels,
      bench::UnaryCallers<v1::ModelService>(
          &v1::ModelService::Stub::PrepareAsyncPredict, &pool, kDeadline,
          /*stride=*/17));
  const double seconds = r.window_seconds;
  std::vector<int64_t> node_calls(nodes.size(), 0);
  for (int i = 0; i < callers; ++i)
    node_calls[i % serving] += r.caller_calls[i];
  const bench::LatencySummary latency =
      bench::Summarize(std::move(r.latencies_ns));

  PredictRun run;
  run.nodes = static_cast<int>(serving);
  run.calls_per_s = r.calls / seconds;
  run.client_cpu_s = cpu.Self();
  std::printf(
      "   %zu node%s, %d callers: %.0f calls/s total; latency p50 %.0f us, "
      "p99 %.0f us; errors %lld\n",
      serving, serving == 1 ? "" : "s", callers, run.calls_per_s,
      latency.p50_us, latency.p99_us, static_cast<long long>(r.errors));
  PrintProcessHeader("calls");
  for (size_t p = 0; p < processes.size(); ++p) {
    const bool is_node = p < nodes.size();
    const int64_t calls = is_node ? node_calls[p] : 0;
    std::string name = processes[p].name;
    if (is_node && p >= serving) name += " (idle)";
    PrintProcessRow(name, calls, cpu.Of(p), seconds);
    if (is_node && p < serving) {
      run.node_calls_per_cpu_s.push_back(cpu.Of(p) > 0 ? calls / cpu.Of(p) : 0);
    }
  }
  PrintProcessRow("client (this program)", r.calls, cpu.Self(), seconds);
  std::printf("    other cores: %.2f\n", cpu.OtherCores(seconds));
  std::fflush(stdout);
  if (r.errors > 0) {
    errors->Add(absl::StrCat("predict x", serving, ": ", r.errors,
                             " failed Predict calls; first: ", r.first_error),
                r.errors);
  }
  return run;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "cluster_bench: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures lepton_server's cluster mode (--cluster) against a "
      "redis-server and nodes of its own:\n"
      "  cluster_bench [--server=PATH] [--duration=3s] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  // As in load_bench: Debian's Abseil tracks every absl::Mutex in a
  // deadlock-detection graph, CPU this program would take from the nodes.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const std::string binary = absl::GetFlag(FLAGS_server);
  Window window;
  window.warmup = absl::ToChronoNanoseconds(
      smoke ? absl::Milliseconds(100) : absl::GetFlag(FLAGS_warmup));
  window.duration = absl::ToChronoNanoseconds(
      smoke ? absl::Milliseconds(300) : absl::GetFlag(FLAGS_duration));
  const double lag_rate = absl::GetFlag(FLAGS_lag_rate);
  const int update_clients = absl::GetFlag(FLAGS_update_clients);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int predict_callers = absl::GetFlag(FLAGS_predict_callers);
  const int client_threads = absl::GetFlag(FLAGS_client_threads);
  const int rounds = smoke ? 1 : absl::GetFlag(FLAGS_rounds);

  if (binary.empty() || access(binary.c_str(), X_OK) != 0) {
    return Fail(absl::StrCat("--server \"", binary,
                             "\" is not an executable lepton_server"));
  }
  if (access(lepton::testing::kRedisServerPath, X_OK) != 0) {
    return Fail(absl::StrCat("no ", lepton::testing::kRedisServerPath,
                             " (apt-get install redis-server)"));
  }
  bool run_lag = false, run_update = false, run_predict = false;
  for (const std::string& phase : absl::GetFlag(FLAGS_phases)) {
    if (phase == "lag") {
      run_lag = true;
    } else if (phase == "update") {
      run_update = true;
    } else if (phase == "predict") {
      run_predict = true;
    } else {
      return Fail(absl::StrCat("unknown phase \"", phase, "\""));
    }
  }
  if (update_clients < 2 || batch < 1 || rounds < 1 || predict_callers < 1 ||
      client_threads < 1 || lag_rate < 0 || window.duration.count() <= 0) {
    return Fail(
        "need --update_clients >= 2, --batch >= 1, --rounds >= 1, "
        "--predict_callers >= 1, "
        "--client_threads >= 1, --lag_rate >= 0, --duration > 0");
  }

  bench::WorkloadOptions options;
  options.kind = bench::WorkloadKind::kSparseLogistic;
  options.num_features = absl::GetFlag(FLAGS_num_features);
  options.nonzeros = absl::GetFlag(FLAGS_nonzeros);
  if (options.num_features < 1 || options.nonzeros < 1 ||
      options.nonzeros > options.num_features) {
    return Fail("need 1 <= --nonzeros <= --num_features");
  }
  const bench::Workload workload(options);
  const std::vector<v1::UpdateRequest> lag_pool =
      workload.UpdateRequests(kModel, 1, 256);
  const std::vector<v1::UpdateRequest> update_pool =
      workload.UpdateRequests(kModel, batch, 256);
  const std::vector<v1::PredictRequest> predict_pool =
      workload.PredictRequests(kModel, 1, 256);

  std::printf("cluster_bench: %s, %ld cores\n", binary.c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf(
      "  model: %s, server-default optimizer; each run %s warmup + %s "
      "measured\n",
      workload.Describe().c_str(),
      absl::FormatDuration(absl::FromChrono(window.warmup)).c_str(),
      absl::FormatDuration(absl::FromChrono(window.duration)).c_str());
  std::printf(
      "  redis-server: its own, AOF with appendfsync always, on a temporary "
      "dir; nodes: --cluster=redis://127.0.0.1:PORT/%s --data_dir= (memory: "
      "the log in Redis is what is durable)\n",
      kClusterName);
  std::printf(
      "  closed-loop clients: each a TCP connection of its own with one "
      "unary call in flight, driven by %d thread%s through gRPC's async API\n",
      client_threads, client_threads == 1 ? "" : "s");
  std::printf(
      "  the nodes, redis-server and this program share the machine's "
      "cores: read each node's calls per CPU-second, not just calls/s\n");
  std::fflush(stdout);

  bench::Errors errors;
  Bench bench(binary, &errors);
  if (absl::Status s = bench.StartRedis(); !s.ok()) {
    return Fail(absl::StrCat("redis-server: ", s.ToString()));
  }
  for (const char* name : {"a", "b"}) {
    absl::StatusOr<double> started = bench.StartNode(name);
    if (!started.ok()) {
      return Fail(
          absl::StrCat("node ", name, ": ", started.status().ToString()));
    }
    std::printf("  node %s: fork -> SERVING in %.3f s\n", name, *started);
  }
  v1::PredictRequest probe = predict_pool[0];
  bench.set_probe(probe);
  {
    const v1::CreateModelRequest create = workload.CreateRequest(kModel);
    absl::StatusOr<v1::ModelInfo> created =
        bench.nodes()[0].admin->CreateModel(kModel, create.spec());
    if (!created.ok()) {
      return Fail(absl::StrCat("CreateModel: ", created.status().ToString()));
    }
  }
  uint64_t version = 1;  // what every node must show
  bench.ExpectVersion(1, version, "after CreateModel");

  // 1. Lag.
  if (run_lag) {
    version += static_cast<uint64_t>(
        RunLag(bench, window, lag_rate, lag_pool, probe, &errors));
    for (size_t i = 0; i < 2; ++i) {
      bench.ExpectVersion(i, version, "lag phase");
    }
  }

  // 2. Updates: the cluster, then a single server with the same clients.
  if (run_update) {
    std::printf(
        "\n2. update throughput: %d closed-loop clients, %d examples per "
        "Update%s\n",
        update_clients, batch,
        rounds > 1
            ? absl::StrCat("; ", rounds, " rounds of cluster, then single")
                  .c_str()
            : "");
    const std::vector<Process> cluster_processes = {
        {"node a", static_cast<int>(bench.nodes()[0].process->pid()), true},
        {"node b", static_cast<int>(bench.nodes()[1].process->pid()), true},
        {"redis-server", bench.redis_pid(), false}};
    std::vector<UpdateRun> clusters, singles;
    for (int round = 0; round < rounds; ++round) {
      if (rounds > 1) std::printf("   round %d of %d\n", round + 1, rounds);
      const UpdateRun cluster =
          RunUpdates("cluster: nodes a and b, half of the clients each",
                     {bench.nodes()[0].process->target(),
                      bench.nodes()[1].process->target()},
                     cluster_processes, update_clients, client_threads, batch,
                     window, update_pool, &errors);
      if (cluster.clean) {
        version += static_cast<uint64_t>(cluster.completed);
        for (size_t i = 0; i < 2; ++i) {
          bench.ExpectVersion(i, version, "update phase");
        }
      }
      const UpdateRun single = RunSingle(binary, workload.CreateRequest(kModel),
                                         bench, update_clients, client_threads,
                                         batch, window, update_pool, &errors);
      if (cluster.examples_per_s > 0 && single.examples_per_s > 0) {
        clusters.push_back(cluster);
        singles.push_back(single);
        std::printf(
            "   examples/s, cluster (2 nodes) / single server "
            "(--fsync=always): %.0f / %.0f = %.2f\n",
            cluster.examples_per_s, single.examples_per_s,
            cluster.examples_per_s / single.examples_per_s);
      }
    }
    if (clusters.size() > 1) {
      std::vector<double> ratios, c, s;
      for (size_t i = 0; i < clusters.size(); ++i) {
        ratios.push_back(clusters[i].examples_per_s /
                         singles[i].examples_per_s);
        c.push_back(clusters[i].examples_per_s);
        s.push_back(singles[i].examples_per_s);
      }
      std::sort(ratios.begin(), ratios.end());
      std::sort(c.begin(), c.end());
      std::sort(s.begin(), s.end());
      const size_t mid = (ratios.size() - 1) / 2;
      std::printf(
          "   over %zu rounds, median (min-max): cluster %.0f (%.0f-%.0f) "
          "examples/s, single %.0f (%.0f-%.0f), ratio cluster/single of a "
          "round %.2f (%.2f-%.2f)\n",
          ratios.size(), c[mid], c.front(), c.back(), s[mid], s.front(),
          s.back(), ratios[mid], ratios.front(), ratios.back());
    }
  }

  // 3. Predicts over 1, 2, 3 nodes.
  if (run_predict) {
    std::printf(
        "\n3. predict throughput: %d closed-loop clients per node, 1 instance "
        "per Predict\n",
        predict_callers);
  }
  std::vector<PredictRun> predicts;
  for (size_t serving = 1; serving <= 3 && run_predict; ++serving) {
    if (serving == 3) {
      absl::StatusOr<double> started = bench.StartNode("c");
      if (!started.ok()) {
        errors.Add(absl::StrCat("node c: ", started.status().ToString()));
        break;
      }
      std::printf(
          "   node c started: fork -> SERVING (caught up with the log's %llu "
          "entries of the model) in %.3f s\n",
          static_cast<unsigned long long>(version), *started);
      bench.ExpectVersion(2, version, "node c");
    }
    predicts.push_back(RunPredicts(bench, serving, bench.redis_pid(),
                                   predict_callers, client_threads, window,
                                   predict_pool, &errors));
  }
  if (!predicts.empty()) {
    std::printf("\n   %5s %10s %22s %14s\n", "nodes", "calls/s",
                "calls/CPU-s per node", "client CPU s");
    for (const PredictRun& run : predicts) {
      std::string per_node;
      for (double v : run.node_calls_per_cpu_s) {
        absl::StrAppend(&per_node, per_node.empty() ? "" : " ",
                        absl::StrFormat("%.0f", v));
      }
      std::printf("   %5d %10.0f %22s %14.2f\n", run.nodes, run.calls_per_s,
                  per_node.c_str(), run.client_cpu_s);
    }
    std::printf(
        "   The nodes and this program share the machine's cores, so calls/s "
        "cannot grow with nodes here;\n   each node's calls per CPU-second "
        "is what says how reads scale on machines of their own.\n");
  }

  std::printf("\nstopping the nodes:\n");
  bench.StopNodes();
  std::printf("\nunexpected errors: %lld\n",
              static_cast<long long>(errors.count));
  return errors.count == 0 ? 0 : 1;
}
