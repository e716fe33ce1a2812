#!/usr/bin/env bash
# Installs the Debian bookworm packages Lepton needs to build, test and run.
# Idempotent: it runs `apt-get update` and `apt-get install` only when a package
# is missing. Used by the README's commands, by .ci/run and by docker/Dockerfile.
#
#   scripts/install-deps.sh            build + test dependencies (default),
#                                      Node.js and npm included
#   scripts/install-deps.sh --build    build dependencies only (the image's
#                                      build stage, docker/Dockerfile)
#   scripts/install-deps.sh --runtime  only the shared libraries the server needs
set -euo pipefail

build_packages=(
  ca-certificates g++ cmake make pkg-config lld
  libabsl-dev libeigen3-dev zlib1g-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libcivetweb-dev prometheus-cpp-dev curl
  redis-server libhiredis-dev
  dataset-fashion-mnist
)
# The Python package (clients/python) runs on Debian's python3 with grpcio,
# protobuf and numpy; its tests add pytest and scikit-learn (with SciPy), and
# pandas for scikit-learn's checks of pandas input. Chromium runs the
# dashboard's browser test headless (tests/browser/).
test_packages=(
  python3-grpcio python3-protobuf python3-numpy
  python3-pytest python3-scipy python3-sklearn python3-pandas
  chromium
)
# clang: the thread-safety analysis (preset thread-safety) and the fuzz
# targets, whose libFuzzer and sanitizer runtimes are libclang-rt-14-dev's
# (preset fuzz, docs/fuzzing.md).
clang_packages=(clang libclang-rt-14-dev)
runtime_packages=(libgrpc++1.51 libprotobuf32 libabsl20220623 zlib1g libxxhash0
  libcivetweb1 libprometheus-cpp-core1.0 libhiredis0.14)

packages=("${build_packages[@]}" "${test_packages[@]}" "${clang_packages[@]}")
if [[ "${1:-}" == "--build" ]]; then packages=("${build_packages[@]}"); fi
if [[ "${1:-}" == "--runtime" ]]; then packages=("${runtime_packages[@]}"); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The Node.js client's tests (clients/node) need node >= 18 and npm: Debian's
# nodejs (18) and npm, unless a node and an npm are on PATH already (checked
# by command, not package: NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package).
present="${#packages[@]} packages"
if [[ -z "${1:-}" ]]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  present+=", node and npm"
fi
if ((${#missing[@]} == 0)); then
  echo "install-deps: all $present present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
