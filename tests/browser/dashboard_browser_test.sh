#!/usr/bin/env bash
# The dashboard in a real browser (docs/dashboard.md): starts lepton_server on
# free loopback ports, trains a logistic model through a concept flip with
# lepton_client (in chunks, so that the dashboard samples each), checks over
# the JSON API that the drift was flagged, then opens the page in Debian's
# headless Chromium and checks, in the DOM its script built, the model's row,
# its version and a drift marker on the charts. Then, on a second server with
# access control, the API refuses no token (401) and takes a reader's, and the
# page asks for one. Keeps OUT_DIR/dashboard.png (the screenshot) and
# OUT_DIR/dashboard-dom.html.
#
#   tests/browser/dashboard_browser_test.sh SERVER CLIENT OUT_DIR
set -euo pipefail
server=$1
client=$2
out=$3
mkdir -p "$out"
chromium=$(command -v chromium || true)
if [[ -z "$chromium" ]]; then
  echo "FAIL: chromium is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lepton-browser-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Starts a server with the given flags; sets grpc_port and http_port.
start_server() {
  local log=$work/server-$#-$RANDOM.log
  "$server" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 "$@" 2>"$log" &
  pids+=($!)
  for ((i = 0; i < 200; i++)); do
    if grep -q 'event=serving' "$log"; then break; fi
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; fail "the server exited"; }
    sleep 0.05
  done
  grpc_port=$(sed -n 's/.*event=serving.* port=\([0-9]*\).*/\1/p' "$log")
  http_port=$(sed -n 's/.*metrics_port=\([0-9]*\).*/\1/p' "$log")
  [[ -n "$grpc_port" && -n "$http_port" ]] || { cat "$log" >&2; fail "no ports in the serving line"; }
}

# n examples "label,x0,x1,x2,x3" of y = 1 if x0 + x1 > 0 (the opposite with
# flip=1), x uniform in [-1, 1], from a seed.
examples() {
  awk -v n="$1" -v seed="$2" -v flip="$3" 'BEGIN {
    srand(seed)
    for (i = 0; i < n; i++) {
      x0 = 2 * rand() - 1; x1 = 2 * rand() - 1; x2 = 2 * rand() - 1; x3 = 2 * rand() - 1
      y = (x0 + x1 > 0) ? 1 : 0
      if (flip) y = 1 - y
      printf "%d,%.4f,%.4f,%.4f,%.4f\n", y, x0, x1, x2, x3
    }
  }'
}

start_server --data_dir="$work/data"
c() { "$client" --target="127.0.0.1:$grpc_port" "$@"; }
c create flip --type=logistic --num_features=4 --drift_detector=page_hinkley \
  --drift_policy=boost >/dev/null
# Ten chunks of 400 examples, the concept flipped from the sixth; a pause
# longer than the dashboard's sample interval (0.5 s) after each.
for ((chunk = 0; chunk < 10; chunk++)); do
  examples 400 $((chunk + 1)) $((chunk >= 5 ? 1 : 0)) >"$work/chunk.csv"
  c train flip "$work/chunk.csv" --batch=50 --holdout_fraction=0.1 --progress=0 >/dev/null
  sleep 0.6
done
version=$(c info flip | sed -n 's/^version: //p')
drifts=$(c info flip | sed -n 's/^drifts: //p')
echo "model flip: version $version, drifts $drifts"
((drifts >= 1)) || fail "the concept flip was not flagged as a drift"
api=$(curl -sf "http://127.0.0.1:$http_port/api/models/flip") || fail "GET /api/models/flip"
grep -q '"kind":"DRIFT"' <<<"$api" || fail "no DRIFT event in /api/models/flip: $api"

url="http://127.0.0.1:$http_port/#model=flip"
browse() {
  # The page fetches the API, then draws: give its script the time (virtual
  # time, waiting for the fetches) before the DOM is taken.
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --hide-scrollbars --user-data-dir="$work/chromium" \
    --virtual-time-budget=4000 "$@" 2>>"$work/chromium.log"
}
browse --dump-dom "$url" >"$out/dashboard-dom.html" || { cat "$work/chromium.log" >&2; fail "chromium --dump-dom"; }
dom=$out/dashboard-dom.html
grep -q 'data-loaded="true"' "$dom" || fail "the page's script did not load the API (see $dom)"
grep -q '<tr class="model selected" data-model="flip">' "$dom" || fail "no row for model flip (see $dom)"
grep -q "<td class=\"num version\">$version</td>" "$dom" || fail "version $version not on the page (see $dom)"
grep -q 'class="marker marker-DRIFT" data-kind="DRIFT"' "$dom" || fail "no drift marker on the charts (see $dom)"
grep -q 'data-series="progressive loss' "$dom" || fail "no loss series (see $dom)"
grep -q '<tr class="event event-DRIFT" data-kind="DRIFT">' "$dom" || fail "no drift in the event list (see $dom)"
browse --screenshot="$out/dashboard.png" --window-size=1280,1100 "$url" >/dev/null ||
  { cat "$work/chromium.log" >&2; fail "chromium --screenshot"; }
[[ -s "$out/dashboard.png" ]] || fail "no screenshot"
echo "page: model flip, version $version and a drift marker; screenshot $out/dashboard.png"

# Access control: the API takes the gRPC tokens (reader role).
printf 'reader-token-0123456789 reader\n' >"$work/tokens.txt"
start_server --data_dir="$work/data-auth" --auth_tokens="$work/tokens.txt"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/api/models")
[[ "$code" == 401 ]] || fail "GET /api/models without a token: $code, not 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer reader-token-0123456789' \
  "http://127.0.0.1:$http_port/api/models")
[[ "$code" == 200 ]] || fail "GET /api/models with a reader's token: $code, not 200"
browse --dump-dom "http://127.0.0.1:$http_port/" >"$work/auth-dom.html" || fail "chromium --dump-dom (auth)"
grep -q '<form id="login" class="">' "$work/auth-dom.html" || fail "the page does not ask for a token"
echo "access control: 401 without a token, 200 with a reader's, the page asks for one"
echo "1 passed, 0 failed"
