// abuse_bench: does lepton_server keep answering a well-behaved client while
// other clients abuse it? (issue 18, "Slow and abusive clients"). Measured in
// one run, against a server of its own.
//
// It starts a lepton_server (--server, in memory: --data_dir=, with
// --max_message_bytes=--limit and --max_transport_bytes, 64 MiB) on a free
// loopback port and creates a
// logistic model (D = 1000). A well-behaved client, one channel of its own,
// then calls Predict (one sparse instance), the health check and Update (one
// example) in turn, one call at a time, each with a 10 s deadline, through
// six phases of --seconds each, the abusers below joining one by one:
//   quiet    nothing else runs;
//   +idle    the idle connections are open;
//   +stall   and the streams never read are open, once flow control has
//            stopped both their writers and the server's answers to them,
//            or after --stall_wait (10 s) if it has not (which is printed,
//            with the requests written and the updates applied meanwhile);
//   +large   and the large calls run;
//   after    the abusers are gone (their calls cancelled, channels closed);
//   +models  a thread creates and deletes a large model in a loop.
// The abusers, each on channels (TCP connections) of its own:
//   idle     --idle_connections channels, each connected by one GetModel and
//            then left open, doing nothing;
//   stalled  --stalled_streams StreamUpdate calls whose client writes
//            requests until gRPC's flow control blocks it and never reads an
//            answer, and as many WatchModel calls never read (the
//            well-behaved client's updates give them events to push);
//   large    a thread sending Predict requests of a serialized size just
//            under --limit (LIMIT - 64 bytes: must be answered OK) and just
//            over it (LIMIT + 64: must be RESOURCE_EXHAUSTED), in turn;
//   models   a thread creating a logistic model of --churned_features
//            features and deleting it, in a loop (each must be OK).
// One row per phase: the well-behaved client's calls, p50, p99 and max
// latency of each kind, and the server's RSS at the end of the phase; then
// what the abusers did (with how much the model's version grew while the
// stalled streams' writers ran), and +large p99 / quiet p99 and +models p99
// / quiet p99 of each kind.
//
// Unexpected errors: a well-behaved call that fails, a large call answered
// otherwise than above, a failed create or delete of the models thread, an
// idle channel that does not connect, and a server
// that does not exit 0 on SIGTERM at the end. The last line is "unexpected
// errors: N"; the exit status is 0 iff N is 0. Latencies are reported, never
// asserted: the machine is shared.
//
//   abuse_bench [--server=build/server/lepton_server] [--seconds=5]
//   abuse_bench --seconds=1 --idle_connections=100 --stall_wait=1   # CTest
//                                                   abuse_bench_smoke
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/bench_support.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, server, lepton::testing::kServerPath,
          "the lepton_server binary to start (default: the one built with "
          "this program)");
ABSL_FLAG(double, seconds, 5, "length of each phase");
ABSL_FLAG(int32_t, idle_connections, 500, "idle channels of the abuse phase");
ABSL_FLAG(int32_t, stalled_streams, 32,
          "StreamUpdate calls never read, and as many WatchModel calls");
ABSL_FLAG(int64_t, limit, 4 << 20, "the server's --max_message_bytes");
ABSL_FLAG(int64_t, max_transport_bytes, 64 << 20,
          "the server's --max_transport_bytes (-1: its default, 10% of the "
          "memory limit)");
ABSL_FLAG(int64_t, churned_features, int64_t{1} << 24,
          "features of the model that the +models phase creates and deletes");
ABSL_FLAG(double, stall_wait, 10,
          "seconds to wait for flow control to stop the streams never read "
          "before their phase starts anyway");

namespace {

using namespace lepton;
using lepton::bench::Clock;
using lepton::bench::Connect;
using lepton::bench::Describe;
using lepton::bench::Errors;
using lepton::testing::RssKib;
using lepton::testing::ServerProcess;

constexpr char kModel[] = "abuse-bench";
constexpr int64_t kFeatures = 1000;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

struct Latencies {
  std::vector<double> us;
  double Percentile(double p) const {
    if (us.empty()) return 0;
    std::vector<double> sorted = us;
    std::sort(sorted.begin(), sorted.end());
    const size_t i =
        std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
    return sorted[i];
  }
  double Max() const {
    return us.empty() ? 0 : *std::max_element(us.begin(), us.end());
  }
};

struct PhaseResult {
  std::string name;
  Latencies predict, health, update;
  int64_t rss_kib = 0;
};

// The well-behaved client: Predict, health, Update in turn for `seconds`.
PhaseResult WellBehaved(const std::string& name, v1::ModelService::Stub& stub,
                        grpc::health::v1::Health::Stub& health, double seconds,
                        int pid, Errors& errors) {
  PhaseResult r;
  r.name = name;
  v1::PredictRequest predict;
  predict.set_model(kModel);
  v1::Features* f = predict.add_instances();
  for (uint32_t i : {3u, 77u, 512u, 999u}) {
    f->add_indices(i);
    f->add_values(0.5f);
  }
  grpc::health::v1::HealthCheckRequest check;
  const Clock::time_point end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(seconds));
  for (int64_t n = 0; Clock::now() < end; ++n) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    const Clock::time_point t0 = Clock::now();
    grpc::Status status;
    Latencies* into;
    if (n % 3 == 0) {
      v1::PredictResponse response;
      status = stub.Predict(&context, predict, &response);
      into = &r.predict;
    } else if (n % 3 == 1) {
      grpc::health::v1::HealthCheckResponse response;
      status = health.Check(&context, check, &response);
      if (status.ok() &&
          response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
        errors.Add(absl::StrCat(name, ": health says ", response.status()));
      }
      into = &r.health;
    } else {
      v1::UpdateRequest update;
      update.set_model(kModel);
      v1::Example* e = update.add_examples();
      *e->mutable_features() = predict.instances(0);
      e->set_label(static_cast<float>(n % 2));
      v1::UpdateResponse response;
      status = stub.Update(&context, update, &response);
      into = &r.update;
    }
    const double us =
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (!status.ok()) {
      errors.Add(
          absl::StrCat(name, ": a well-behaved call: ", Describe(status)));
      continue;
    }
    into->us.push_back(us);
  }
  r.rss_kib = RssKib(pid);
  return r;
}

// A Predict request of `bytes` serialized bytes or a few more: dense
// instances, then a sparse one that fills the rest.
v1::PredictRequest PredictOfSize(int64_t bytes) {
  v1::PredictRequest request;
  request.set_model(kModel);
  v1::Features dense;
  for (int64_t j = 0; j < kFeatures; ++j) dense.add_dense(0.25f);
  while (static_cast<int64_t>(request.ByteSizeLong()) +
             static_cast<int64_t>(dense.ByteSizeLong()) + 16 <
         bytes - 8192) {
    *request.add_instances() = dense;
  }
  v1::Features* sparse = request.add_instances();
  for (uint32_t i = 0; static_cast<int64_t>(request.ByteSizeLong()) < bytes;
       ++i) {
    // Indices cycle so that none repeats within an instance.
    if (i > 0 && i % kFeatures == 0) sparse = request.add_instances();
    sparse->add_indices(i % kFeatures);
    sparse->add_values(1.0f);
  }
  return request;
}

struct Abusers {
  std::atomic<bool> stop{false};
  std::vector<std::shared_ptr<grpc::Channel>> idle;
  int64_t idle_connected = 0;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> threads;
  std::atomic<int64_t> stream_requests_written{0};
  std::atomic<int> streams_blocked{0};
  std::atomic<int64_t> under_ok{0}, under_other{0}, over_exhausted{0},
      over_other{0};
  int64_t under_bytes = 0, over_bytes = 0;
  std::atomic<int64_t> churned{0}, churn_failed{0};
  absl::Mutex mu;
  std::string first_odd ABSL_GUARDED_BY(mu);
  std::vector<double> churn_ms ABSL_GUARDED_BY(mu);  // create + delete
};

void StartIdle(const std::string& target, Abusers& a, Errors& errors) {
  const int idle = absl::GetFlag(FLAGS_idle_connections);

  // Idle connections: connected by one answered call, then left alone.
  for (int i = 0; i < idle; ++i) {
    std::shared_ptr<grpc::Channel> channel = Connect(target);
    v1::GetModelRequest request;
    request.set_name(kModel);
    v1::ModelInfo info;
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    const grpc::Status s =
        v1::ModelService::NewStub(channel)->GetModel(&context, request, &info);
    if (s.ok()) ++a.idle_connected;
    a.idle.push_back(std::move(channel));
  }
  if (a.idle_connected != idle) {
    errors.Add(absl::StrCat(idle - a.idle_connected, " of ", idle,
                            " idle channels did not connect"));
  }
}

// Streams whose client never reads.
void StartStalled(const std::string& target, Abusers& a) {
  const int stalled = absl::GetFlag(FLAGS_stalled_streams);
  for (int i = 0; i < stalled; ++i) {
    a.contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* context = a.contexts.back().get();
    a.threads.emplace_back([&a, target, context] {
      auto stub = v1::ModelService::NewStub(Connect(target));
      auto stream = stub->StreamUpdate(context);
      v1::UpdateRequest request;
      request.set_model(kModel);
      v1::Example* e = request.add_examples();
      e->mutable_features()->add_indices(7);
      e->mutable_features()->add_values(1.0f);
      e->set_label(1);
      // Blocks once flow control is full; cancelled at the end.
      while (!a.stop.load() && stream->Write(request)) {
        ++a.stream_requests_written;
      }
      stream->Finish().ok();  // cancelled: its status says nothing
    });
    a.contexts.push_back(std::make_unique<grpc::ClientContext>());
    context = a.contexts.back().get();
    a.threads.emplace_back([&a, target, context] {
      auto stub = v1::ModelService::NewStub(Connect(target));
      v1::WatchModelRequest request;
      request.set_name(kModel);
      auto reader = stub->WatchModel(context, request);
      while (!a.stop.load()) absl::SleepFor(absl::Milliseconds(20));
      reader->Finish().ok();  // cancelled
    });
  }
}

// Messages just under and just over the limit, from one thread.
void StartLargeCalls(const std::string& target, Abusers& a) {
  const int64_t limit = absl::GetFlag(FLAGS_limit);
  a.threads.emplace_back([&a, target, limit] {
    auto stub = v1::ModelService::NewStub(Connect(target));
    const v1::PredictRequest under = PredictOfSize(limit - 64);
    const v1::PredictRequest over = PredictOfSize(limit + 64);
    a.under_bytes = static_cast<int64_t>(under.ByteSizeLong());
    a.over_bytes = static_cast<int64_t>(over.ByteSizeLong());
    // At least one call each way, however slow the server is meanwhile.
    for (int64_t n = 0; !a.stop.load() || n < 2; ++n) {
      grpc::ClientContext context;
      context.set_deadline(Deadline());
      v1::PredictResponse response;
      const bool is_over = n % 2 == 1;
      const grpc::Status s =
          stub->Predict(&context, is_over ? over : under, &response);
      if (!is_over && s.ok()) {
        ++a.under_ok;
      } else if (is_over &&
                 s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++a.over_exhausted;
      } else {
        ++(is_over ? a.over_other : a.under_other);
        absl::MutexLock lock(&a.mu);
        if (a.first_odd.empty()) {
          a.first_odd = absl::StrCat(is_over ? "over" : "under",
                                     " the limit: ", Describe(s));
        }
      }
    }
  });
}

// A large model created and deleted in a loop, from one thread.
void StartModelChurn(const std::string& target, Abusers& a) {
  a.threads.emplace_back([&a, target] {
    auto stub = v1::ModelService::NewStub(Connect(target));
    v1::CreateModelRequest create;
    create.set_name("abuse-bench-churned");
    create.mutable_spec()->set_type(v1::LOGISTIC_REGRESSION);
    create.mutable_spec()->set_num_features(
        absl::GetFlag(FLAGS_churned_features));
    v1::DeleteModelRequest remove;
    remove.set_name(create.name());
    auto odd = [&a](const std::string& what, const grpc::Status& s) {
      ++a.churn_failed;
      absl::MutexLock lock(&a.mu);
      if (a.first_odd.empty()) a.first_odd = what + ": " + Describe(s);
    };
    // At least one of each, however slow the server is meanwhile.
    for (int64_t n = 0; !a.stop.load() || n < 1; ++n) {
      const Clock::time_point start = Clock::now();
      grpc::ClientContext create_context;
      create_context.set_deadline(Deadline());
      v1::ModelInfo info;
      grpc::Status s = stub->CreateModel(&create_context, create, &info);
      if (!s.ok()) odd("CreateModel", s);
      grpc::ClientContext delete_context;
      delete_context.set_deadline(Deadline());
      v1::DeleteModelResponse deleted;
      s = stub->DeleteModel(&delete_context, remove, &deleted);
      if (!s.ok()) odd("DeleteModel", s);
      ++a.churned;
      absl::MutexLock lock(&a.mu);
      a.churn_ms.push_back(1e3 * lepton::bench::Seconds(Clock::now() - start));
    }
  });
}

void StopAbusers(Abusers& a) {
  a.stop.store(true);
  for (auto& context : a.contexts) context->TryCancel();
  for (std::thread& t : a.threads) t.join();
  a.threads.clear();
  a.contexts.clear();
  a.idle.clear();
}

void PrintRow(const PhaseResult& r) {
  auto cell = [](const Latencies& l) {
    std::printf(" %6zu %7.0f %7.0f %7.0f", l.us.size(), l.Percentile(0.5),
                l.Percentile(0.99), l.Max());
  };
  std::printf("%-6s", r.name.c_str());
  cell(r.predict);
  cell(r.health);
  cell(r.update);
  std::printf(" %8.1f\n", static_cast<double>(r.rss_kib) / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "abuse_bench: a well-behaved client's latency with and without idle "
      "connections, stalled streams and messages at the size limit");
  absl::ParseCommandLine(argc, argv);
  Errors errors;
  const int64_t limit = absl::GetFlag(FLAGS_limit);
  const double seconds = absl::GetFlag(FLAGS_seconds);

  ServerProcess server(absl::GetFlag(FLAGS_server));
  const absl::Status started =
      server.Start({"--data_dir=", "--metrics_listen=",
                    absl::StrCat("--max_message_bytes=", limit),
                    absl::StrCat("--max_transport_bytes=",
                                 absl::GetFlag(FLAGS_max_transport_bytes))});
  if (!started.ok()) {
    std::printf("cannot start the server: %s\nunexpected errors: 1\n",
                started.ToString().c_str());
    return 1;
  }
  std::shared_ptr<grpc::Channel> channel = Connect(server.target());
  auto stub = v1::ModelService::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);
  {
    v1::CreateModelRequest create;
    create.set_name(kModel);
    create.mutable_spec()->set_type(v1::LOGISTIC_REGRESSION);
    create.mutable_spec()->set_num_features(kFeatures);
    v1::ModelInfo info;
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    const grpc::Status s = stub->CreateModel(&context, create, &info);
    if (!s.ok()) errors.Add("CreateModel: " + Describe(s));
  }

  std::printf(
      "abuse_bench: lepton_server --max_message_bytes=%lld "
      "--max_transport_bytes=%lld, %.1f s a phase; the well-behaved client: "
      "Predict (1 sparse instance), health check, Update (1 example) in "
      "turn; latencies in us\n\n",
      static_cast<long long>(limit),
      static_cast<long long>(absl::GetFlag(FLAGS_max_transport_bytes)),
      seconds);
  std::vector<PhaseResult> rows;
  auto version = [&]() -> int64_t {
    v1::GetModelRequest request;
    request.set_name(kModel);
    v1::ModelInfo info;
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    const grpc::Status s = stub->GetModel(&context, request, &info);
    if (!s.ok()) errors.Add("GetModel: " + Describe(s));
    return static_cast<int64_t>(info.version());
  };
  auto phase = [&](const std::string& name) {
    rows.push_back(
        WellBehaved(name, *stub, *health, seconds, server.pid(), errors));
  };
  Abusers abusers;
  phase("quiet");
  StartIdle(server.target(), abusers, errors);
  phase("+idle");
  const int64_t version_before = version();
  const Clock::time_point setup = Clock::now();
  StartStalled(server.target(), abusers);
  // A client that never reads writes until gRPC's flow control stops it,
  // and the server answers what it received until the client's window for
  // answers is full: only then are the streams stalled, and the phase
  // starts (the time that took is printed).
  int64_t written = -1, applied = -1;
  bool stalled = false;
  while (Clock::now() - setup <
         std::chrono::duration<double>(absl::GetFlag(FLAGS_stall_wait))) {
    const int64_t w = abusers.stream_requests_written.load();
    const int64_t v = version();
    if (w == written && v == applied) {
      stalled = true;
      break;
    }
    written = w;
    applied = v;
    absl::SleepFor(absl::Milliseconds(500));
  }
  const double setup_s = lepton::bench::Seconds(Clock::now() - setup);
  const int64_t stalled_versions = version() - version_before;
  phase("+stall");
  StartLargeCalls(server.target(), abusers);
  phase("+large");
  StopAbusers(abusers);
  phase("after");
  abusers.stop.store(false);
  StartModelChurn(server.target(), abusers);
  phase("+models");
  StopAbusers(abusers);

  std::printf("%-6s %30s %30s %30s %8s\n", "", "Predict", "health check",
              "Update", "server");
  std::printf("%-6s", "phase");
  for (int i = 0; i < 3; ++i) {
    std::printf(" %6s %7s %7s %7s", "calls", "p50", "p99", "max");
  }
  std::printf(" %8s\n", "RSS MiB");
  for (const PhaseResult& r : rows) PrintRow(r);

  std::printf(
      "\nabusers: %lld idle connections; %d StreamUpdate calls never read "
      "(their writers wrote %lld requests and the server applied %lld in "
      "the %.1f s before the phase, %s) and %d "
      "WatchModel calls never read; Predict of %lld bytes "
      "(limit - %lld): %lld OK, %lld otherwise; of %lld bytes (limit + %lld): "
      "%lld RESOURCE_EXHAUSTED, %lld otherwise\n",
      static_cast<long long>(abusers.idle_connected),
      absl::GetFlag(FLAGS_stalled_streams),
      static_cast<long long>(abusers.stream_requests_written.load()),
      static_cast<long long>(stalled_versions), setup_s,
      stalled ? "when flow control had stopped both"
              : "and neither had stopped: the phase ran beside them",
      absl::GetFlag(FLAGS_stalled_streams),
      static_cast<long long>(abusers.under_bytes),
      static_cast<long long>(limit - abusers.under_bytes),
      static_cast<long long>(abusers.under_ok.load()),
      static_cast<long long>(abusers.under_other.load()),
      static_cast<long long>(abusers.over_bytes),
      static_cast<long long>(abusers.over_bytes - limit),
      static_cast<long long>(abusers.over_exhausted.load()),
      static_cast<long long>(abusers.over_other.load()));
  {
    absl::MutexLock lock(&abusers.mu);
    Latencies churn{abusers.churn_ms};
    std::printf(
        "a logistic model of %lld features created and deleted %lld times "
        "(median %.0f ms each), %lld calls failed\n",
        static_cast<long long>(absl::GetFlag(FLAGS_churned_features)),
        static_cast<long long>(abusers.churned.load()), churn.Percentile(0.5),
        static_cast<long long>(abusers.churn_failed.load()));
  }
  {
    absl::MutexLock lock(&abusers.mu);
    if (!abusers.first_odd.empty()) {
      errors.Add(
          absl::StrCat(abusers.under_other.load() + abusers.over_other.load() +
                           abusers.churn_failed.load(),
                       " abusers' calls answered unexpectedly; the first, ",
                       abusers.first_odd));
    }
  }
  if (abusers.under_ok.load() == 0 || abusers.over_exhausted.load() == 0) {
    errors.Add("the large calls did not run both ways");
  }
  if (abusers.under_bytes > limit || abusers.over_bytes <= limit) {
    errors.Add("the large requests are not on both sides of the limit");
  }
  const PhaseResult& quiet = rows[0];
  for (const PhaseResult* abuse : {&rows[3], &rows[5]}) {
    if (quiet.predict.us.empty() || abuse->predict.us.empty()) {
      errors.Add("a phase made no Predict call");
      continue;
    }
    std::printf(
        "%s / quiet, p99: Predict %.2f, health check %.2f, Update %.2f\n",
        abuse->name.c_str(),
        abuse->predict.Percentile(0.99) / quiet.predict.Percentile(0.99),
        abuse->health.Percentile(0.99) / quiet.health.Percentile(0.99),
        abuse->update.Percentile(0.99) / quiet.update.Percentile(0.99));
  }
  stub.reset();
  health.reset();
  channel.reset();
  const absl::StatusOr<int> exit = server.Terminate(absl::Seconds(60));
  if (!exit.ok() || *exit != 0) {
    errors.Add("the server on SIGTERM: " + lepton::bench::DescribeExit(exit));
  }
  std::printf("unexpected errors: %lld\n",
              static_cast<long long>(errors.count));
  return errors.count == 0 ? 0 : 1;
}
