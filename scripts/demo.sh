#!/usr/bin/env bash
# The main job, until the gRPC server lands (issue 3): builds Lepton and trains
# a softmax model online on Fashion-MNIST in-process, then evaluates it on the
# test set. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target fashion_mnist_bench
build/bench/fashion_mnist_bench "$@"
