// Measurement helpers for load_bench: latency percentiles and the CPU time
// of this process and of another one (the server), so that a table row can
// say where the two shared cores went.
//
// Thread safety: plain functions over their arguments; safe anywhere.
#ifndef LEPTON_BENCH_LOAD_STATS_H_
#define LEPTON_BENCH_LOAD_STATS_H_

#include <cstdint>
#include <vector>

namespace lepton::bench {

struct LatencySummary {
  int64_t count = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
};

// Nearest-rank percentiles of latencies in nanoseconds (sorts its argument).
LatencySummary Summarize(std::vector<int64_t> latencies_ns);

// CPU seconds (user + system) used so far by this process.
double SelfCpuSeconds();
// The same for process `pid`, read from /proc/<pid>/stat; -1 if unreadable
// (no such process, or pid <= 0).
double ProcessCpuSeconds(int pid);
// CPU seconds all cores of the machine have been busy (not idle, not waiting
// for I/O) since boot, from /proc/stat; -1 if unreadable. Minus the two above,
// it tells how much of the machine other processes took during a run.
double MachineBusySeconds();

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LOAD_STATS_H_
