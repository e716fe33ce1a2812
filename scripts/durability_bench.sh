#!/usr/bin/env bash
# Measures what lepton_server's update log costs and how fast a server
# restarts: builds Release (in build/, or $BUILD_DIR), then runs
# build/bench/durability_bench, which starts lepton_servers of its own on free
# loopback ports, each on a fresh temporary --data_dir (under $TMPDIR or /tmp,
# removed afterwards; put TMPDIR on the disk you want measured). Extra
# arguments go to durability_bench; see `durability_bench --help`.
#
#   scripts/durability_bench.sh                 memory/never/interval/always x
#                                               1 and 16 clients, 0.5 s warmup
#                                               + 3 s each, then the restart
#                                               (100,000 examples replayed)
#   scripts/durability_bench.sh --smoke         a ~10 s smoke run
#   scripts/durability_bench.sh --modes=never,always --duration=10s
#
# The clients share the machine with the server, so read the table's `other`
# column: cores that other processes took during a run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target lepton_server durability_bench
exec "$build/bench/durability_bench" --server="$build/server/lepton_server" "$@"
