// What the gRPC benchmark programs (load_bench, durability_bench,
// cluster_bench) share besides the load driver: the clock and its seconds,
// channels that are a TCP connection each, how a failed call or a server's
// exit is told, and the count of unexpected errors that sets a program's
// exit status.
//
//   std::vector<std::shared_ptr<grpc::Channel>> channels =
//       ConnectEach({target}, 16, std::chrono::seconds(10));
//   if (channels.empty()) errors.Add("cannot connect");
//   ...
//   if (!status.ok()) errors.Add("Update: " + Describe(status));
//   return errors.count == 0 ? 0 : 1;
//
// Thread safety: the functions are safe on any thread; an Errors is for one
// thread.
#ifndef LEPTON_BENCH_BENCH_SUPPORT_H_
#define LEPTON_BENCH_BENCH_SUPPORT_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lepton::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// "code N: message".
std::string Describe(const grpc::Status& status);

// "exit status N", or why there is none: the result of
// ServerProcess::Terminate (tests/testing/server_process.h).
std::string DescribeExit(const absl::StatusOr<int>& exit);

// A channel to `target` that is a TCP connection of its own, as a separate
// client's would be (channels with equal arguments share one by default),
// with no limit on message sizes.
std::shared_ptr<grpc::Channel> Connect(const std::string& target);

// `n` channels from Connect, channel i to targets[i % targets.size()], each
// waited for until it is connected, for at most `timeout`; empty if one did
// not connect in time.
std::vector<std::shared_ptr<grpc::Channel>> ConnectEach(
    const std::vector<std::string>& targets, int n,
    std::chrono::milliseconds timeout);

// Counts unexpected errors and prints them as they happen.
struct Errors {
  int64_t count = 0;
  // Prints "  ERROR: <what>" and adds `n` to count.
  void Add(const std::string& what, int64_t n = 1);
};

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_BENCH_SUPPORT_H_
