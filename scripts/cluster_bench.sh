#!/usr/bin/env bash
# Measures lepton_server's cluster mode (--cluster): builds Release (in
# build/, or $BUILD_DIR), then runs build/bench/cluster_bench, which starts a
# redis-server of its own (AOF, appendfsync always, in a temporary directory
# under $TMPDIR or /tmp, removed afterwards) and cluster nodes on free
# loopback ports, and prints replication lag, Update throughput of 2 nodes
# against a single --fsync=always server, and Predict throughput over 1, 2
# and 3 nodes with each process's CPU. Extra arguments go to cluster_bench;
# see `cluster_bench --help`. Needs /usr/bin/redis-server.
#
#   scripts/cluster_bench.sh                   0.5 s warmup + 3 s per run
#                                              (about 25 s after the build)
#   scripts/cluster_bench.sh --duration=10s --rounds=3   the longer form
#                                              (about 2 min): 10 s per run,
#                                              the update pair 3 times
#   CLUSTER_BENCH_DURATION=10s scripts/cluster_bench.sh   10 s per run
#   scripts/cluster_bench.sh --smoke           a ~5 s smoke run
#
# The nodes, redis-server and the clients share the machine's cores: read
# each node's calls per CPU-second, and the `other cores` lines.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target lepton_server lepton_client cluster_bench
args=()
if [[ -n "${CLUSTER_BENCH_DURATION:-}" ]]; then
  args+=("--duration=$CLUSTER_BENCH_DURATION")
fi
exec "$build/bench/cluster_bench" --server="$build/server/lepton_server" \
  ${args[@]+"${args[@]}"} "$@"
