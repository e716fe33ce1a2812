// grpc_floor_bench: where Lepton's answer to one caller stands between a
// TCP echo (the wire's floor) and minimal gRPC C++ servers of each API style,
// all measured in one run (issue 16, "Predict near the wire's floor").
//
// One caller, this program's main thread, makes one call at a time over one
// connection to each of these servers, each a process of its own so that
// its threads' context switches are counted alone:
//   tcp echo         `grpc_floor_bench --serve=echo`: one thread blocks in
//                    read() and writes back what it read; the caller writes
//                    as many bytes as the serialized Predict request and
//                    reads them all back (TCP_NODELAY on both ends);
//   callback         `--serve=callback`: grpc.health.v1.Health/Check on
//                    gRPC's callback API, as Lepton serves (the handler runs
//                    on the callback completion queue's threads);
//   async inline     `--serve=async`: the same method on an async completion
//                    queue polled by one thread, which runs the handler
//                    inline and asks for the next call;
//   async 2 cqs      the same with two completion queues, each polled by a
//                    thread of its own (gRPC asks for each new call on every
//                    queue);
//   sync             `--serve=sync`: the same on the synchronous API
//                    (gRPC's thread manager, its default settings);
//   callback poll    the callback server with GRPC_POLL_STRATEGY=poll
//                    (gRPC's poll() engine instead of epoll1);
//   async+callback   `--serve=hybrid`: Check on the async API polled by one
//                    thread of its own, Health/Watch on the callback API (so
//                    the callback API's threads exist and poll too): serving
//                    only the hot methods on a thread of one's own;
//   callback icpt    the callback server with a server interceptor that
//                    reads each call's status before it is sent, as
//                    Lepton's metrics interceptor does;
//   lepton health    lepton_server (--server; in memory, as latency_bench
//                    starts it): the same empty Health/Check;
//   lepton predict   the same server's ModelService/Predict, one dense
//                    instance (latency_support.h's taught softmax model,
//                    D = 784, K = 10);
//   other health, other predict
//                    with --other_server, the same two against another
//                    lepton_server binary (e.g. main's, for a before/after
//                    in one run).
// Every gRPC call is a synchronous unary call with a 10 s deadline, over a
// channel of its own (one TCP connection). Each row gets --warmup_calls
// unmeasured calls, then --calls measured ones; with --rounds=N the rows
// take turns N times (--calls / N calls a turn), so that a change of the
// machine's load falls on all of them alike.
//
// Columns: p50, p99 and max latency; p50 / the echo's p50; the server's
// context switches per call (voluntary + nonvoluntary, every thread of the
// server process, from /proc/<pid>/task/*/status around the measured calls);
// the server's and this process's (the caller's) CPU microseconds per call
// (CPU-time clocks); and the cores the whole machine kept busy meanwhile
// (/proc/stat: the two processes plus whatever else ran). Below the table,
// the server's switches per call by thread name, then the ratios issue 16's
// goals are stated in. Figures are printed, never asserted: the machine is
// shared and noisy.
//
// The last line is "unexpected errors: N"; the exit status is 0 iff N is 0
// (every call succeeded and every server exited 0 when told to stop).
//
//   grpc_floor_bench [--calls=5000] [--rows=callback,lepton-health]
//   grpc_floor_bench --other_server=/path/to/main/lepton_server
//   grpc_floor_bench --calls=200 --warmup_calls=20  # CTest grpc_floor_bench_smoke
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "bench/latency_support.h"
#include "bench/load_workload.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

ABSL_FLAG(std::string, server, lepton::testing::kServerPath,
          "the lepton_server binary of the lepton rows (default: the one "
          "built with this program)");
ABSL_FLAG(std::string, other_server, "",
          "another lepton_server binary: adds the rows 'other health' and "
          "'other predict' (e.g. main's build, for a before/after)");
ABSL_FLAG(std::vector<std::string>, server_flags, {},
          "comma-separated extra flags for the lepton_servers");
ABSL_FLAG(std::vector<std::string>, rows, {},
          "the rows to run (callback, async-inline, async-2, sync, "
          "callback-poll, async-callback, callback-icpt, lepton-health, "
          "lepton-predict, other-health, other-predict); default: all. The "
          "TCP echo always runs: it is the floor.");
ABSL_FLAG(int32_t, calls, 5000, "measured calls of each row");
ABSL_FLAG(int32_t, warmup_calls, 500,
          "unmeasured calls before each row's measured ones");
ABSL_FLAG(int32_t, rounds, 1,
          "the rows take turns this many times, --calls / --rounds calls "
          "each turn");
ABSL_FLAG(std::string, serve, "",
          "(internal) run as one of the minimal servers: echo, callback, "
          "async, sync or hybrid; prints 'port N' on stderr");
ABSL_FLAG(std::string, poll_strategy, "",
          "(internal, with --serve) GRPC_POLL_STRATEGY for the server");
ABSL_FLAG(int32_t, pollers, 1,
          "(internal, with --serve=async) completion queues, each polled by "
          "a thread of its own");
ABSL_FLAG(bool, interceptor, false,
          "(internal, with --serve) add a server interceptor that looks at "
          "every call's status, as Lepton's metrics interceptor does");

namespace {

using namespace lepton;
using bench::Phase;
using bench::PhaseResult;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using lepton::testing::ServerProcess;
using lepton::testing::Subprocess;

constexpr char kModel[] = "floor-bench";

// ---------------------------------------------------------------------------
// The minimal servers (--serve=STYLE), each a process of its own.

// SIGTERM and SIGINT are blocked in every thread (set before gRPC makes
// any) and taken by sigwait() on the main thread.
void BlockStopSignals(sigset_t* signals) {
  sigemptyset(signals);
  sigaddset(signals, SIGTERM);
  sigaddset(signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, signals, nullptr);
}

void WaitForStopSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
}

void ReportPort(int port) {
  std::fprintf(stderr, "port %d\n", port);
  std::fflush(stderr);
}

// Health/Check on the callback API: the reactor is finished inside the
// handler, as Lepton's unary handlers do.
class CallbackHealth final : public Health::CallbackService {
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const HealthCheckRequest* /*request*/,
                                  HealthCheckResponse* response) override {
    response->set_status(HealthCheckResponse::SERVING);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class SyncHealth final : public Health::Service {
  grpc::Status Check(grpc::ServerContext* /*context*/,
                     const HealthCheckRequest* /*request*/,
                     HealthCheckResponse* response) override {
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

// One Health/Check call of the async server: requested, then answered.
struct AsyncCall {
  grpc::ServerContext context;
  HealthCheckRequest request;
  HealthCheckResponse response;
  grpc::ServerAsyncResponseWriter<HealthCheckResponse> writer{&context};
  bool answered = false;
};

// Health::AsyncService, or a service with only Check async.
template <typename Service>
void RequestCheck(Service* service, grpc::ServerCompletionQueue* cq) {
  auto* call = new AsyncCall;
  service->RequestCheck(&call->context, &call->request, &call->writer, cq, cq,
                        call);
}

// The only thread that polls `cq`: each new call is answered inline, after
// the next one has been asked for.
template <typename Service>
void ServeAsync(Service* service, grpc::ServerCompletionQueue* cq) {
  RequestCheck(service, cq);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* call = static_cast<AsyncCall*>(tag);
    if (call->answered || !ok) {  // sent, or the server is shutting down
      delete call;
      continue;
    }
    RequestCheck(service, cq);
    call->response.set_status(HealthCheckResponse::SERVING);
    call->answered = true;
    call->writer.Finish(call->response, grpc::Status::OK, call);
  }
}

// Check on the async API (ServeAsync), Watch on the callback API: what
// serving only the hot methods on a thread of one's own would look like.
using HybridHealth =
    Health::WithAsyncMethod_Check<Health::WithCallbackMethod_Watch<Health::Service>>;

// Looks at every call's status, as Lepton's metrics interceptor does; the
// cost is gRPC's interception machinery, run on every batch of every call.
class StatusPeek final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      last_code_ = methods->GetSendStatus().error_code();
    }
    methods->Proceed();
  }

 private:
  int last_code_ = 0;
};

class StatusPeekFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new StatusPeek;
  }
};

int ServeEcho() {
  absl::StatusOr<std::pair<int, int>> listening = bench::ListenLoopback(1);
  if (!listening.ok()) {
    std::fprintf(stderr, "%s\n", listening.status().ToString().c_str());
    return 1;
  }
  ReportPort(listening->second);
  const int fd = ::accept(listening->first, nullptr, nullptr);
  if (fd < 0) return 1;
  bench::SetNoDelay(fd);
  bench::EchoLoop(fd);  // until the caller closes its end
  ::close(fd);
  ::close(listening->first);
  return 0;
}

int ServeGrpc(const std::string& style) {
  sigset_t signals;
  BlockStopSignals(&signals);
  CallbackHealth callback_service;
  SyncHealth sync_service;
  Health::AsyncService async_service;
  HybridHealth hybrid_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  if (absl::GetFlag(FLAGS_interceptor)) {
    std::vector<std::unique_ptr<
        grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(std::make_unique<StatusPeekFactory>());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  // The async styles: --pollers completion queues, each polled by a thread
  // of its own.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  const int pollers = std::max(1, absl::GetFlag(FLAGS_pollers));
  if (style == "callback") {
    builder.RegisterService(&callback_service);
  } else if (style == "sync") {
    builder.RegisterService(&sync_service);
  } else if (style == "hybrid") {
    builder.RegisterService(&hybrid_service);
    cqs.push_back(builder.AddCompletionQueue());
  } else {
    builder.RegisterService(&async_service);
    for (int i = 0; i < pollers; ++i) {
      cqs.push_back(builder.AddCompletionQueue());
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1:0\n");
    return 1;
  }
  std::vector<std::thread> threads;
  for (auto& cq : cqs) {
    grpc::ServerCompletionQueue* q = cq.get();
    threads.emplace_back([&, q] {
      if (style == "hybrid") {
        ServeAsync(&hybrid_service, q);
      } else {
        ServeAsync(&async_service, q);
      }
    });
  }
  ReportPort(port);
  WaitForStopSignal(signals);
  server->Shutdown(bench::CallDeadline());
  for (auto& cq : cqs) cq->Shutdown();
  for (std::thread& thread : threads) thread.join();
  return 0;
}

int Serve(const std::string& style) {
  const std::string poll = absl::GetFlag(FLAGS_poll_strategy);
  // Read by gRPC when it starts, which is after this.
  if (!poll.empty()) setenv("GRPC_POLL_STRATEGY", poll.c_str(), 1);
  if (style == "echo") return ServeEcho();
  if (style == "callback" || style == "async" || style == "sync" ||
      style == "hybrid") {
    return ServeGrpc(style);
  }
  std::fprintf(stderr, "--serve: unknown style \"%s\"\n", style.c_str());
  return 2;
}

// ---------------------------------------------------------------------------
// The caller.

// A minimal server of this program, started as a child.
class MinimalServer {
 public:
  // A child running this program with `args`, once it reported its port.
  static absl::StatusOr<std::unique_ptr<MinimalServer>> Start(
      const std::vector<std::string>& args) {
    std::error_code error;
    const std::filesystem::path self =
        std::filesystem::read_symlink("/proc/self/exe", error);
    if (error) {
      return absl::InternalError("/proc/self/exe: " + error.message());
    }
    std::vector<std::string> argv = {self.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<Subprocess>> process =
        Subprocess::Start(argv);
    if (!process.ok()) return process.status();
    auto server = std::unique_ptr<MinimalServer>(new MinimalServer);
    server->process_ = *std::move(process);
    std::optional<std::string> line =
        server->process_->ReadErrLine(absl::Seconds(30));
    int port = 0;
    if (!line || !absl::StartsWith(*line, "port ") ||
        !absl::SimpleAtoi(line->substr(5), &port)) {
      return absl::UnavailableError(
          absl::StrCat(absl::StrJoin(args, " "),
                       ": no port reported: ", server->process_->err_text()));
    }
    server->port_ = port;
    return server;
  }

  int pid() const { return process_->pid(); }
  int port() const { return port_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

  // SIGTERM unless it ends by itself first (the echo does when its
  // client closes), then its exit status.
  std::optional<int> Stop(bool signal) {
    if (signal) process_->Signal(SIGTERM);
    std::optional<int> status = process_->Wait(absl::Seconds(30));
    if (!status && !signal) {
      process_->Signal(SIGTERM);
      status = process_->Wait(absl::Seconds(30));
    }
    return status;
  }

 private:
  MinimalServer() = default;
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

struct Row {
  std::string name;
  Phase phase;
  std::optional<PhaseResult> result;
};

// What a row needs to know of its server process.
void Observe(Phase& phase, int pid) {
  phase.switches = [pid] { return bench::ProcessSwitches(pid); };
  phase.server_cpu_ns = [pid] { return bench::ProcessCpuNanos(pid); };
  phase.thread_names = [pid] { return bench::ThreadNames(pid); };
  phase.measure_self_cpu = true;
}

// Health/Check with service "" on `channel`.
std::function<bool(int64_t)> HealthCall(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& what,
                                        bench::Errors* errors) {
  std::shared_ptr<Health::Stub> stub = Health::NewStub(channel);
  return [stub, what, errors](int64_t) {
    grpc::ClientContext context;
    context.set_deadline(bench::CallDeadline());
    const HealthCheckRequest request;
    HealthCheckResponse response;
    grpc::Status s = stub->Check(&context, request, &response);
    if (!s.ok()) errors->Add(what + ": " + bench::Describe(s));
    return s.ok();
  };
}

// A lepton_server with the dense model, and its two rows.
struct LeptonServer {
  std::unique_ptr<ServerProcess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ModelService::Stub> models;
  bench::DenseModel model;
};

absl::StatusOr<LeptonServer> StartLepton(const std::string& binary) {
  LeptonServer lepton;
  lepton.process = std::make_unique<ServerProcess>(binary);
  std::vector<std::string> flags = {"--data_dir="};
  for (const std::string& f : absl::GetFlag(FLAGS_server_flags)) {
    flags.push_back(f);
  }
  if (absl::Status s = lepton.process->Start(flags); !s.ok()) return s;
  lepton.channel = bench::Connect(lepton.process->target());
  if (!lepton.channel->WaitForConnected(bench::CallDeadline())) {
    return absl::UnavailableError("cannot connect to " +
                                  lepton.process->target());
  }
  lepton.models = v1::ModelService::NewStub(lepton.channel);
  absl::StatusOr<bench::DenseModel> model =
      bench::PrepareDenseModel(*lepton.models, kModel);
  if (!model.ok()) return model.status();
  lepton.model = *std::move(model);
  return lepton;
}

std::string Cell(double value, const char* format) {
  if (value < 0) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "One caller's empty gRPC call against minimal servers of each API "
      "style, lepton_server's health check and Predict, and a TCP echo of "
      "the same bytes: p50/p99/max, server context switches and CPU per "
      "call, in one run.");
  absl::ParseCommandLine(argc, argv);
  if (const std::string style = absl::GetFlag(FLAGS_serve); !style.empty()) {
    return Serve(style);
  }
  const int calls = std::max(1, absl::GetFlag(FLAGS_calls));
  const int warmup = std::max(0, absl::GetFlag(FLAGS_warmup_calls));
  const int rounds = std::clamp(absl::GetFlag(FLAGS_rounds), 1, calls);
  const std::vector<std::string> wanted = absl::GetFlag(FLAGS_rows);
  const std::string other_binary = absl::GetFlag(FLAGS_other_server);
  auto want = [&](const std::string& name) {
    if (name == "other-health" || name == "other-predict") {
      if (other_binary.empty()) return false;
    }
    return wanted.empty() ||
           std::find(wanted.begin(), wanted.end(), name) != wanted.end();
  };
  bench::Errors errors;
  auto fail = [&errors](const std::string& what) {
    errors.Add(what);
    std::printf("unexpected errors: %lld\n",
                static_cast<long long>(errors.count));
    return 1;
  };

  // The lepton_servers first: the echo's size is their Predict request's.
  std::optional<LeptonServer> lepton, other;
  const bool any_lepton = want("lepton-health") || want("lepton-predict");
  const bool any_other = want("other-health") || want("other-predict");
  if (any_lepton) {
    absl::StatusOr<LeptonServer> started =
        StartLepton(absl::GetFlag(FLAGS_server));
    if (!started.ok()) return fail("lepton_server: " + started.status().ToString());
    lepton = *std::move(started);
  }
  if (any_other) {
    absl::StatusOr<LeptonServer> started = StartLepton(other_binary);
    if (!started.ok()) return fail("other server: " + started.status().ToString());
    other = *std::move(started);
  }
  // The size of a single-instance Predict request, with or without a
  // lepton_server running.
  size_t request_bytes = 0;
  std::string model_description;
  for (const std::optional<LeptonServer>* s : {&lepton, &other}) {
    if (s->has_value() && request_bytes == 0) {
      request_bytes = (*s)->model.predicts[0].ByteSizeLong();
      model_description = (*s)->model.description;
    }
  }
  if (request_bytes == 0) {
    bench::WorkloadOptions options;
    options.kind = bench::WorkloadKind::kDenseSoftmax;
    options.pool_size = 256;
    const bench::Workload workload(options);
    request_bytes = workload.PredictRequests(kModel, 1, 1)[0].ByteSizeLong();
    model_description = workload.Describe();
  }

  std::vector<Row> rows;
  std::vector<std::unique_ptr<MinimalServer>> minimal;

  // The floor.
  absl::StatusOr<std::unique_ptr<MinimalServer>> echo =
      MinimalServer::Start({"--serve=echo"});
  if (!echo.ok()) return fail("echo: " + echo.status().ToString());
  absl::StatusOr<int> echo_fd = bench::ConnectLoopback((*echo)->port());
  if (!echo_fd.ok()) return fail(echo_fd.status().ToString());
  const std::string out(request_bytes, 'x');
  std::string in(request_bytes, '\0');
  {
    Row row{"tcp echo", {}, {}};
    row.phase.name = row.name;
    const int fd = *echo_fd;
    row.phase.call = [&, fd](int64_t) {
      const bool ok = bench::WriteAll(fd, out.data(), out.size()) &&
                      bench::ReadAll(fd, in.data(), in.size());
      if (!ok) errors.Add("echo: the connection failed");
      return ok;
    };
    Observe(row.phase, (*echo)->pid());
    rows.push_back(std::move(row));
  }

  // The minimal gRPC servers.
  struct Style {
    const char* row;   // its name in --rows (with '-')
    const char* name;  // in the table
    std::vector<std::string> args;
  };
  const std::vector<Style> styles = {
      {"callback", "callback", {"--serve=callback"}},
      {"async-inline", "async inline", {"--serve=async"}},
      {"async-2", "async 2 cqs", {"--serve=async", "--pollers=2"}},
      {"sync", "sync", {"--serve=sync"}},
      {"callback-poll", "callback poll",
       {"--serve=callback", "--poll_strategy=poll"}},
      {"async-callback", "async+callback", {"--serve=hybrid"}},
      {"callback-icpt", "callback icpt",
       {"--serve=callback", "--interceptor"}},
  };
  for (const Style& style : styles) {
    if (!want(style.row)) continue;
    absl::StatusOr<std::unique_ptr<MinimalServer>> server =
        MinimalServer::Start(style.args);
    if (!server.ok()) {
      return fail(std::string(style.name) + ": " +
                  server.status().ToString());
    }
    std::shared_ptr<grpc::Channel> channel =
        bench::Connect((*server)->target());
    if (!channel->WaitForConnected(bench::CallDeadline())) {
      return fail(std::string("cannot connect to ") + style.name);
    }
    Row row{style.name, {}, {}};
    row.phase.name = row.name;
    row.phase.call = HealthCall(channel, style.name, &errors);
    Observe(row.phase, (*server)->pid());
    rows.push_back(std::move(row));
    minimal.push_back(*std::move(server));
  }

  // lepton_server (and the other one).
  for (auto [server, label] :
       {std::pair{&lepton, "lepton"}, std::pair{&other, "other"}}) {
    if (!server->has_value()) continue;
    LeptonServer& s = **server;
    const int pid = s.process->pid();
    if (want(absl::StrCat(label, "-health"))) {
      Row row{absl::StrCat(label, " health"), {}, {}};
      row.phase.name = row.name;
      row.phase.call = HealthCall(s.channel, row.name, &errors);
      Observe(row.phase, pid);
      rows.push_back(std::move(row));
    }
    if (want(absl::StrCat(label, "-predict"))) {
      Row row{absl::StrCat(label, " predict"), {}, {}};
      row.phase.name = row.name;
      v1::ModelService::Stub* models = s.models.get();
      const std::vector<v1::PredictRequest>* predicts = &s.model.predicts;
      const std::string what = row.name;
      row.phase.call = [models, predicts, what, &errors](int64_t i) {
        grpc::ClientContext context;
        context.set_deadline(bench::CallDeadline());
        v1::PredictResponse response;
        grpc::Status s = models->Predict(
            &context, (*predicts)[static_cast<size_t>(i) % predicts->size()],
            &response);
        if (!s.ok()) errors.Add(what + ": " + bench::Describe(s));
        return s.ok();
      };
      Observe(row.phase, pid);
      rows.push_back(std::move(row));
    }
  }

  std::printf("one caller, one call at a time, one connection per server\n");
  if (lepton || other) {
    std::printf("lepton_server: %s\n", absl::GetFlag(FLAGS_server).c_str());
    if (other) std::printf("other:         %s\n", other_binary.c_str());
    std::printf("model: %s; Predict: 1 instance\n", model_description.c_str());
  }
  std::printf(
      "tcp echo: %zu bytes (a serialized Predict request) each way; "
      "minimal servers: empty Health/Check\n",
      request_bytes);
  std::printf("%d warm-up + %d measured calls per row, in %d turn(s)\n\n",
              warmup, calls, rounds);
  std::fflush(stdout);

  bool failed = false;
  for (Row& row : rows) {
    failed = failed || !bench::RunSlice(row.phase, warmup, false);
  }
  for (int r = 0; r < rounds && !failed; ++r) {
    // The last turn takes what the division leaves.
    const int n = r + 1 < rounds ? calls / rounds : calls - calls / rounds * r;
    for (Row& row : rows) {
      failed = failed || !bench::RunSlice(row.phase, n, true);
    }
  }
  if (!failed) {
    for (Row& row : rows) row.result = bench::ResultOf(row.phase);
  }

  if (!failed) {
    const double echo_p50 = rows[0].result->p50_us;
    std::printf("%-15s %6s %8s %8s %8s %6s %8s %8s %8s %6s\n", "row", "calls",
                "p50 us", "p99 us", "max us", "/echo", "srv cs", "srv cpu",
                "cli cpu", "busy");
    for (const Row& row : rows) {
      const PhaseResult& r = *row.result;
      std::printf(
          "%-15s %6lld %8.1f %8.1f %8.1f %6.2f %8s %8s %8s %6s\n",
          r.name.c_str(), static_cast<long long>(r.calls), r.p50_us, r.p99_us,
          r.max_us, Ratio(r.p50_us, echo_p50),
          absl::StrCat(Cell(r.switches_per_call, "%.2f"),
                       r.ended_threads > 0 ? "+" : "")
              .c_str(),
          Cell(r.server_cpu_us, "%.1f").c_str(),
          Cell(r.client_cpu_us, "%.1f").c_str(),
          Cell(r.machine_cores, "%.2f").c_str());
    }
    std::printf(
        "/echo: p50 over the echo's p50. srv cs: context switches per call "
        "of all the server's\nthreads (+: a thread ended meanwhile, a lower "
        "bound). srv cpu, cli cpu: CPU us per call\nof the server process "
        "and of this one (the caller). busy: cores the machine kept busy\n"
        "during the row (of %ld; other processes included).\n\n",
        sysconf(_SC_NPROCESSORS_ONLN));

    std::printf("server context switches per call, by thread name:\n");
    for (const Row& row : rows) {
      std::vector<std::string> parts;
      for (const auto& [name, n] : row.result->switches_by_name) {
        if (n >= 0.01) parts.push_back(absl::StrCat(name, " ", Cell(n, "%.2f")));
      }
      std::printf("  %-15s %s\n", row.name.c_str(),
                  absl::StrJoin(parts, ", ").c_str());
    }
    std::printf("\n");

    auto find = [&](const std::string& name) -> const PhaseResult* {
      for (const Row& row : rows) {
        if (row.name == name) return &*row.result;
      }
      return nullptr;
    };
    for (const char* label : {"lepton", "other"}) {
      const PhaseResult* predict = find(absl::StrCat(label, " predict"));
      const PhaseResult* health = find(absl::StrCat(label, " health"));
      if (predict != nullptr) {
        std::printf("%-44s %7.2f\n",
                    absl::StrCat(label, " Predict p50 / echo p50 (goal <= 2)")
                        .c_str(),
                    Ratio(predict->p50_us, echo_p50));
        std::printf(
            "%-44s %7.2f\n",
            absl::StrCat(label, " Predict p99 / its p50 (goal <= 3)").c_str(),
            Ratio(predict->p99_us, predict->p50_us));
        std::printf(
            "%-44s %7.2f\n",
            absl::StrCat(label, " Predict srv cs/call (goal <= 1.5)").c_str(),
            predict->switches_per_call);
      }
      if (health != nullptr) {
        std::printf("%-44s %7.2f\n",
                    absl::StrCat(label, " health p50 / echo p50").c_str(),
                    Ratio(health->p50_us, echo_p50));
      }
    }
  }

  // Stop everything: the echo by closing its connection, the others with
  // SIGTERM; each must exit 0. The channels go first: a gRPC server's
  // Shutdown() waits for its connections to close.
  for (Row& row : rows) row.phase.call = nullptr;
  for (std::optional<LeptonServer>* s : {&lepton, &other}) {
    if (!s->has_value()) continue;
    (*s)->models.reset();
    (*s)->channel.reset();
  }
  ::close(*echo_fd);
  if (std::optional<int> status = (*echo)->Stop(false); status != 0) {
    errors.Add("echo server: " + bench::DescribeExit(
                                     status ? absl::StatusOr<int>(*status)
                                            : absl::DeadlineExceededError(
                                                  "did not exit")));
  }
  for (size_t i = 0; i < minimal.size(); ++i) {
    if (std::optional<int> status = minimal[i]->Stop(true); status != 0) {
      errors.Add(absl::StrCat(
          "minimal server ", i, ": ",
          bench::DescribeExit(status ? absl::StatusOr<int>(*status)
                                     : absl::DeadlineExceededError(
                                           "did not exit"))));
    }
  }
  for (std::optional<LeptonServer>* s : {&lepton, &other}) {
    if (!s->has_value()) continue;
    const absl::StatusOr<int> exit =
        (*s)->process->Terminate(absl::Seconds(30));
    if (!exit.ok() || *exit != 0) {
      errors.Add("lepton_server stop: " + bench::DescribeExit(exit));
    }
  }
  std::printf("unexpected errors: %lld\n",
              static_cast<long long>(errors.count));
  return errors.count == 0 && !failed ? 0 : 1;
}
