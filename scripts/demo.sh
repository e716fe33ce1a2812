#!/usr/bin/env bash
# The main job: builds Lepton, starts lepton_server, and with the sample client
# trains a softmax model online on Fashion-MNIST's 60,000 training images over
# gRPC (one StreamUpdate call, batches of 256), then evaluates it on the 10,000
# test images and prints the accuracy, examples/s (of train and of eval) and
# the model version. It prints the address of the dashboard, where the
# training can be watched live, and writes a plot of the training run
# (build/demo/train.svg, lepton_client train --plot).
# Installs missing Debian packages first.
#
#   scripts/demo.sh
#
# The server runs on its defaults (0.0.0.0:50051, data in ./lepton-data), so
# that port must be free; it runs in build/demo/, so its data goes to
# build/demo/lepton-data. After the evaluation the server is stopped and
# started again, and the model it recovers gives the same accuracy.
# The build directory is build/ (LEPTON_BUILD_DIR=dir to use another); the CSV
# files go to its data/fashion-mnist/ and are reused by later runs. Whatever
# fails, the server is stopped on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${LEPTON_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target lepton_server lepton_client fashion_mnist_to_csv

server=$build/server/lepton_server
client=$build/client/lepton_client
converter=$build/tools/fashion_mnist_to_csv
data=$build/data/fashion-mnist
model=fashion-mnist
workdir=$build/demo
mkdir -p "$workdir"
server_abs=$(realpath "$server")
start=$EPOCHREALTIME
elapsed() { awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

# A rebuilt converter may write different files: convert again then.
if [[ "$data/train.csv" -nt "$converter" && "$data/test.csv" -nt "$converter" ]]; then
  echo "== data: $data/{train,test}.csv are up to date"
else
  echo "== data: converting Fashion-MNIST to CSV in $data"
  "$converter" "$data"
fi

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT

# Another server on the port would answer the health checks below in place of
# ours (which then fails to bind): refuse to run rather than talk to it.
if "$client" health >/dev/null 2>&1; then
  echo "demo: a server already answers at localhost:50051; stop it first" >&2
  exit 1
fi
# Starts the server on its defaults, in $workdir (so its --data_dir default,
# ./lepton-data, is $workdir/lepton-data), and waits until it is SERVING.
start_server() {
  echo "== server: starting $server (in $workdir)"
  (cd "$workdir" && exec "$server_abs") &
  server_pid=$!
  # Wait until it answers SERVING; give up if it exits or takes 10 s.
  for ((i = 0; ; i++)); do
    if "$client" health >/dev/null 2>&1 && kill -0 "$server_pid" 2>/dev/null; then
      break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "demo: lepton_server exited before serving (are ports 50051 and 9090 free?)" >&2
      exit 1
    fi
    if ((i >= 100)); then
      echo "demo: lepton_server is not SERVING after 10 s" >&2
      "$client" health || true
      exit 1
    fi
    sleep 0.1
  done
  echo "== server: SERVING ($(elapsed))"
}

# SIGTERM: the server finishes calls in flight, writes final checkpoints and
# must exit 0.
stop_server_checked() {
  echo "== server: SIGTERM"
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  if ((status != 0)); then
    echo "demo: lepton_server exited with status $status" >&2
    exit 1
  fi
}

start_server
# The dashboard (docs/dashboard.md) is on the metrics port, the default 9090.
echo "== dashboard: open http://localhost:9090/ to watch the model learn (while the demo runs)"
# A model left by an earlier run is in the data directory: start afresh.
"$client" delete "$model" >/dev/null 2>&1 || true

echo "== create: softmax, D=784, K=10, every other setting its default"
"$client" create "$model" --type=softmax --num_features=784 --num_classes=10 |
  grep -E '^(type|num_features|num_classes|optimizer|learning_rate|minibatch_size|version):'

echo "== train: one pass over $data/train.csv, batches of 256, one StreamUpdate call"
"$client" train "$model" "$data/train.csv" --batch=256 --plot="$workdir/train.svg" |
  tee "$workdir/train.out"
train_rate=$(sed -n 's/^examples_per_second: //p' "$workdir/train.out")
echo "== train: $train_rate examples/s, reading and parsing the CSV file included"
echo "== plot: the run's progressive loss and accuracy, its drift events marked, in $workdir/train.svg (open it in a browser)"

echo "== eval: $data/test.csv through Predict, batches of 256"
"$client" eval "$model" "$data/test.csv" --batch=256

stop_server_checked
echo "== restart: the model comes back from $workdir/lepton-data"
start_server
"$client" info "$model" | grep -E '^(version|examples_seen|checkpointed_versions):'
echo "== eval again: the same predictions as before the restart"
"$client" eval "$model" "$data/test.csv" --batch=256
stop_server_checked
echo "== done: the server exited 0 twice ($(elapsed) after the build)"
