#!/usr/bin/env bash
# Where one caller's call to lepton_server stands between the wire's floor
# and minimal gRPC C++ servers: builds Release (in build/, or $BUILD_DIR;
# $BUILD_JOBS parallel jobs, default 2), then runs build/bench/grpc_floor_bench,
# which starts, each as a process of its own on a free loopback port, a TCP
# echo, minimal servers of an empty Health/Check on each gRPC API style
# (callback, async completion queue polled by one thread, sync, and
# variants) and a lepton_server (in memory), and prints one table: p50/p99/max,
# the ratio to the echo's p50, the server's context switches and CPU per call,
# then the switches by thread name and the ratios of issue 16's goals.
# A first argument that is a number is the calls per row (default 5000); the
# other arguments go to grpc_floor_bench; see `grpc_floor_bench --help`.
#
#   scripts/grpc_floor_bench.sh                    5000 calls per row
#   scripts/grpc_floor_bench.sh 20000 --rounds=10  rows take turns 10 times
#   scripts/grpc_floor_bench.sh --other_server=../main/build/server/lepton_server
#
# The caller and the servers share the machine: on a VM, idle cores make
# every wake-up slower, so compare the rows and ratios of one run.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  args+=("--calls=$1")
  shift
fi

scripts/install-deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${BUILD_JOBS:-2}" --target lepton_server grpc_floor_bench
exec "$build/bench/grpc_floor_bench" --server="$build/server/lepton_server" \
  "${args[@]}" "$@"
