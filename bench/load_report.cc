#include "bench/load_report.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lepton::bench {
namespace {

std::string PerCall(double cpu_seconds, int64_t calls) {
  if (cpu_seconds < 0 || calls == 0) return "-";
  return absl::StrFormat("%.1f", cpu_seconds * 1e6 / calls);
}

const Row* Find(const std::vector<Row>& rows, const std::string& name,
                int callers) {
  for (const Row& row : rows) {
    if (row.name == name && row.callers == callers) return &row;
  }
  return nullptr;
}

void PrintGoal(const std::string& what, double value, const char* goal,
               bool met) {
  std::printf("  %-50s %8.*f  (goal %s: %s)\n", what.c_str(),
              value < 100 ? 2 : 0, value, goal, met ? "met" : "MISSED");
}

}  // namespace

void CpuWindow::Sample(bool start) {
  const int i = start ? 0 : 1;
  client_[i] = SelfCpuSeconds();
  server_[i] = ProcessCpuSeconds(server_pid_);
  machine_[i] = MachineBusySeconds();
}

std::string CpuWindow::ClientPerCall(int64_t calls) const {
  return PerCall(client_[1] - client_[0], calls);
}

std::string CpuWindow::ServerPerCall(int64_t calls) const {
  return PerCall(server_pid_ > 0 ? server_[1] - server_[0] : -1, calls);
}

double CpuWindow::OtherCores(double seconds) const {
  if (server_pid_ <= 0 || machine_[0] < 0) return -1;
  const double other = (machine_[1] - machine_[0]) - (client_[1] - client_[0]) -
                       (server_[1] - server_[0]);
  // The three counters tick at 100 Hz and are read at slightly different
  // moments, so a quiet machine can come out a hair below zero.
  return std::max(0.0, other / seconds);
}

void PrintHeader() {
  std::printf("%-20s %7s %9s %10s %8s %8s %8s %8s %8s %5s %6s\n", "scenario",
              "callers", "calls/s", "examples/s", "p50 us", "p90 us", "p99 us",
              "cli us/c", "srv us/c", "other", "errors");
}

void PrintRow(const Row& row, int examples_per_call, const CpuWindow& cpu,
              int64_t calls, int64_t errors) {
  const std::string examples =
      examples_per_call == 0
          ? "-"
          : absl::StrFormat("%.0f", row.calls_per_s * examples_per_call);
  const std::string other =
      row.other_cores < 0 ? "-" : absl::StrFormat("%.2f", row.other_cores);
  std::printf("%-20s %7d %9.0f %10s %8.1f %8.1f %8.1f %8s %8s %5s %6lld\n",
              row.name.c_str(), row.callers, row.calls_per_s, examples.c_str(),
              row.latency.p50_us, row.latency.p90_us, row.latency.p99_us,
              cpu.ClientPerCall(calls).c_str(),
              cpu.ServerPerCall(calls).c_str(), other.c_str(),
              static_cast<long long>(errors));
}

void PrintNotes(const std::vector<Row>& rows) {
  std::printf(
      "\ncli/srv us/c: CPU time per call of load_bench / lepton_server "
      "(\"+updates\" rows include the streams' work);\nother: cores other "
      "processes kept busy during the measured window.\n");
  double busiest = 0;
  for (const Row& row : rows) busiest = std::max(busiest, row.other_cores);
  if (busiest > 0.2) {
    std::printf(
        "WARNING: other processes took up to %.2f cores during a run: "
        "these figures measured a busy machine.\n",
        busiest);
  }
}

void PrintGoals(const std::vector<Row>& rows, int concurrency) {
  std::printf("\ngoals, from the figures above:\n");
  const Row* health1 = Find(rows, "health", 1);
  const Row* predict1 = Find(rows, "predict x1", 1);
  const Row* predict_n = Find(rows, "predict x1", concurrency);
  const Row* updates_n = Find(rows, "predict x1 +updates", concurrency);
  if (health1 != nullptr && predict1 != nullptr) {
    const double a = predict1->latency.p50_us / health1->latency.p50_us;
    PrintGoal("(a) predict x1 p50 / health p50, 1 caller", a, "<= 1.3",
              a <= 1.3);
  }
  if (predict_n != nullptr && updates_n != nullptr) {
    const double b = updates_n->latency.p99_us / predict_n->latency.p99_us;
    PrintGoal(absl::StrCat("(b) predict x1 p99, +updates / without, ",
                           concurrency, " callers"),
              b, "<= 1.5", b <= 1.5);
  }
  if (predict_n != nullptr) {
    PrintGoal(absl::StrCat("(c) predict x1 calls/s, ", concurrency, " callers"),
              predict_n->calls_per_s, ">= 40000",
              predict_n->calls_per_s >= 40000);
  }
}

}  // namespace lepton::bench
