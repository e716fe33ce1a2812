#include "bench/load_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace lepton::bench {
namespace {

// The value at fraction q of a sorted sample, by nearest rank.
double AtUs(const std::vector<int64_t>& sorted, double q) {
  const size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[rank == 0 ? 0 : rank - 1] / 1e3;
}

}  // namespace

LatencySummary Summarize(std::vector<int64_t> latencies_ns) {
  LatencySummary s;
  s.count = static_cast<int64_t>(latencies_ns.size());
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.p50_us = AtUs(latencies_ns, 0.50);
  s.p90_us = AtUs(latencies_ns, 0.90);
  s.p99_us = AtUs(latencies_ns, 0.99);
  return s;
}

double SelfCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(file)),
                   std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count
  // fields from the last ')'. utime and stime are fields 14 and 15.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double MachineBusySeconds() {
  std::ifstream file("/proc/stat");
  std::string cpu;
  file >> cpu;  // the first line sums every core: "cpu user nice system ..."
  if (cpu != "cpu") return -1;
  double total = 0, idle = 0, ticks;
  for (int i = 0; i < 8 && file >> ticks; ++i) {
    total += ticks;
    if (i == 3 || i == 4) idle += ticks;  // idle, iowait
  }
  return (total - idle) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace lepton::bench
