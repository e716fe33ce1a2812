#!/usr/bin/env bash
# Builds Lepton and runs every test, as CI does (.ci/run calls this script):
#   1. Release build, every test (labels unit, quality, integration, load),
#      then the container image test on its own (label container);
#   2. the core's unit tests under ThreadSanitizer (the TSan build leaves the
#      gRPC service out: Debian's gRPC is not TSan-instrumented);
#   3. every unit test (core, service, client) under AddressSanitizer +
#      UndefinedBehaviorSanitizer.
# Installs missing Debian packages first. Build directories: build/,
# build-tsan/, build-asan/ (reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=2
# The sanitizer builds at -O1 -g1: with ASan+UBSan a large test file compiles
# in 27 s instead of 51 s at RelWithDebInfo's -O2 -g, which keeps the whole
# run within CI's 30 minutes. In those builds the test files themselves
# compile at -O0 (tests/CMakeLists.txt), and the sanitizer builds leave out
# what the unit tests do not use (the quality tests, the two binaries); every
# build precompiles the tests' common headers and links with lld when it is
# installed (CMakeLists.txt).
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DLEPTON_BUILD_BENCH=OFF)
configure_and_build() {
  local dir=$1
  shift
  echo "== build $dir $*"
  mkdir -p "$dir"
  cmake -S . -B "$dir" "$@" >"$dir/configure.log" 2>&1 || {
    cat "$dir/configure.log"
    return 1
  }
  cmake --build "$dir" -j"$jobs"
}

configure_and_build build -DCMAKE_BUILD_TYPE=Release
echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j"$jobs" -LE container
# The container test alone (docker/test-image.sh, short form: the image takes
# the binaries built above; it runs containers, so nothing runs beside it).
echo "== container image test (podman)"
ctest --test-dir build --output-on-failure -L container

configure_and_build build-tsan "${sanitizer_flags[@]}" -DLEPTON_SANITIZE=thread
echo "== unit tests under ThreadSanitizer"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan -L unit --output-on-failure -j"$jobs"

configure_and_build build-asan "${sanitizer_flags[@]}" \
  -DLEPTON_SANITIZE=address,undefined
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1" \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs"
