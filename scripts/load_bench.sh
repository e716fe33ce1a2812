#!/usr/bin/env bash
# Measures lepton_server over gRPC as its clients see it: builds Release (in
# build/, or $BUILD_DIR), starts build/server/lepton_server on a free loopback
# port, runs build/bench/load_bench against it, then stops the server with
# SIGTERM and checks that it exits 0 (bench/load_run.sh does the running).
# Extra arguments go to load_bench; see `load_bench --help`.
#
#   scripts/load_bench.sh                  every scenario, 1 s warmup + 3 s each
#   scripts/load_bench.sh --short          a ~10 s smoke run
#   scripts/load_bench.sh --model=dense    dense softmax D=784 K=10 instead of
#                                          sparse logistic D=2^22
#
# The load program shares the machine with the server, so read the table's
# `other` column: cores that other processes took during a run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target lepton_server load_bench
exec bench/load_run.sh "$build/server/lepton_server" "$build/bench/load_bench" "$@"
