// load_bench: measures a running lepton_server over gRPC, as clients see it,
// through the generated stubs only.
//
// It creates its own model on the server (by default sparse logistic,
// D = 2^22, 40 nonzeros per example; --model=dense: softmax, D = 784, K = 10),
// pre-trains it on 16,384 examples, then runs each scenario as a closed loop
// of 1 and of --concurrency (16) callers (load_driver.h: async API, one
// client thread) and prints one row per run: calls/s, examples/s, latency
// percentiles, the CPU each call cost the client and (with --server_pid) the
// server, and the cores other processes took meanwhile. Scenarios, in order:
//   health               grpc.health.v1.Health/Check, the cheapest call the
//                        server has: the floor that gRPC itself sets
//   predict x1           Predict with 1 instance
//   predict x1 +updates  the same while --update_streams StreamUpdate calls
//                        update the same model back to back
//   predict x64          Predict with 64 instances
//   update x1 / x64      Update with 1 or 64 examples
// Then the goal ratios, each from figures of this run (load_report.h), the
// update rows against the same requests applied in this process
// (load_in_process.h), and the model is deleted. The last line is "unexpected
// errors: N"; the exit status is 0 iff N is 0.
//
//   load_bench --target=localhost:50051 [--duration=3s] [--warmup=1s]
//   load_bench --target=... --short      # ~10 s smoke run (CTest label load)
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "bench/load_driver.h"
#include "bench/load_in_process.h"
#include "bench/load_report.h"
#include "bench/load_stats.h"
#include "bench/load_workload.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lepton/v1/lepton.grpc.pb.h"

ABSL_FLAG(std::string, target, "localhost:50051", "the server, host:port");
ABSL_FLAG(std::string, model, "sparse",
          "sparse: logistic, D=2^22, 40 nonzeros; dense: softmax, D=784, "
          "K=10");
ABSL_FLAG(int64_t, num_features, 0,
          "D of the model; 0 means the --model's default (2^22 or 784)");
ABSL_FLAG(int32_t, nonzeros, 40, "sparse model: nonzero features per example");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "measured time of each scenario run");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "unmeasured time before each scenario run");
ABSL_FLAG(bool, short, false,
          "smoke mode, about 10 s in all: --duration=0.5s --warmup=0.2s and a "
          "short pre-training");
ABSL_FLAG(int32_t, concurrency, 16, "callers of the concurrent runs");
ABSL_FLAG(int32_t, client_threads, 1,
          "client threads (each with its own connection) sharing the callers");
ABSL_FLAG(int32_t, update_streams, 1,
          "StreamUpdate calls running during the +updates scenario");
ABSL_FLAG(int32_t, update_stream_batch, 16,
          "examples per request of those streams");
ABSL_FLAG(std::string, update_target, "",
          "where those streams send their updates (default: --target); "
          "another server here separates the CPU the updates take from any "
          "wait inside the model");
ABSL_FLAG(int32_t, pretrain_examples, 16384,
          "examples learned (batches of 256) before measuring");
ABSL_FLAG(int32_t, server_pid, 0,
          "the server's process id, to report its CPU time per call");
ABSL_FLAG(std::vector<std::string>, filter, {},
          "comma-separated; run only the scenarios whose name contains one of "
          "these (default: all)");

namespace {

using namespace lepton;
using lepton::bench::Clock;
using lepton::v1::ModelService;
using Stub = lepton::v1::ModelService::Stub;

constexpr std::chrono::milliseconds kDeadline(10000);

struct Scenario {
  std::string name;
  int examples_per_call;  // 0: not an examples call (health)
  bench::CallerFactory make_caller;
  bool with_updates = false;
};

// What every scenario run shares.
struct RunOptions {
  std::chrono::nanoseconds warmup;
  std::chrono::nanoseconds duration;
  int client_threads;
  int server_pid;
};

// The update rows beside the same requests applied in this process
// (load_in_process.h), measured now, with the ratios.
void PrintInProcess(
    const std::vector<bench::Row>& rows, int concurrency,
    const v1::CreateModelRequest& create,
    const std::vector<v1::UpdateRequest>& pretrain,
    const std::vector<
        std::pair<std::string, const std::vector<v1::UpdateRequest>*>>& pools,
    const RunOptions& run) {
  bool header = false;
  for (const auto& [name, pool] : pools) {
    const bench::Row* one = nullptr;
    const bench::Row* many = nullptr;
    for (const bench::Row& row : rows) {
      if (row.name != name) continue;
      (row.callers == 1 ? one : many) = &row;
    }
    if (one == nullptr) continue;  // not run (--filter)
    const absl::StatusOr<double> rate = bench::InProcessUpdateRate(
        create, pretrain, *pool, run.warmup, run.duration);
    if (!header) {
      std::printf(
          "\nthe same update requests in process (ModelStore, one thread, "
          "in memory), examples/s:\n");
      header = true;
    }
    if (!rate.ok()) {
      std::printf("  %-12s in process: %s\n", name.c_str(),
                  rate.status().ToString().c_str());
      continue;
    }
    const int batch = (*pool)[0].examples_size();
    std::printf(
        "  %-12s in process %9.0f; over gRPC / in process: 1 caller "
        "%.2f",
        name.c_str(), *rate, one->calls_per_s * batch / *rate);
    if (many != nullptr) {
      std::printf(", %d callers %.2f", concurrency,
                  many->calls_per_s * batch / *rate);
    }
    std::printf("\n");
  }
}

// Runs `scenario` with `callers` callers, prints its table row, and adds the
// calls that failed to *errors.
bench::Row RunScenario(
    const Scenario& scenario, int callers, const RunOptions& run,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const std::vector<std::shared_ptr<grpc::Channel>>& update_channels,
    const std::vector<v1::UpdateRequest>* stream_pool, int64_t* errors) {
  std::unique_ptr<bench::UpdateStreams> streams;
  if (scenario.with_updates) {
    streams =
        std::make_unique<bench::UpdateStreams>(update_channels, stream_pool);
  }
  bench::CpuWindow cpu(run.server_pid);
  bench::ClosedLoopOptions options;
  options.callers = callers;
  options.client_threads = run.client_threads;
  options.warmup = run.warmup;
  options.duration = run.duration;
  options.on_window = [&cpu](bool start) { cpu.Sample(start); };
  bench::ClosedLoopResult r =
      bench::RunClosedLoop(options, channels, scenario.make_caller);
  const bench::Row row{scenario.name, callers, r.calls / r.window_seconds,
                       bench::Summarize(std::move(r.latencies_ns)),
                       cpu.OtherCores(r.window_seconds)};
  bench::PrintRow(row, scenario.examples_per_call, cpu, r.calls, r.errors);
  if (r.errors > 0) std::printf("    first error: %s\n", r.first_error.c_str());
  *errors += r.errors;
  if (streams != nullptr) {
    const bench::StreamTotals t = streams->Stop();
    std::printf(
        "    meanwhile StreamUpdate: %.0f updates/s, %.0f examples/s, "
        "%lld errors\n",
        t.updates / t.seconds, t.examples / t.seconds,
        static_cast<long long>(t.errors));
    if (t.errors > 0)
      std::printf("    first error: %s\n", t.first_error.c_str());
    *errors += t.errors;
  }
  std::fflush(stdout);
  return row;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "load_bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures a running lepton_server: load_bench --target=host:port");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock (gRPC
  // locks many per call) also updates a global deadlock-detection graph,
  // CPU that the load program would take from the server's shared cores
  // (docs/benchmarks.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const bool smoke = absl::GetFlag(FLAGS_short);
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string update_target = absl::GetFlag(FLAGS_update_target).empty()
                                        ? target
                                        : absl::GetFlag(FLAGS_update_target);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int client_threads = absl::GetFlag(FLAGS_client_threads);
  const int update_streams = absl::GetFlag(FLAGS_update_streams);
  const int stream_batch = absl::GetFlag(FLAGS_update_stream_batch);
  const std::vector<std::string> filter = absl::GetFlag(FLAGS_filter);
  const absl::Duration duration =
      smoke ? absl::Milliseconds(500) : absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup =
      smoke ? absl::Milliseconds(200) : absl::GetFlag(FLAGS_warmup);
  const int pretrain =
      smoke ? 2048 : std::max(0, absl::GetFlag(FLAGS_pretrain_examples));

  bench::WorkloadOptions workload_options;
  workload_options.num_features = absl::GetFlag(FLAGS_num_features);
  workload_options.nonzeros = absl::GetFlag(FLAGS_nonzeros);
  if (absl::GetFlag(FLAGS_model) == "dense") {
    workload_options.kind = bench::WorkloadKind::kDenseSoftmax;
  } else if (absl::GetFlag(FLAGS_model) != "sparse") {
    return Fail("--model must be sparse or dense");
  }
  if (workload_options.num_features < 0 || workload_options.nonzeros < 0 ||
      (workload_options.num_features > 0 &&
       workload_options.nonzeros > workload_options.num_features)) {
    return Fail("need 0 <= --nonzeros <= --num_features");
  }
  if (concurrency < 1 || client_threads < 1 || update_streams < 1 ||
      stream_batch < 1) {
    return Fail(
        "--concurrency, --client_threads, --update_streams and "
        "--update_stream_batch must be at least 1");
  }
  const bench::Workload workload(workload_options);
  const std::string model = absl::StrCat("load-bench-", getpid());

  const std::vector<std::shared_ptr<grpc::Channel>> channels =
      bench::ConnectEach({target}, client_threads, kDeadline);
  if (channels.empty()) return Fail(absl::StrCat("cannot connect to ", target));
  std::vector<std::shared_ptr<grpc::Channel>> update_channels;
  for (int i = 0; i < update_streams; ++i) {
    update_channels.push_back(bench::Connect(update_target));
  }
  auto stub = v1::ModelService::NewStub(channels[0]);

  // Create and pre-train the model.
  {
    grpc::ClientContext context;
    v1::ModelInfo info;
    grpc::Status s =
        stub->CreateModel(&context, workload.CreateRequest(model), &info);
    if (!s.ok()) return Fail("CreateModel: " + s.error_message());
  }
  if (update_target != target) {  // the same model there, for the streams
    grpc::ClientContext context;
    v1::ModelInfo info;
    grpc::Status s =
        v1::ModelService::NewStub(update_channels[0])
            ->CreateModel(&context, workload.CreateRequest(model), &info);
    if (!s.ok())
      return Fail("CreateModel on --update_target: " + s.error_message());
  }
  const auto pretrain_requests =
      workload.UpdateRequests(model, 256, (pretrain + 255) / 256);
  const Clock::time_point pretrain_start = Clock::now();
  for (const v1::UpdateRequest& request : pretrain_requests) {
    grpc::ClientContext context;
    v1::UpdateResponse response;
    grpc::Status s = stub->Update(&context, request, &response);
    if (!s.ok()) return Fail("pre-training Update: " + s.error_message());
  }
  const double pretrain_s = bench::Seconds(Clock::now() - pretrain_start);

  std::printf("load_bench: target %s, model %s\n", target.c_str(),
              model.c_str());
  std::printf("  %s, server-default optimizer (AdaGrad 0.05, minibatch 16)\n",
              workload.Describe().c_str());
  std::printf(
      "  pre-trained on %d examples in %.2f s; each run: %s warmup + %s "
      "measured; callers 1 and %d over %d client thread(s), async API\n",
      static_cast<int>(pretrain_requests.size()) * 256, pretrain_s,
      absl::FormatDuration(warmup).c_str(),
      absl::FormatDuration(duration).c_str(), concurrency, client_threads);
  std::printf(
      "  +updates: %d StreamUpdate call(s) of %d examples/request on "
      "connection(s) of their own%s\n\n",
      update_streams, stream_batch,
      update_target == target
          ? ""
          : absl::StrCat(", to ", update_target, " (not the target)").c_str());

  // Request pools, built before any clock starts.
  const std::vector<grpc::health::v1::HealthCheckRequest> health_pool(1);
  const auto predict1 = workload.PredictRequests(model, 1, 1024);
  const auto predict64 = workload.PredictRequests(model, 64, 64);
  const auto update1 = workload.UpdateRequests(model, 1, 1024);
  const auto update64 = workload.UpdateRequests(model, 64, 64);
  const auto stream_pool = workload.UpdateRequests(model, stream_batch, 256);

  // The three that the goals compare run first and back to back, so that
  // their figures come from the same minute of a shared machine.
  const std::vector<Scenario> scenarios = {
      {"health", 0,
       bench::UnaryCallers<grpc::health::v1::Health>(
           &grpc::health::v1::Health::Stub::PrepareAsyncCheck, &health_pool,
           kDeadline)},
      {"predict x1", 1,
       bench::UnaryCallers<ModelService>(&Stub::PrepareAsyncPredict, &predict1,
                                         kDeadline)},
      {"predict x1 +updates", 1,
       bench::UnaryCallers<ModelService>(&Stub::PrepareAsyncPredict, &predict1,
                                         kDeadline),
       true},
      {"predict x64", 64,
       bench::UnaryCallers<ModelService>(&Stub::PrepareAsyncPredict, &predict64,
                                         kDeadline)},
      {"update x1", 1,
       bench::UnaryCallers<ModelService>(&Stub::PrepareAsyncUpdate, &update1,
                                         kDeadline)},
      {"update x64", 64,
       bench::UnaryCallers<ModelService>(&Stub::PrepareAsyncUpdate, &update64,
                                         kDeadline)},
  };

  const RunOptions run{absl::ToChronoNanoseconds(warmup),
                       absl::ToChronoNanoseconds(duration), client_threads,
                       absl::GetFlag(FLAGS_server_pid)};
  bench::PrintHeader();
  std::vector<bench::Row> rows;
  int64_t errors = 0;
  for (const Scenario& scenario : scenarios) {
    if (!filter.empty() &&
        std::none_of(filter.begin(), filter.end(), [&](const std::string& f) {
          return absl::StrContains(scenario.name, f);
        })) {
      continue;
    }
    for (int callers : {1, concurrency}) {
      rows.push_back(RunScenario(scenario, callers, run, channels,
                                 update_channels, &stream_pool, &errors));
    }
  }
  bench::PrintNotes(rows);
  bench::PrintGoals(rows, concurrency);
  PrintInProcess(rows, concurrency, workload.CreateRequest(model),
                 pretrain_requests,
                 {{"update x1", &update1}, {"update x64", &update64}}, run);

  std::vector<std::shared_ptr<grpc::Channel>> servers = {channels[0]};
  if (update_target != target) servers.push_back(update_channels[0]);
  for (const auto& channel : servers) {
    grpc::ClientContext context;
    v1::DeleteModelRequest request;
    request.set_name(model);
    v1::DeleteModelResponse response;
    grpc::Status s = v1::ModelService::NewStub(channel)->DeleteModel(
        &context, request, &response);
    if (!s.ok()) {
      std::printf("DeleteModel: %s\n", s.error_message().c_str());
      ++errors;
    }
  }
  std::printf("unexpected errors: %lld\n", static_cast<long long>(errors));
  return errors == 0 ? 0 : 1;
}
