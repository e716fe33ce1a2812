#!/usr/bin/env bash
# Measures whether slow and abusive clients hold up a well-behaved one:
# builds Release (in build/, or $BUILD_DIR; $BUILD_JOBS parallel jobs,
# default 2), then runs build/bench/abuse_bench, which starts a lepton_server
# of its own on a free loopback port (in memory) and prints a well-behaved
# client's Predict, health check and Update latency (p50/p99/max) quiet,
# beside idle connections, streams never read and messages just under and
# over --max_message_bytes, and quiet again. Arguments go to abuse_bench; see
# `abuse_bench --help`.
#
#   scripts/abuse_bench.sh                         5 s a phase, 500 idle
#   scripts/abuse_bench.sh --idle_connections=2000 --seconds=10
#
# The abusers, the well-behaved client and the server share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --build
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${BUILD_JOBS:-2}" --target lepton_server abuse_bench
exec "$build/bench/abuse_bench" --server="$build/server/lepton_server" "$@"
