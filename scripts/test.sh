#!/usr/bin/env bash
# Builds Lepton and runs every test, as CI does (.ci/run calls this script),
# with the presets of CMakePresets.json:
#   1. release: every test (labels unit, quality, integration, load), then
#      the container image test on its own (label container);
#   2. thread-safety: clang's -Wthread-safety over the libraries and the
#      binaries, as errors (a compile check; nothing runs);
#   3. tsan: the core's unit tests under ThreadSanitizer (the TSan build
#      leaves the gRPC service out: Debian's gRPC is not TSan-instrumented);
#   4. asan: every unit test (core, service, client) under AddressSanitizer +
#      UndefinedBehaviorSanitizer;
#   5. fuzz: each libFuzzer target (tests/fuzz/) for 20 seconds from its
#      seeds, under ASan + UBSan with libFuzzer's memory limits (label fuzz;
#      docs/fuzzing.md).
# Installs missing Debian packages first. Build directories: build/,
# build-clang/, build-tsan/, build-asan/, build-fuzz/ (reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
configure_and_build() {
  local preset=$1
  echo "== build ($preset)"
  local log
  log=$(mktemp)
  cmake --preset "$preset" >"$log" 2>&1 || {
    cat "$log"
    rm -f "$log"
    return 1
  }
  rm -f "$log"
  cmake --build --preset "$preset" -j"$jobs"
}

configure_and_build release
echo "== tests (release)"
ctest --preset release -j"$jobs"
# The container test alone (docker/test-image.sh, short form: the image takes
# the binaries built above; it runs containers, so nothing runs beside it).
echo "== container image test (podman)"
ctest --preset container

echo "== thread-safety analysis (clang -Wthread-safety -Werror)"
configure_and_build thread-safety

configure_and_build tsan
echo "== unit tests under ThreadSanitizer"
ctest --preset tsan -j"$jobs"

configure_and_build asan
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
ctest --preset asan -j"$jobs"

configure_and_build fuzz
echo "== fuzz targets, 20 s each (one at a time: each is a single-process run)"
ctest --preset fuzz
