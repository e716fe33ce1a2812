#!/usr/bin/env bash
# The soak with faults: lepton_server under a mixed load of many models for
# MINUTES, killed (-9) or stopped (SIGTERM) at random moments and restarted on
# the same data directory, every model checked bit for bit against a
# reference after every restart (tests/integration/soak_test.cc states what
# it checks). Builds Release (in build/, or $BUILD_DIR; $BUILD_JOBS parallel
# jobs, default 2), then runs build/tests/integration/soak_test, which starts its
# own server on a free loopback port with a temporary --data_dir (under
# $TMPDIR or /tmp, removed afterwards).
#
#   scripts/soak.sh MINUTES
#   scripts/soak.sh 30
#   LEPTON_CRASH_SEED=123 scripts/soak.sh 10    # the same choices again
#
# It prints a line per server life, then the calls by kind and code, kills,
# recoveries, models created and deleted, and the server's RSS curve; the
# exit status is 0 iff every check passed. CI runs the 1-minute form (CTest
# soak_smoke, label load).
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# != 1)) || [[ ! "$1" =~ ^[0-9]+$ ]] || (($1 < 1)); then
  echo "usage: $0 MINUTES   (a whole number, at least 1)" >&2
  exit 2
fi
minutes=$1

scripts/install-deps.sh --build
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${BUILD_JOBS:-2}" --target soak_test
LEPTON_SOAK_SECONDS=$((minutes * 60)) exec "$build/tests/integration/soak_test" \
  --gtest_brief=1
