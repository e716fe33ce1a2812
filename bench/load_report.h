// The table load_bench prints: one row per scenario run, with the CPU time
// that run cost the client and the server, and the goal ratios computed from
// rows of the same run.
//
//   CpuWindow cpu(server_pid);
//   cpu.Sample(true); ... cpu.Sample(false);   // at the measured window's
//   edges PrintHeader(); PrintRow(row, examples_per_call, cpu, calls, errors);
//   PrintGoals(rows, 16);
//
// Thread safety: none needed; everything runs on load_bench's main thread.
#ifndef LEPTON_BENCH_LOAD_REPORT_H_
#define LEPTON_BENCH_LOAD_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/load_stats.h"

namespace lepton::bench {

struct Row {
  std::string name;
  int callers = 0;
  double calls_per_s = 0;
  LatencySummary latency;
  // Cores that other processes kept busy in the window; -1: unknown.
  double other_cores = -1;
};

// CPU seconds of this process, of the server (if its pid is known) and of the
// whole machine, at the start and the end of a measured window.
class CpuWindow {
 public:
  explicit CpuWindow(int server_pid) : server_pid_(server_pid) {}
  void Sample(bool start);
  // Per-call CPU in microseconds, "-" if unknown.
  std::string ClientPerCall(int64_t calls) const;
  std::string ServerPerCall(int64_t calls) const;
  // Cores that processes other than these two kept busy in the window: on a
  // shared machine, a run with a high figure here measured a busy machine.
  // -1 if unknown (no server pid).
  double OtherCores(double seconds) const;

 private:
  const int server_pid_;
  double client_[2] = {0, 0};
  double server_[2] = {0, 0};
  double machine_[2] = {0, 0};
};

void PrintHeader();
// examples_per_call 0: not an examples call (no examples/s).
void PrintRow(const Row& row, int examples_per_call, const CpuWindow& cpu,
              int64_t calls, int64_t errors);
// What the CPU columns mean, and a warning if other processes took more than
// a fifth of a core in some run.
void PrintNotes(const std::vector<Row>& rows);
// The ratios the server's goals are stated in; those whose rows did not run
// (see --filter) are left out.
void PrintGoals(const std::vector<Row>& rows, int concurrency);

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LOAD_REPORT_H_
