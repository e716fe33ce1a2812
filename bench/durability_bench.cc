// durability_bench: what the update log costs lepton_server's updates, and
// how long a restart takes, measured against servers of its own.
//
// Updates: for each mode in --modes (memory: --data_dir= empty; never,
// interval, always: --fsync=<mode> on a fresh temporary --data_dir) and for
// 1 and --concurrency (16) clients, it starts a lepton_server (--server) on
// a free loopback port, creates a logistic model (D = 1000, 10 nonzeros per
// example, 16 examples per Update by default) and runs the clients for
// --warmup + --duration: each client is a channel (TCP connection) of its
// own with one unary Update call in flight at all times, the next sent as
// soon as the last is answered (one thread drives them all through gRPC's
// async API, bench/load_driver.h). One table row per run: updates/s,
// examples/s, latency p50/p99 of the calls both started and answered in the
// measured window, the server's and this program's CPU per update, the cores
// other processes took. Every server is then asked for its model's version (it
// must be 1 + the updates acknowledged: none lost, none doubled), stopped with
// SIGTERM (exit 0 is required) and its directory removed. Then the ratios the
// goals are stated in, each from rows of this run.
//
// Restart: a softmax model, D = 784, K = 10, dense examples, on a server with
// --fsync=never and checkpoints only at creation (--checkpoint_every_updates,
// --checkpoint_interval and --checkpoint_log_bytes out of reach):
// --restart_examples (100,000) examples in Updates of 256, then SIGKILL (no
// final checkpoint: recovery loads the initial checkpoint and replays the whole
// log) and a restart on the same directory, timed from the fork to "serving on
// port" and to the first GetModel showing the version the model had; then
// SIGTERM (a final checkpoint) and a restart that only loads it, timed the same
// way.
//
// It also reports how much of the recovery thread's time went to waiting
// for a CPU (/proc/<pid>/schedstat), since the clients share the machine.
//
// --rounds=N runs every configuration N times, round after round, then
// prints the median run of each and computes the ratios from those (and the
// median restart times): on a shared machine, one burst of someone else's
// work then moves one run, not the ratios.
//
// Every figure printed is measured in this run. The last line is
// "unexpected errors: N"; the exit status is 0 iff N is 0 (goals are
// reported, never enforced).
//
//   durability_bench [--server=build/server/lepton_server] [--duration=3s]
//   durability_bench --smoke      # ~10 s: CTest durability_bench_smoke
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
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
#include "bench/load_report.h"
#include "bench/load_stats.h"
#include "bench/load_workload.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, server, lepton::testing::kServerPath,
          "the lepton_server binary to start (default: the one built with "
          "this program)");
ABSL_FLAG(std::vector<std::string>, modes,
          std::vector<std::string>({"memory", "never", "interval", "always"}),
          "comma-separated, run in this order: memory (--data_dir= empty), "
          "never, interval, always (--fsync=<mode> on a temporary data dir)");
ABSL_FLAG(int32_t, concurrency, 16,
          "clients of the concurrent runs (each mode also runs with 1)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "measured time of each run");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(500),
          "unmeasured time before each run's window");
ABSL_FLAG(int64_t, num_features, 1000, "D of the logistic model");
ABSL_FLAG(int32_t, nonzeros, 10, "nonzero features per example");
ABSL_FLAG(int32_t, batch, 16, "examples per Update call");
ABSL_FLAG(absl::Duration, fsync_interval, absl::Milliseconds(10),
          "--fsync_interval of the interval servers");
ABSL_FLAG(std::vector<std::string>, server_flags, {},
          "comma-separated extra flags for every server, e.g. "
          "--update_threads=4");
ABSL_FLAG(int32_t, restart_examples, 100000,
          "examples logged before the restart measurement (0: skip it)");
ABSL_FLAG(int32_t, restart_batch, 256, "examples per Update before restart");
ABSL_FLAG(int32_t, rounds, 1,
          "run every configuration (and the restart) this many times, "
          "interleaved, and compare medians: steadier on a shared machine");
ABSL_FLAG(bool, smoke, false,
          "a ~10 s run for CI: --duration=0.3s --warmup=0.1s "
          "--restart_examples=5000");

namespace {

using namespace lepton;
using lepton::bench::Clock;
using lepton::testing::ScratchDir;
using lepton::testing::ServerProcess;

constexpr std::chrono::seconds kDeadline(10);
constexpr char kModel[] = "durability-bench";

// A lepton_server `binary` on a free loopback port, with `flags`, once it
// serves (tests/testing/server_process.h).
absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(
    const std::string& binary, const std::vector<std::string>& flags) {
  auto server = std::make_unique<ServerProcess>(binary);
  if (absl::Status s = server->Start(flags); !s.ok()) return s;
  return server;
}

// Bytes in the regular files below `dir`: what a store put there.
int64_t BytesBelow(const std::string& dir) {
  int64_t total = 0;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, error)) {
    std::error_code e;
    if (entry.is_regular_file(e)) {
      total += static_cast<int64_t>(entry.file_size(e));
    }
  }
  return total;
}

absl::StatusOr<v1::ModelInfo> GetModel(v1::ModelService::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::GetModelRequest request;
  request.set_name(kModel);
  v1::ModelInfo info;
  grpc::Status s = stub->GetModel(&context, request, &info);
  if (!s.ok()) return absl::UnavailableError("GetModel: " + bench::Describe(s));
  return info;
}

grpc::Status CreateModel(v1::ModelService::Stub* stub,
                         const v1::CreateModelRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  v1::ModelInfo info;
  return stub->CreateModel(&context, request, &info);
}

// ---------------------------------------------------------------- updates

struct Mode {
  std::string name;
  bool durable;
};

struct UpdateRow {
  std::string mode;
  int clients = 0;
  int round = 0;
  double updates_per_s = 0;
  bench::LatencySummary latency;
};

struct UpdateSettings {
  std::string server;
  std::vector<std::string> server_flags;
  absl::Duration fsync_interval;
  std::chrono::nanoseconds warmup;
  std::chrono::nanoseconds duration;
  int batch;
};

void PrintUpdateHeader() {
  std::printf("%-9s %7s %9s %10s %8s %8s %8s %10s %10s %5s %7s %6s\n", "mode",
              "clients", "updates/s", "examples/s", "p50 us", "p90 us",
              "p99 us", "srv us/upd", "cli us/upd", "other", "dir MB",
              "errors");
}

// Runs `clients` clients against a fresh server in `mode`; prints the row.
std::optional<UpdateRow> RunUpdates(const Mode& mode, int clients,
                                    const UpdateSettings& settings,
                                    const v1::CreateModelRequest& create,
                                    const std::vector<v1::UpdateRequest>& pool,
                                    bench::Errors* errors) {
  const std::string label = absl::StrCat(mode.name, " x", clients);
  ScratchDir dir;  // none for a memory-only server
  std::vector<std::string> flags = {"--data_dir="};
  if (mode.durable) {
    absl::StatusOr<ScratchDir> made = ScratchDir::Create("lepton-dbench");
    if (!made.ok()) {
      errors->Add(absl::StrCat(label, ": ", made.status().message()));
      return std::nullopt;
    }
    dir = *std::move(made);
    flags = {absl::StrCat("--data_dir=", dir.path()),
             absl::StrCat("--fsync=", mode.name)};
    if (mode.name == "interval") {
      flags.push_back(absl::StrCat(
          "--fsync_interval=", absl::FormatDuration(settings.fsync_interval)));
    }
  }
  flags.insert(flags.end(), settings.server_flags.begin(),
               settings.server_flags.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartServer(settings.server, flags);
  if (!server.ok()) {
    errors->Add(absl::StrCat(label, ": ", server.status().message()));
    return std::nullopt;
  }
  auto admin = v1::ModelService::NewStub(bench::Connect((*server)->target()));
  if (grpc::Status s = CreateModel(admin.get(), create); !s.ok()) {
    errors->Add(absl::StrCat(label, ": CreateModel: ", bench::Describe(s)));
    return std::nullopt;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels =
      bench::ConnectEach({(*server)->target()}, clients, kDeadline);
  if (channels.empty()) {
    errors->Add(absl::StrCat(label, ": cannot connect"));
    return std::nullopt;
  }

  // The clients are `clients` calls kept in flight by one thread through
  // gRPC's async API, each on its own connection: a thread per client costs
  // more client CPU per update, taken from the cores the server shares.
  bench::CpuWindow cpu((*server)->pid());
  bench::ClosedLoopOptions loop;
  loop.callers = clients;
  loop.client_threads = 1;
  loop.channel_per_caller = true;
  loop.warmup = settings.warmup;
  loop.duration = settings.duration;
  loop.on_window = [&cpu](bool start) { cpu.Sample(start); };
  bench::ClosedLoopResult all = bench::RunClosedLoop(
      loop, channels,
      bench::UnaryCallers<v1::ModelService>(
          &v1::ModelService::Stub::PrepareAsyncUpdate, &pool, kDeadline,
          /*stride=*/17));

  const double window = all.window_seconds;
  UpdateRow row{mode.name, clients, 0, all.calls / window,
                bench::Summarize(std::move(all.latencies_ns))};
  const int64_t dir_bytes = dir.path().empty() ? 0 : BytesBelow(dir.path());
  const double other = cpu.OtherCores(window);
  std::printf(
      "%-9s %7d %9.0f %10.0f %8.0f %8.0f %8.0f %10s %10s %5s %7s %6lld\n",
      mode.name.c_str(), clients, row.updates_per_s,
      row.updates_per_s * settings.batch, row.latency.p50_us,
      row.latency.p90_us, row.latency.p99_us,
      cpu.ServerPerCall(all.calls).c_str(),
      cpu.ClientPerCall(all.calls).c_str(),
      other < 0 ? "-" : absl::StrFormat("%.2f", other).c_str(),
      dir.path().empty() ? "-"
                         : absl::StrFormat("%.1f", dir_bytes / 1e6).c_str(),
      static_cast<long long>(all.errors));
  std::fflush(stdout);
  if (all.errors > 0) {
    errors->Add(absl::StrCat(label, ": ", all.errors,
                             " failed Update calls; first: ", all.first_error),
                all.errors);
  }

  // Every acknowledged update, and nothing else, must be in the model.
  absl::StatusOr<v1::ModelInfo> info = GetModel(admin.get());
  if (!info.ok()) {
    errors->Add(absl::StrCat(label, ": ", info.status().message()));
  } else if (info->version() != static_cast<uint64_t>(1 + all.completed)) {
    errors->Add(absl::StrCat(label, ": the model is at version ",
                             info->version(), " after ", all.completed,
                             " acknowledged updates (expected ",
                             1 + all.completed, ")"));
  }
  // The clients go away first: while a client keeps even an idle
  // connection open, the server takes its whole --shutdown_grace (10 s) to
  // exit.
  channels.clear();
  admin.reset();
  absl::StatusOr<int> exit = (*server)->Terminate(absl::Seconds(30));
  if (!exit.ok() || *exit != 0) {
    errors->Add(absl::StrCat(
        label, ": the server did not stop cleanly on SIGTERM: ",
        bench::DescribeExit(exit), "; stderr:\n", (*server)->err_text()));
  }
  return row;
}

const UpdateRow* Find(const std::vector<UpdateRow>& rows,
                      const std::string& mode, int clients) {
  for (const UpdateRow& row : rows) {
    if (row.mode == mode && row.clients == clients) return &row;
  }
  return nullptr;
}

// With several rounds: the run of each configuration with the median
// updates/s (latencies from that same run), printed as a table with the
// range of updates/s over the rounds; returns those runs.
std::vector<UpdateRow> PrintMedians(const std::vector<UpdateRow>& runs,
                                    const std::vector<Mode>& modes,
                                    int concurrency, int batch) {
  std::vector<UpdateRow> medians;
  int rounds = 0;
  for (const UpdateRow& run : runs) rounds = std::max(rounds, run.round + 1);
  std::printf(
      "\nmedian of %d rounds, by updates/s (latencies from that run):\n"
      "%-9s %7s %9s %10s %8s %8s %8s %17s\n",
      rounds, "mode", "clients", "updates/s", "examples/s", "p50 us", "p90 us",
      "p99 us", "updates/s min-max");
  for (const Mode& mode : modes) {
    for (int clients : {1, concurrency}) {
      std::vector<UpdateRow> same;
      for (const UpdateRow& run : runs) {
        if (run.mode == mode.name && run.clients == clients) {
          same.push_back(run);
        }
      }
      if (same.empty()) continue;
      std::sort(same.begin(), same.end(),
                [](const UpdateRow& a, const UpdateRow& b) {
                  return a.updates_per_s < b.updates_per_s;
                });
      const UpdateRow& m = same[(same.size() - 1) / 2];
      std::printf("%-9s %7d %9.0f %10.0f %8.0f %8.0f %8.0f %8.0f-%-8.0f\n",
                  m.mode.c_str(), m.clients, m.updates_per_s,
                  m.updates_per_s * batch, m.latency.p50_us, m.latency.p90_us,
                  m.latency.p99_us, same.front().updates_per_s,
                  same.back().updates_per_s);
      medians.push_back(m);
    }
  }
  return medians;
}

void PrintGoal(const std::string& what, double value, const char* goal,
               bool met) {
  std::printf("  %-46s %7.2f  (goal %s: %s)\n", what.c_str(), value, goal,
              met ? "met" : "MISSED");
}

void PrintRatios(const std::vector<UpdateRow>& rows,
                 const std::vector<Mode>& modes, int concurrency) {
  std::printf("\nratios of updates/s, from the rows above:\n");
  const UpdateRow* always1 = Find(rows, "always", 1);
  const UpdateRow* always_n = Find(rows, "always", concurrency);
  if (always1 != nullptr && always_n != nullptr) {
    const double r = always_n->updates_per_s / always1->updates_per_s;
    PrintGoal(absl::StrCat("always, ", concurrency, " clients / 1 client"), r,
              ">= 5", r >= 5);
    // What bounds that ratio on the machine: always x1 waits for the disk,
    // always xN can at best go as fast as the CPU lets updates go at all.
    const UpdateRow* never_n = Find(rows, "never", concurrency);
    const UpdateRow* memory_n = Find(rows, "memory", concurrency);
    if (never_n != nullptr) {
      std::printf(
          "  %-46s %7.2f  (1.00: the fsyncs cost nothing)\n",
          absl::StrCat("  always / never, ", concurrency, " clients").c_str(),
          always_n->updates_per_s / never_n->updates_per_s);
    }
    if (memory_n != nullptr) {
      std::printf(
          "  %-46s %7.2f  (the first ratio's ceiling here)\n",
          absl::StrCat("  memory, ", concurrency, " clients / always, 1 client")
              .c_str(),
          memory_n->updates_per_s / always1->updates_per_s);
    }
  }
  for (int clients : {1, concurrency}) {
    const UpdateRow* never = Find(rows, "never", clients);
    const UpdateRow* interval = Find(rows, "interval", clients);
    if (never == nullptr || interval == nullptr) continue;
    const double r = never->updates_per_s / interval->updates_per_s;
    PrintGoal(absl::StrCat("never / interval, ", clients,
                           clients == 1 ? " client" : " clients"),
              r, "<= 1.2", r <= 1.2);
  }
  std::printf("  %-46s %7s %10s\n", "mode / memory", "1 client",
              absl::StrCat(concurrency, " clients").c_str());
  for (const Mode& mode : modes) {
    if (!mode.durable) continue;
    std::string cells[2];
    const int counts[2] = {1, concurrency};
    for (int i = 0; i < 2; ++i) {
      const UpdateRow* row = Find(rows, mode.name, counts[i]);
      const UpdateRow* memory = Find(rows, "memory", counts[i]);
      cells[i] = row == nullptr || memory == nullptr
                     ? "-"
                     : absl::StrFormat(
                           "%.2f", row->updates_per_s / memory->updates_per_s);
    }
    std::printf("    %-44s %7s %10s\n", mode.name.c_str(), cells[0].c_str(),
                cells[1].c_str());
  }
}

// ---------------------------------------------------------------- restart

// The lines of the server's stderr about recovery.
void PrintRecoveryLines(const std::string& stderr_text) {
  for (absl::string_view line : absl::StrSplit(stderr_text, '\n')) {
    if (absl::StrContains(line, "recover")) {
      std::printf("      server: %s\n", std::string(line).c_str());
    }
  }
}

struct RestartTiming {
  double serving_s = -1;  // fork -> "serving on port"
  double ready_s = -1;    // fork -> GetModel at the expected version
  double server_cpu_s = -1;
  // The server's main thread (where recovery runs) until then: on a CPU, and
  // runnable but waiting for one (another process had it). -1: unknown.
  double main_on_cpu_s = -1;
  double main_runqueue_s = -1;
};

// /proc/<pid>/schedstat: nanoseconds on a CPU and waiting in the run queue,
// of the process's main thread.
void ReadSchedStat(pid_t pid, double* on_cpu_s, double* runqueue_s) {
  std::FILE* f =
      std::fopen(absl::StrCat("/proc/", pid, "/schedstat").c_str(), "r");
  if (f == nullptr) return;
  unsigned long long on_cpu = 0, waiting = 0;
  if (std::fscanf(f, "%llu %llu", &on_cpu, &waiting) == 2) {
    *on_cpu_s = on_cpu / 1e9;
    *runqueue_s = waiting / 1e9;
  }
  std::fclose(f);
}

// Starts a server on `flags` and times it until GetModel reports `version`
// and `examples`; the server is left running in *server.
std::optional<RestartTiming> TimeRestart(const std::string& binary,
                                         const std::vector<std::string>& flags,
                                         uint64_t version, uint64_t examples,
                                         const std::string& label,
                                         std::unique_ptr<ServerProcess>* server,
                                         bench::Errors* errors) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> started =
      StartServer(binary, flags);
  if (!started.ok()) {
    errors->Add(absl::StrCat(label, ": ", started.status().message()));
    return std::nullopt;
  }
  *server = *std::move(started);
  RestartTiming t;
  t.serving_s = bench::Seconds((*server)->serving() - (*server)->spawned());
  auto stub = v1::ModelService::NewStub(bench::Connect((*server)->target()));
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(60);
  std::string last;
  while (true) {
    absl::StatusOr<v1::ModelInfo> info = GetModel(stub.get());
    if (info.ok() && info->version() == version) {
      t.ready_s = bench::Seconds(Clock::now() - (*server)->spawned());
      if (info->examples_seen() != examples) {
        errors->Add(absl::StrCat(label, ": examples_seen ",
                                 info->examples_seen(), ", expected ",
                                 examples));
      }
      break;
    }
    last = info.ok() ? absl::StrCat("version ", info->version(), ", expected ",
                                    version)
                     : std::string(info.status().message());
    if (Clock::now() > give_up) {
      errors->Add(absl::StrCat(label, ": the model never showed version ",
                               version, "; last: ", last, "; stderr:\n",
                               (*server)->err_text()));
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  t.server_cpu_s = bench::ProcessCpuSeconds((*server)->pid());
  ReadSchedStat((*server)->pid(), &t.main_on_cpu_s, &t.main_runqueue_s);
  return t;
}

void PrintRestart(const char* what, const RestartTiming& t, uint64_t version) {
  std::printf("    %s\n", what);
  std::printf("      %-36s %7.3f s\n", "fork -> \"serving on port\"",
              t.serving_s);
  std::printf("      %-36s %7.3f s  (goal < 2 s: %s)\n",
              absl::StrCat("fork -> GetModel shows version ", version).c_str(),
              t.ready_s, t.ready_s < 2 ? "met" : "MISSED");
  std::printf(
      "      by then: server CPU %.2f s; its main thread (recovery) %.2f s on "
      "a CPU, %.2f s waiting for one\n",
      t.server_cpu_s, t.main_on_cpu_s, t.main_runqueue_s);
}

struct RestartResult {
  double replay_ready_s = 0;  // after SIGKILL
  double load_ready_s = 0;    // after SIGTERM
};

// One restart measurement; prints the settings too if `describe`.
std::optional<RestartResult> RunRestart(
    const std::string& binary, const std::vector<std::string>& server_flags,
    int examples, int batch, bool describe, bench::Errors* errors) {
  bench::WorkloadOptions options;
  options.kind = bench::WorkloadKind::kDenseSoftmax;
  options.num_features = 784;
  options.num_classes = 10;
  options.pool_size = 4096;
  const bench::Workload workload(options);
  // The requests cycle through 16 distinct ones: the log and the replay cost
  // the same whatever the values.
  const int distinct = std::max(1, std::min(16, options.pool_size / batch));
  const std::vector<v1::UpdateRequest> pool =
      workload.UpdateRequests(kModel, batch, distinct);
  const int full = examples / batch;
  const int rest = examples % batch;
  v1::UpdateRequest last = pool[0];
  last.mutable_examples()->DeleteSubrange(rest, batch - rest);

  absl::StatusOr<ScratchDir> dir = ScratchDir::Create("lepton-dbench");
  if (!dir.ok()) {
    errors->Add(absl::StrCat("restart: ", dir.status().message()));
    return std::nullopt;
  }
  std::vector<std::string> flags = {
      absl::StrCat("--data_dir=", dir->path()), "--fsync=never",
      "--checkpoint_every_updates=1000000000", "--checkpoint_interval=1000h",
      "--checkpoint_log_bytes=1000000000000"};
  flags.insert(flags.end(), server_flags.begin(), server_flags.end());

  if (describe) {
    std::printf("\nrestart: %s, random values in [0, 1); server flags:",
                workload.Describe().c_str());
    for (const std::string& f : flags) {
      if (!absl::StartsWith(f, "--data_dir=")) std::printf(" %s", f.c_str());
    }
    std::printf(" (checkpoint at creation only)\n");
  }

  absl::StatusOr<std::unique_ptr<ServerProcess>> first =
      StartServer(binary, flags);
  if (!first.ok()) {
    errors->Add(absl::StrCat("restart: ", first.status().message()));
    return std::nullopt;
  }
  auto stub = v1::ModelService::NewStub(bench::Connect((*first)->target()));
  if (grpc::Status s = CreateModel(stub.get(), workload.CreateRequest(kModel));
      !s.ok()) {
    errors->Add(absl::StrCat("restart: CreateModel: ", bench::Describe(s)));
    return std::nullopt;
  }
  const Clock::time_point ingest_start = Clock::now();
  int updates = 0;
  for (int i = 0; i < full + (rest > 0 ? 1 : 0); ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v1::UpdateResponse response;
    const grpc::Status s = stub->Update(
        &context, i < full ? pool[i % pool.size()] : last, &response);
    if (!s.ok()) {
      errors->Add(absl::StrCat("restart: Update: ", bench::Describe(s)));
      return std::nullopt;
    }
    ++updates;
  }
  const double ingest_s = bench::Seconds(Clock::now() - ingest_start);
  absl::StatusOr<v1::ModelInfo> info = GetModel(stub.get());
  if (!info.ok()) {
    errors->Add(absl::StrCat("restart: ", info.status().message()));
    return std::nullopt;
  }
  const uint64_t version = info->version();
  const uint64_t seen = info->examples_seen();
  if (seen != static_cast<uint64_t>(examples)) {
    errors->Add(
        absl::StrCat("restart: examples_seen ", seen, ", expected ", examples));
  }
  const int64_t logged_bytes = BytesBelow(dir->path());
  std::printf(
      "    applied %d examples in %d Updates in %.2f s (%.0f examples/s); "
      "model version %llu; data dir %.1f MB\n",
      examples, updates, ingest_s, examples / ingest_s,
      static_cast<unsigned long long>(version), logged_bytes / 1e6);
  (*first)->Kill();
  first->reset();

  std::unique_ptr<ServerProcess> server;
  std::optional<RestartTiming> replay = TimeRestart(
      binary, flags, version, seen, "restart after SIGKILL", &server, errors);
  if (!replay.has_value()) return std::nullopt;
  PrintRestart(
      absl::StrCat("after SIGKILL (initial checkpoint + replay of ", updates,
                   " logged updates, ", examples, " examples):")
          .c_str(),
      *replay, version);
  PrintRecoveryLines(server->err_text());

  const Clock::time_point term = Clock::now();
  absl::StatusOr<int> exit = server->Terminate(absl::Seconds(60));
  const double stop_s = bench::Seconds(Clock::now() - term);
  if (!exit.ok() || *exit != 0) {
    errors->Add(absl::StrCat("restart: SIGTERM: ", bench::DescribeExit(exit),
                             "; stderr:\n", server->err_text()));
    return std::nullopt;
  }
  std::printf(
      "    SIGTERM -> exit 0 in %.3f s (writes the final checkpoint); data "
      "dir %.1f MB\n",
      stop_s, BytesBelow(dir->path()) / 1e6);

  std::optional<RestartTiming> load = TimeRestart(
      binary, flags, version, seen, "restart after SIGTERM", &server, errors);
  if (!load.has_value()) return std::nullopt;
  PrintRestart("after SIGTERM (final checkpoint, nothing to replay):", *load,
               version);
  PrintRecoveryLines(server->err_text());
  exit = server->Terminate(absl::Seconds(60));
  if (!exit.ok() || *exit != 0) {
    errors->Add(
        absl::StrCat("restart: second SIGTERM: ", bench::DescribeExit(exit)));
  }
  return RestartResult{replay->ready_s, load->ready_s};
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "durability_bench: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures what lepton_server's update log costs, and its restart:\n"
      "  durability_bench [--server=PATH] [--duration=3s] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  // As in load_bench: Debian's Abseil tracks every absl::Mutex in a
  // deadlock-detection graph, CPU this program would take from the server.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const bool smoke = absl::GetFlag(FLAGS_smoke);
  UpdateSettings settings;
  settings.server = absl::GetFlag(FLAGS_server);
  settings.server_flags = absl::GetFlag(FLAGS_server_flags);
  settings.fsync_interval = absl::GetFlag(FLAGS_fsync_interval);
  settings.warmup = absl::ToChronoNanoseconds(
      smoke ? absl::Milliseconds(100) : absl::GetFlag(FLAGS_warmup));
  settings.duration = absl::ToChronoNanoseconds(
      smoke ? absl::Milliseconds(300) : absl::GetFlag(FLAGS_duration));
  settings.batch = absl::GetFlag(FLAGS_batch);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int restart_examples =
      smoke ? 5000 : absl::GetFlag(FLAGS_restart_examples);
  const int restart_batch = absl::GetFlag(FLAGS_restart_batch);
  const int rounds = smoke ? 1 : absl::GetFlag(FLAGS_rounds);

  if (settings.server.empty() || access(settings.server.c_str(), X_OK) != 0) {
    return Fail(absl::StrCat("--server \"", settings.server,
                             "\" is not an executable lepton_server"));
  }
  if (concurrency < 2 || rounds < 1 || settings.batch < 1 ||
      restart_batch < 1 || restart_examples < 0 ||
      settings.duration.count() <= 0) {
    return Fail(
        "need --concurrency >= 2, --rounds >= 1, --batch >= 1, "
        "--restart_batch >= 1, "
        "--restart_examples >= 0, --duration > 0");
  }
  std::vector<Mode> modes;
  for (const std::string& name : absl::GetFlag(FLAGS_modes)) {
    if (name != "memory" && name != "never" && name != "interval" &&
        name != "always") {
      return Fail(absl::StrCat("unknown mode \"", name, "\""));
    }
    modes.push_back({name, name != "memory"});
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
  const std::vector<v1::UpdateRequest> pool =
      workload.UpdateRequests(kModel, settings.batch, 256);

  std::printf("durability_bench: %s, %ld cores\n", settings.server.c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf(
      "  updates: %s, %d examples per Update, server-default optimizer\n",
      workload.Describe().c_str(), settings.batch);
  std::printf(
      "  each run: a fresh server (and temporary --data_dir), %s warmup + "
      "%s measured; 1 and %d clients, each a TCP connection of its own with "
      "one unary Update in flight, the next sent when it is answered (one "
      "thread drives them all, async)\n",
      absl::FormatDuration(absl::FromChrono(settings.warmup)).c_str(),
      absl::FormatDuration(absl::FromChrono(settings.duration)).c_str(),
      concurrency);
  std::printf(
      "  server flags: memory --data_dir=; others --data_dir=<tmp> "
      "--fsync=<mode> (interval: --fsync_interval=%s), other flags at their "
      "defaults",
      absl::FormatDuration(settings.fsync_interval).c_str());
  for (const std::string& f : settings.server_flags) {
    std::printf(" %s", f.c_str());
  }
  std::printf("\n\n");

  bench::Errors errors;
  std::vector<UpdateRow> runs;
  if (!modes.empty()) PrintUpdateHeader();
  for (int round = 0; round < rounds && !modes.empty(); ++round) {
    if (rounds > 1) std::printf("round %d of %d\n", round + 1, rounds);
    for (const Mode& mode : modes) {
      for (int clients : {1, concurrency}) {
        std::optional<UpdateRow> row =
            RunUpdates(mode, clients, settings, workload.CreateRequest(kModel),
                       pool, &errors);
        if (!row.has_value()) continue;
        row->round = round;
        runs.push_back(*row);
      }
    }
  }
  if (!runs.empty()) {
    std::printf(
        "\nlatency: calls both started and answered in the window; srv/cli "
        "us/upd: CPU per update of the server / this program (one thread "
        "driving the clients);\nother: cores other processes kept busy; dir "
        "MB: the data dir at the end of the run.\n");
    const std::vector<UpdateRow> rows =
        rounds > 1 ? PrintMedians(runs, modes, concurrency, settings.batch)
                   : runs;
    PrintRatios(rows, modes, concurrency);
  }

  std::vector<RestartResult> restarts;
  for (int round = 0; round < rounds && restart_examples > 0; ++round) {
    if (rounds > 1 && round > 0) std::printf("  round %d:\n", round + 1);
    std::optional<RestartResult> r =
        RunRestart(settings.server, settings.server_flags, restart_examples,
                   restart_batch, /*describe=*/round == 0, &errors);
    if (r.has_value()) restarts.push_back(*r);
  }
  if (restarts.size() > 1) {
    std::vector<double> replay, load;
    for (const RestartResult& r : restarts) {
      replay.push_back(r.replay_ready_s);
      load.push_back(r.load_ready_s);
    }
    std::sort(replay.begin(), replay.end());
    std::sort(load.begin(), load.end());
    const double replay_median = replay[(replay.size() - 1) / 2];
    const double load_median = load[(load.size() - 1) / 2];
    std::printf(
        "  restart, fork -> GetModel, median of %zu (min-max):\n"
        "    after SIGKILL (replay)  %.3f s (%.3f-%.3f)  (goal < 2 s: %s)\n"
        "    after SIGTERM (load)    %.3f s (%.3f-%.3f)  (goal < 2 s: %s)\n",
        restarts.size(), replay_median, replay.front(), replay.back(),
        replay_median < 2 ? "met" : "MISSED", load_median, load.front(),
        load.back(), load_median < 2 ? "met" : "MISSED");
  }
  std::printf("\nunexpected errors: %lld\n",
              static_cast<long long>(errors.count));
  return errors.count == 0 ? 0 : 1;
}
