#!/usr/bin/env bash
# Runs load_bench against a lepton_server of its own: starts the server on a
# free loopback port, runs load_bench against it, then stops the server with
# SIGTERM and checks that it exits 0. Exits non-zero if any of that fails (a
# failed call makes load_bench exit 1). Timings are printed, never checked.
# Used by scripts/load_bench.sh and by the CTest smoke test (label `load`).
#
#   bench/load_run.sh SERVER_BINARY LOAD_BENCH_BINARY [load_bench flags...]
set -euo pipefail
if (($# < 2)); then
  echo "usage: $0 SERVER_BINARY LOAD_BENCH_BINARY [load_bench flags...]" >&2
  exit 2
fi
server_bin=$1
load_bin=$2
shift 2

log=$(mktemp)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT

# In memory (--data_dir= empty): this measures serving, not the disk;
# bench/durability_bench measures the update log.
"$server_bin" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 --data_dir= \
  2>"$log" &
server_pid=$!

# The server prints "serving on port N" on stderr once it listens.
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*serving on port \([0-9][0-9]*\).*/\1/p' "$log")
  [[ -n "$port" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "load_run: the server exited before serving:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "load_run: the server did not report its port within 10 s" >&2
  exit 1
fi
echo "load_run: lepton_server pid $server_pid on 127.0.0.1:$port"

bench_rc=0
"$load_bin" --target="127.0.0.1:$port" --server_pid="$server_pid" "$@" ||
  bench_rc=$?

# Graceful stop: the server drains calls in flight (at most its 10 s
# --shutdown_grace) and exits 0.
kill -TERM "$server_pid"
server_rc=""
for _ in $(seq 150); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    server_rc=0
    wait "$server_pid" || server_rc=$?
    break
  fi
  sleep 0.1
done
if [[ -z "$server_rc" ]]; then
  echo "load_run: the server did not exit within 15 s of SIGTERM" >&2
  exit 1
fi
server_pid=""
if ((server_rc != 0)); then
  echo "load_run: the server exited with status $server_rc:" >&2
  cat "$log" >&2
fi
echo "load_run: load_bench exit $bench_rc, server exit $server_rc after SIGTERM"
((bench_rc == 0 && server_rc == 0))
