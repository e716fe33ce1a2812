// The in-process figure beside load_bench's update rows: the same Update
// requests applied by a ModelStore in load_bench's own process (the server's
// conversion, the core's defaults, in memory), one after another on one
// thread, so that "over gRPC / in process" shows what the wire and the server
// around the core cost.
//
// Thread safety: call from one thread.
#ifndef LEPTON_BENCH_LOAD_IN_PROCESS_H_
#define LEPTON_BENCH_LOAD_IN_PROCESS_H_

#include <chrono>
#include <vector>

#include "absl/status/statusor.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::bench {

// Creates the model of `create` in a fresh in-memory store, applies
// `pretrain`, then cycles through `updates` for `duration` (after `warmup`)
// and returns the examples learned per second.
absl::StatusOr<double> InProcessUpdateRate(
    const v1::CreateModelRequest& create,
    const std::vector<v1::UpdateRequest>& pretrain,
    const std::vector<v1::UpdateRequest>& updates,
    std::chrono::nanoseconds warmup, std::chrono::nanoseconds duration);

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LOAD_IN_PROCESS_H_
