#!/usr/bin/env bash
# Measures one caller's single-instance Predict against the wire's floor on
# loopback: builds Release (in build/, or $BUILD_DIR; $BUILD_JOBS parallel
# jobs, default 2), then runs build/bench/latency_bench, which starts a
# lepton_server of its own on a free loopback port (in memory) and prints
# Predict, the health check and a TCP echo of the same bytes, each with
# p50/p99/max and the server's context switches per call, then their ratios.
# A first argument that is a number is the calls per phase (default 5000);
# the other arguments go to latency_bench; see `latency_bench --help`.
#
#   scripts/latency_bench.sh                   5000 calls per phase
#   scripts/latency_bench.sh 20000             20000 calls per phase
#   scripts/latency_bench.sh --warmup_calls=2000
#
# The caller, the server and the echo share the machine: on a VM, idle
# cores make every wake-up slower, so compare the ratios of one run.
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
cmake --build "$build" -j"${BUILD_JOBS:-2}" --target lepton_server latency_bench
exec "$build/bench/latency_bench" --server="$build/server/lepton_server" \
  "${args[@]}" "$@"
