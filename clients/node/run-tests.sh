#!/usr/bin/env bash
# The Node.js client's tests (CTest: node_client, label node): installs the
# packages package-lock.json pins into $LEPTON_NODE_DIR/node_modules (in the
# build directory, never the source tree; npm ci reaches the npm registry the
# first time and whenever the lock changes), starts $LEPTON_SERVER on a free
# loopback port (and a second one with --auth_tokens), runs `node --test` with
# LEPTON_TARGET set to it (LEPTON_AUTH_TARGET, LEPTON_AUTH_TOKENS: the other
# and its tokens file), and stops the servers, which must exit 0.
#
#   LEPTON_SERVER=build/server/lepton_server LEPTON_NODE_DIR=build/node \
#       clients/node/run-tests.sh
set -euo pipefail
source_dir=$(cd "$(dirname "$0")" && pwd)

fail() {
  echo "node tests: $*" >&2
  exit 1
}

: "${LEPTON_SERVER:?must name the lepton_server binary (CTest sets it)}"
: "${LEPTON_NODE_DIR:?must name a directory for node_modules (CTest sets it)}"
command -v node >/dev/null ||
  fail "node not found: scripts/install-deps.sh installs Debian's nodejs and npm"
command -v npm >/dev/null ||
  fail "npm not found: scripts/install-deps.sh installs Debian's nodejs and npm"
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= 18)) || fail "node $(node --version) is too old: the client needs Node.js 18 or newer"

# node_modules for exactly this lock: installed again when it changes.
mkdir -p "$LEPTON_NODE_DIR"
cp "$source_dir/package.json" "$source_dir/package-lock.json" "$LEPTON_NODE_DIR/"
stamp=$LEPTON_NODE_DIR/node_modules/.lepton-package-lock.json
if ! cmp -s "$source_dir/package-lock.json" "$stamp"; then
  echo "node tests: npm ci in $LEPTON_NODE_DIR ($(node --version), npm $(npm --version))"
  if ! (cd "$LEPTON_NODE_DIR" && npm ci --no-audit --no-fund >npm-ci.log 2>&1); then
    tail -n 20 "$LEPTON_NODE_DIR/npm-ci.log" >&2
    fail "npm ci failed (log: $LEPTON_NODE_DIR/npm-ci.log): it needs the npm registry" \
      "($(npm config get registry)) the first time, to fetch the packages package-lock.json pins"
  fi
  cp "$source_dir/package-lock.json" "$stamp"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lepton-node-test.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  rm -rf "$scratch"
}
trap cleanup EXIT

# start_server NAME [FLAGS...]: lepton_server in $scratch/NAME; sets `port`.
start_server() {
  local name=$1 dir=$scratch/$1
  shift
  mkdir -p "$dir"
  : >"$dir/server.log"
  "$LEPTON_SERVER" --listen=127.0.0.1:0 --metrics_listen= \
    --data_dir="$dir/data" --fsync=never "$@" 2>"$dir/server.log" >/dev/null &
  pids+=($!)
  port=
  for _ in $(seq 600); do
    port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p;T;q' "$dir/server.log")
    [[ -n "$port" ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || {
      cat "$dir/server.log" >&2
      fail "lepton_server ($name) exited before serving"
    }
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  fail "lepton_server ($name) did not report its port within 60 s"
}

start_server plain
target=127.0.0.1:$port
# A second server with access control, for the token test.
printf '%s admin\n%s reader\n' node-test-admin-token-0123456789 \
  node-test-reader-token-0123456789 >"$scratch/tokens.txt"
chmod 600 "$scratch/tokens.txt"
start_server tokens --auth_tokens="$scratch/tokens.txt"
auth_target=127.0.0.1:$port

status=0
(
  cd "$source_dir"
  NODE_PATH=$LEPTON_NODE_DIR/node_modules LEPTON_TARGET=$target \
    LEPTON_AUTH_TARGET=$auth_target LEPTON_AUTH_TOKENS=$scratch/tokens.txt \
    node --test test/example.test.js test/discover.test.js test/tokens.test.js
) || status=$?

for i in "${!pids[@]}"; do
  kill -TERM "${pids[$i]}"
  server_status=0
  wait "${pids[$i]}" || server_status=$?
  if ((server_status != 0)); then
    cat "$scratch"/*/server.log >&2
    fail "a lepton_server exited with status $server_status after SIGTERM"
  fi
done
pids=()
exit "$status"
