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
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "bench/latency_support.h"
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
using lepton::bench::Phase;
using lepton::bench::PhaseResult;
using lepton::testing::ServerProcess;

constexpr char kModel[] = "latency-bench";

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
  if (!channel->WaitForConnected(bench::CallDeadline())) {
    errors.Add("cannot connect to " + server.target());
    std::printf("unexpected errors: %lld\n",
                static_cast<long long>(errors.count));
    return 1;
  }
  auto models = v1::ModelService::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);

  absl::StatusOr<bench::DenseModel> model =
      bench::PrepareDenseModel(*models, kModel);
  if (!model.ok()) {
    errors.Add(std::string(model.status().message()));
    std::printf("unexpected errors: %lld\n",
                static_cast<long long>(errors.count));
    return 1;
  }
  const std::vector<v1::PredictRequest>& predicts = model->predicts;
  const size_t request_bytes = predicts[0].ByteSizeLong();

  std::printf("lepton_server pid %d on %s, one channel, one call at a time\n",
              server.pid(), server.target().c_str());
  std::printf("model: %s; Predict: 1 instance, %zu bytes serialized\n",
              model->description.c_str(), request_bytes);
  std::printf(
      "%d warm-up + %d measured calls per phase, in %d turns of the phases\n\n",
      warmup, calls, std::max(1, std::min(absl::GetFlag(FLAGS_rounds), calls)));

  const int pid = server.pid();
  auto server_switches = [pid] { return bench::ProcessSwitches(pid); };
  std::vector<Phase> phases;
  phases.push_back(bench::MakePhase(
      "predict",
      [&](int64_t i) {
        grpc::ClientContext context;
        context.set_deadline(bench::CallDeadline());
        v1::PredictResponse response;
        grpc::Status s = models->Predict(
            &context, predicts[static_cast<size_t>(i) % predicts.size()],
            &response);
        if (!s.ok()) errors.Add("Predict: " + bench::Describe(s));
        return s.ok();
      },
      server_switches));
  const grpc::health::v1::HealthCheckRequest health_request;
  phases.push_back(bench::MakePhase(
      "health",
      [&](int64_t) {
        grpc::ClientContext context;
        context.set_deadline(bench::CallDeadline());
        grpc::health::v1::HealthCheckResponse response;
        grpc::Status s = health->Check(&context, health_request, &response);
        if (!s.ok()) errors.Add("Health/Check: " + bench::Describe(s));
        return s.ok();
      },
      server_switches));
  bench::EchoServer echo_server;
  absl::StatusOr<int> fd = echo_server.Start();
  const std::string out(request_bytes, 'x');
  std::string in(request_bytes, '\0');
  if (!fd.ok()) {
    errors.Add(fd.status().ToString());
  } else {
    const int64_t tid = echo_server.tid();
    phases.push_back(bench::MakePhase(
        "tcp echo",
        [&](int64_t) {
          const bool ok = bench::WriteAll(*fd, out.data(), out.size()) &&
                          bench::ReadAll(*fd, in.data(), in.size());
          if (!ok) errors.Add("echo: the connection failed");
          return ok;
        },
        [tid] { return bench::ThreadSwitches(tid); }));
  }
  bool failed = false;
  for (Phase& phase : phases)
    failed = failed || !bench::RunSlice(phase, warmup, false);
  const int rounds = std::max(1, std::min(absl::GetFlag(FLAGS_rounds), calls));
  for (int r = 0; r < rounds && !failed; ++r) {
    // The last round takes what the division leaves.
    const int n = r + 1 < rounds ? calls / rounds : calls - calls / rounds * r;
    for (Phase& phase : phases) failed = failed || !bench::RunSlice(phase, n, true);
  }
  std::optional<PhaseResult> predict, check, echo;
  if (!failed) {
    predict = bench::ResultOf(phases[0]);
    check = bench::ResultOf(phases[1]);
    if (phases.size() > 2) echo = bench::ResultOf(phases[2]);
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
