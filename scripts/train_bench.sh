#!/usr/bin/env bash
# lepton_client train against a Python gRPC client that streams ready arrays,
# on Fashion-MNIST's 60,000 training images, against the same server in the
# same run. Prints examples/s of both and their ratio.
#
#   scripts/train_bench.sh [ROUNDS]        (3 rounds by default)
#   LEPTON_BASELINE_CLIENT=old/lepton_client scripts/train_bench.sh
#                                          adds a column: another build's
#                                          lepton_client, same run
#
# One lepton_server on a free loopback port, with a temporary data directory
# (its defaults otherwise: --fsync=always). Each round creates two softmax
# models (D = 784, K = 10, default spec), then in turn
#   client  lepton_client train MODEL train.csv --batch=256: reading and
#           parsing the CSV file included, as a user runs it
#   python  scripts/train_bench_client.py: the same file loaded into numpy
#           arrays and built into the same requests of 256 examples before
#           its clock starts; then one StreamUpdate call
# and deletes them. The order of the two alternates from round to round. The
# last line has the median of each column, and client/python of the medians
# (the goal: at least 1).
#
# The Python stubs are generated into a temporary directory with protoc and
# Debian's grpc_python_plugin; python3-grpcio, python3-numpy and
# python3-protobuf are installed when missing. The build directory is build/
# (LEPTON_BUILD_DIR=dir for another; LEPTON_BUILD_JOBS=N, default 2). The
# CSV file is the demo's (scripts/demo.sh), written here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
build=${LEPTON_BUILD_DIR:-build}
python=/usr/bin/python3 # Debian's, where its python3-* packages are

scripts/install-deps.sh >/dev/null
missing=()
for p in python3-grpcio python3-numpy python3-protobuf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "train_bench: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${LEPTON_BUILD_JOBS:-2}" \
  --target lepton_server lepton_client fashion_mnist_to_csv >/dev/null

client=$build/client/lepton_client
data=$build/data/fashion-mnist
csv=$data/train.csv
if [[ ! -f "$csv" || "$build/tools/fashion_mnist_to_csv" -nt "$csv" ]]; then
  "$build/tools/fashion_mnist_to_csv" "$data" >/dev/null
fi

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/stubs"
protoc -I proto --python_out="$tmp/stubs" --grpc_python_out="$tmp/stubs" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
  proto/lepton/v1/lepton.proto

"$build/server/lepton_server" --listen=127.0.0.1:0 --metrics_listen= \
  --data_dir="$tmp/data" 2>"$tmp/server.log" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*serving on port \([0-9][0-9]*\).*/\1/p' "$tmp/server.log")
  [[ -n "$port" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "train_bench: the server exited before serving:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "train_bench: the server did not report its port within 10 s" >&2
  exit 1
fi
target=127.0.0.1:$port
echo "train_bench: $csv ($(wc -l <"$csv") examples), batches of 256," \
  "lepton_server on $target, data in a temporary directory (--fsync=always)"

# examples_per_second from key: value lines on stdin.
rate() { sed -n 's/^examples_per_second: //p'; }
create() {
  "$client" --target="$target" create "$1" --type=softmax --num_features=784 \
    --num_classes=10 >/dev/null
}
run_client() {
  create fm-client
  "$client" --target="$target" train fm-client "$csv" --batch=256 \
    --progress=0 >"$tmp/client.out"
  "$client" --target="$target" delete fm-client >/dev/null
  rate <"$tmp/client.out"
}
run_baseline() {
  create fm-baseline
  "$LEPTON_BASELINE_CLIENT" --target="$target" train fm-baseline "$csv" \
    --batch=256 --progress=0 >"$tmp/baseline.out"
  "$client" --target="$target" delete fm-baseline >/dev/null
  rate <"$tmp/baseline.out"
}
run_python() {
  create fm-python
  "$python" scripts/train_bench_client.py --stubs="$tmp/stubs" \
    --target="$target" --model=fm-python --batch=256 "$csv" >"$tmp/python.out"
  "$client" --target="$target" delete fm-python >/dev/null
  rate <"$tmp/python.out"
}

baseline=${LEPTON_BASELINE_CLIENT:-}
header=(round "client examples/s" "python examples/s" client/python)
if [[ -n "$baseline" ]]; then header+=("baseline examples/s"); fi
row() { printf '%-6s %18s %18s %14s %20s\n' "$1" "$2" "$3" "$4" "${5:-}"; }
row "${header[@]}"
ratio() { awk -v c="$1" -v p="$2" 'BEGIN { printf "%.2f", c / p }'; }
client_rates=()
python_rates=()
baseline_rates=()
for ((r = 1; r <= rounds; r++)); do
  b=""
  if ((r % 2 == 1)); then
    c=$(run_client)
    p=$(run_python)
    if [[ -n "$baseline" ]]; then b=$(run_baseline); fi
  else
    if [[ -n "$baseline" ]]; then b=$(run_baseline); fi
    p=$(run_python)
    c=$(run_client)
  fi
  client_rates+=("$c")
  python_rates+=("$p")
  if [[ -n "$b" ]]; then baseline_rates+=("$b"); fi
  row "$r" "$c" "$p" "$(ratio "$c" "$p")" "$b"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
  print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
c=$(median "${client_rates[@]}")
p=$(median "${python_rates[@]}")
b=""
if ((${#baseline_rates[@]} > 0)); then b=$(median "${baseline_rates[@]}"); fi
row median "$c" "$p" "$(ratio "$c" "$p")" "$b"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
if ((status != 0)); then
  echo "train_bench: lepton_server exited with status $status" >&2
  exit 1
fi
