#!/usr/bin/env bash
# The container test: builds docker/Dockerfile with podman and checks the
# image as a deployment uses it. Two forms, the same checks:
#   short (default; CTest container_image, label `container`, run by CI):
#          the image takes the binaries the CMake build compiled on this host
#          (Debian bookworm, as the image), LEPTON_SERVER and LEPTON_CLIENT:
#          `--target runtime-prebuilt` from a build context of its own (the
#          Dockerfile, scripts/install-deps.sh, prebuilt/), nothing compiles;
#   --full (manual): the image as users build it, from the repository root,
#          compiling the server inside (the build stage): about 15 minutes on
#          a new machine.
# The checks:
#   1. scripts/container-setup.sh (podman, its containers.conf, the base image);
#   2. podman build; the runtime image holds no compiler and no headers, every
#      library its binaries load is there (ldd), in the short form they are
#      the host's, byte for byte, and its size (printed) is at most
#      LEPTON_IMAGE_MAX_BYTES (150 MB);
#   3. runs it as built (its ENTRYPOINT, port 50051) in a network namespace
#      of its own until its own HEALTHCHECK passes; then on the host network
#      on a free loopback port with a new named volume at /var/lib/lepton,
#      waits for the same health check on that port, and checks that the
#      server (PID 1) runs as the image's user, uid 10001, not root;
#   4. with the host's lepton_client: creates a model, trains it a little,
#      predicts;
#   5. stops it as `docker stop` does (SIGTERM, 15 s before SIGKILL): exit
#      code 0, and the final checkpoint of the model's version is in the volume
#      (it was not before the stop);
#   6. starts a second container on the same volume: it serves the same
#      version, which predicts the same, and stops with exit code 0;
#   7. a cluster node: starts a redis-server of its own on the host (a free
#      loopback port, append-only file in a temporary --dir), runs the image
#      on the host network with --cluster=redis://127.0.0.1:PORT/ctest
#      --data_dir= and a free metrics port, waits for the health check (the
#      node has caught up with the log), checks /metrics, creates and trains
#      a model with the host's lepton_client, predicts, checks that Redis
#      holds the log (the catalog stream ctest:catalog, one entry; the
#      model's stream ctest:model:m:ID, one entry per update) and that the
#      node wrote no files; stops it (SIGTERM, exit code 0); a second node on
#      the same Redis rebuilds the model from the log alone: the same version,
#      the same prediction, and exit code 0 on SIGTERM.
# Removes the containers and the volume it made and stops its redis-server,
# whatever happens; keeps the image (its layers are the next run's build
# cache).
#
#   docker/test-image.sh build/server/lepton_server build/client/lepton_client
#   docker/test-image.sh --full build/server/lepton_server build/client/lepton_client
# (--full does not put LEPTON_SERVER in the image; its lepton_client runs the
# checks from the host in both forms.)
#
# Environment: LEPTON_IMAGE (the tag to build, default localhost/lepton:test),
# LEPTON_IMAGE_MAX_BYTES (default 150000000). Needs root (rootful podman);
# exits 77 (CTest: skipped) when not root. Also needs the host's
# redis-server, redis-cli and curl (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "test-image: FAIL: $*" >&2
  exit 1
}
step() { echo "== test-image: $* ($(elapsed))"; }
start=$SECONDS
elapsed() { echo "$((SECONDS - start)) s"; }

full=0
if [[ ${1-} == --full ]]; then
  full=1
  shift
fi
(($# == 2)) || {
  echo "usage: $0 [--full] PATH/TO/lepton_server PATH/TO/lepton_client" >&2
  exit 2
}
server=$(realpath "$1")
client=$(realpath "$2")
[[ -x $server ]] || fail "$1 is not an executable lepton_server"
[[ -x $client ]] || fail "$2 is not an executable lepton_client"
if [[ $(id -u) -ne 0 ]]; then
  echo "test-image: SKIPPED: needs root (rootful podman)" >&2
  exit 77
fi
image=${LEPTON_IMAGE:-localhost/lepton:test}
max_bytes=${LEPTON_IMAGE_MAX_BYTES:-150000000}
for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null ||
    fail "no $tool on this host (scripts/install-deps.sh installs it)"
done

step "setup: scripts/container-setup.sh"
export LEPTON_CONTAINERS_CONF=${LEPTON_CONTAINERS_CONF:-/etc/lepton-podman/containers.conf}
scripts/container-setup.sh
export CONTAINERS_CONF=$LEPTON_CONTAINERS_CONF

# Everything this run creates is named after it, and removed on exit.
run_id=lepton-test-$$
volume=$run_id-data
containers=()
redis_pid=
work=$(mktemp -d)
cleanup() {
  local c
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  # The cluster's redis-server (step 7), after its clients, before its --dir.
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --format docker: the OCI format has no HEALTHCHECK, and podman drops it.
build_start=$SECONDS
if ((full)); then
  step "build (full): podman build -f docker/Dockerfile -t $image ."
  # --jobs=2: the runtime stage installs its libraries while the build stage
  # compiles.
  podman build --network=host --format docker --jobs=2 \
    -f docker/Dockerfile -t "$image" . \
    >"$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log" >&2
    fail "podman build failed"
  }
else
  # The runtime stage reads nothing else: a context of these files alone.
  context=$work/context
  mkdir -p "$context/docker" "$context/scripts"
  cp docker/Dockerfile "$context/docker/"
  cp scripts/install-deps.sh "$context/scripts/"
  install -D -m 0755 "$server" "$context/prebuilt/lepton_server"
  install -D -m 0755 "$client" "$context/prebuilt/lepton_client"
  step "build (short): podman build --target runtime-prebuilt -t $image, the host's binaries"
  podman build --network=host --format docker --target runtime-prebuilt \
    -f "$context/docker/Dockerfile" -t "$image" "$context" \
    >"$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log" >&2
    fail "podman build failed"
  }
  # The build stage must have been skipped (it would compile), and the redis
  # stage (nothing of this image).
  ! grep -qE 'AS (build|redis)$' "$work/build.log" ||
    fail "podman build ran another stage: $(grep -E 'AS (build|redis)$' "$work/build.log")"
fi
step "build: $((SECONDS - build_start)) s, $(grep -c 'Using cache' "$work/build.log") steps from the layer cache"

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "test-image: image $image: $size bytes ($((size / 1000000)) MB)"
((size <= max_bytes)) || fail "the image is $size bytes, over $max_bytes"
# The image's own health check must have survived the build. (Outputs are
# captured before grep -q reads them: with pipefail, a writer that grep's early
# exit cuts off with SIGPIPE would fail the check.)
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image")
grep -q 'lepton_client.*health' <<<"$healthcheck" ||
  fail "the image has no HEALTHCHECK running lepton_client health: $healthcheck"
# The runtime stage: shared libraries only, no toolchain, no headers.
# (podman's stderr to a file: without systemd it complains that it cannot
# schedule the image's health check, harmlessly; see wait_healthy.)
toolchain=$(podman run --rm --network=none --entrypoint /bin/sh "$image" -c \
  'for f in /usr/bin/g++ /usr/bin/gcc /usr/bin/cc /usr/bin/c++ /usr/bin/cmake \
       /usr/bin/protoc /usr/include/grpcpp /usr/include/google/protobuf \
       /usr/include/absl; do [ -e "$f" ] && echo "$f"; done; true' \
  2>"$work/toolchain.err") || {
  cat "$work/toolchain.err" >&2
  fail "cannot run the image"
}
[[ -z $toolchain ]] || fail "the runtime image has build tools or headers: $toolchain"
# Every shared library the binaries load is in the image (a host build with
# other libraries, e.g. a sanitizer's, would fail here rather than at start).
podman run --rm --network=none --entrypoint /bin/sh "$image" -c \
  'ldd /usr/local/bin/lepton_server /usr/local/bin/lepton_client' \
  >"$work/ldd" 2>"$work/ldd.err" || {
  cat "$work/ldd" "$work/ldd.err" >&2
  fail "ldd failed on the image's binaries"
}
! grep -q 'not found' "$work/ldd" ||
  fail "the image lacks libraries its binaries load: $(grep 'not found' "$work/ldd")"
if ((!full)); then
  podman run --rm --network=none --entrypoint /bin/sh "$image" -c \
    'cd /usr/local/bin && sha256sum lepton_server lepton_client' \
    >"$work/sums" 2>"$work/sums.err" || {
    cat "$work/sums.err" >&2
    fail "cannot checksum the image's binaries"
  }
  [[ "$(awk '{ print $1 }' "$work/sums")" == "$(sha256sum "$server" "$client" | awk '{ print $1 }')" ]] ||
    fail "the image's binaries are not the host's: $(cat "$work/sums")"
  echo "test-image: the image runs the host's lepton_server and lepton_client"
fi

podman volume create "$volume" >/dev/null
volume_dir=$(podman volume inspect --format '{{.Mountpoint}}' "$volume")

# A loopback port nobody listens on (the server shares the host's network).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "no free port found"
}

# start NAME: runs the image as a detached container on a free port with the
# volume; sets $port. The image's HEALTHCHECK probes localhost:50051, the
# port of its ENTRYPOINT; on the host network this container listens
# elsewhere (50051 may be another server's), so the same check is given
# this port.
start() {
  local name=$1
  port=$(free_port)
  containers+=("$name")
  podman run -d --name "$name" --network=host \
    -v "$volume:/var/lib/lepton" \
    --health-cmd "lepton_client --target=127.0.0.1:$port --deadline=2s health" \
    --health-interval=10s --health-timeout=3s --health-retries=3 \
    "$image" --listen="127.0.0.1:$port" --metrics_listen=127.0.0.1:0 \
    >/dev/null 2>"$work/run-$name.err" || {
    cat "$work/run-$name.err" >&2
    fail "podman run $name failed"
  }
}

# wait_healthy NAME: runs the container's health check until it passes.
# `podman healthcheck run` runs it on demand: without systemd (here), podman
# cannot schedule it itself, and `podman run` says so on stderr, harmlessly.
wait_healthy() {
  local name=$1 t0=$SECONDS
  while ! podman healthcheck run "$name" >/dev/null 2>&1; do
    if [[ $(podman inspect --format '{{.State.Running}}' "$name") != true ]]; then
      podman logs "$name" >&2 || true
      fail "$name exited before it was healthy"
    fi
    if ((SECONDS - t0 > 60)); then
      podman logs "$name" >&2 || true
      fail "$name not healthy after 60 s"
    fi
    sleep 0.5
  done
  echo "test-image: $name healthy after $((SECONDS - t0)) s"
}

# stop_ok NAME: SIGTERM with 15 s before SIGKILL, as `docker stop -t 15` and
# compose's stop_grace_period; the server must exit 0 by itself.
stop_ok() {
  local name=$1 code
  podman stop -t 15 "$name" >/dev/null 2>"$work/stop-$name.err" || {
    cat "$work/stop-$name.err" >&2
    fail "podman stop $name failed"
  }
  code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  if [[ $code != 0 ]]; then
    podman logs "$name" >&2 || true
    fail "$name exited with code $code after SIGTERM, not 0"
  fi
  podman logs "$name" >"$work/log-$name" 2>&1
  grep -q 'event=stopped exit_status=0' "$work/log-$name" ||
    fail "$name's log has no 'event=stopped exit_status=0': $(cat "$work/log-$name")"
  echo "test-image: $name stopped by SIGTERM, exit code 0"
}

lc() { "$client" --target="127.0.0.1:$port" "$@"; }
field() { awk -v k="$1:" '$1 == k { print $2 }'; }

step "the image as built: its ENTRYPOINT and HEALTHCHECK, port 50051"
# In a network namespace of its own (--network=none), where 50051 is nobody
# else's: the default listen address and the image's own health check.
containers+=("$run_id-0")
podman run -d --name "$run_id-0" --network=none "$image" >/dev/null \
  2>"$work/run-0.err" || {
  cat "$work/run-0.err" >&2
  fail "podman run $run_id-0 (the image's defaults) failed"
}
wait_healthy "$run_id-0"
stop_ok "$run_id-0"

step "first container"
start "$run_id-1"
wait_healthy "$run_id-1"

# PID 1 is the server: its real and effective uids are the image's user.
uids=$(podman exec "$run_id-1" awk '/^Uid:/ { print $2, $3 }' /proc/1/status)
[[ -n $uids ]] || fail "cannot read the uid of the container's PID 1"
[[ $uids == "10001 10001" ]] ||
  fail "the server runs as uid(real, effective) $uids, not 10001 (the image's lepton user)"
echo "test-image: the server runs as uid 10001, not root"

# A logistic model learns y = (x0 + x1 > x2 + x3) from 400 examples, 4
# requests of 100: versions 2 to 5.
awk 'BEGIN { s = 7; for (i = 0; i < 400; i++) { line = ""; a = 0
       for (j = 0; j < 4; j++) { s = (s * 1103515245 + 12345) % 2147483648
         x = s / 2147483648; a += (j < 2 ? x : -x); line = line "," sprintf("%.4f", x) }
       print (a > 0 ? 1 : 0) line } }' >"$work/train.csv"
lc create m --type=logistic --num_features=4 --optimizer=sgd \
  --learning_rate=0.5 >/dev/null || fail "create failed"
lc train m "$work/train.csv" --batch=100 --progress=0 >"$work/train.out" ||
  fail "train failed"
version=$(field version <"$work/train.out")
[[ $version == 5 ]] || fail "after 4 updates the version is '$version', not 5"
lc predict m --dense=0.9,0.8,0.1,0.1 >"$work/predict1" || fail "predict failed"
echo "test-image: trained to version $version; predict: $(tr '\n' ' ' <"$work/predict1")"
# Learned: (0.9, 0.8, 0.1, 0.1) is class 1, its predicted version the newest.
[[ $(sed -n 1p "$work/predict1") == "version: $version" ]] ||
  fail "predict answered with another version: $(cat "$work/predict1")"
[[ $(sed -n 2p "$work/predict1" | cut -f1) == 1 ]] ||
  fail "the model did not learn: $(cat "$work/predict1")"

final_ckpt=$volume_dir/models/m/checkpoint-$(printf '%020d' "$version").ckpt
[[ ! -e $final_ckpt ]] ||
  fail "$final_ckpt exists before the stop: the check below would prove nothing"

step "SIGTERM to the first container"
stop_ok "$run_id-1"
[[ -s $final_ckpt ]] ||
  fail "no final checkpoint of version $version in the volume: $(ls -l "$volume_dir/models/m" 2>&1)"
echo "test-image: final checkpoint in the volume: $(basename "$final_ckpt")"

step "second container on the same volume"
start "$run_id-2"
wait_healthy "$run_id-2"
podman logs "$run_id-2" >"$work/log-2" 2>&1
grep -q 'event=recovery_done .*recovered=1 failed=0' "$work/log-2" ||
  fail "the second container did not recover the model: $(cat "$work/log-2")"
lc info m >"$work/info2" || fail "info failed on the second container"
version2=$(field version <"$work/info2")
[[ $version2 == "$version" ]] ||
  fail "the second container serves version '$version2', not $version"
lc predict m --dense=0.9,0.8,0.1,0.1 >"$work/predict2" ||
  fail "predict failed on the second container"
cmp -s "$work/predict1" "$work/predict2" ||
  fail "the second container predicts '$(cat "$work/predict2")', not '$(cat "$work/predict1")'"
echo "test-image: the second container serves version $version2 and predicts the same"
stop_ok "$run_id-2"

step "a cluster node, its log in a redis-server on the host"
# A Redis of this run's own: a free loopback port, the append-only file in a
# temporary --dir, no RDB snapshots; stopped by cleanup.
redis_port=$(free_port)
mkdir "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
  --appendonly yes --save '' --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
rcli() { redis-cli -p "$redis_port" "$@"; }
t0=$SECONDS
until [[ $(rcli ping 2>/dev/null) == PONG ]]; do
  if ! kill -0 "$redis_pid" 2>/dev/null; then
    cat "$work/redis.log" >&2
    fail "redis-server exited"
  fi
  if ((SECONDS - t0 > 10)); then
    cat "$work/redis.log" >&2
    fail "redis-server does not answer PING after 10 s"
  fi
  sleep 0.2
done
echo "test-image: redis-server on 127.0.0.1:$redis_port"

# start_node NAME: runs the image as a node of cluster `ctest` in that Redis,
# on the host network without a volume, --data_dir= after the ENTRYPOINT's
# --data_dir (the last wins), a free port and a free metrics port; sets $port
# and $metrics_port. The health check is given the port, as in start.
start_node() {
  local name=$1
  port=$(free_port)
  metrics_port=$(free_port)
  while [[ $metrics_port == "$port" ]]; do metrics_port=$(free_port); done
  containers+=("$name")
  podman run -d --name "$name" --network=host \
    --health-cmd "lepton_client --target=127.0.0.1:$port --deadline=2s health" \
    --health-interval=10s --health-timeout=3s --health-retries=3 \
    "$image" --listen="127.0.0.1:$port" \
    --metrics_listen="127.0.0.1:$metrics_port" \
    --cluster="redis://127.0.0.1:$redis_port/ctest" --data_dir= \
    >/dev/null 2>"$work/run-$name.err" || {
    cat "$work/run-$name.err" >&2
    fail "podman run $name failed"
  }
}

start_node "$run_id-c1"
# Healthy: connected to Redis and caught up with the (empty) log.
wait_healthy "$run_id-c1"
curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" \
  >"$work/metrics-c1" 2>&1 ||
  fail "no /metrics on 127.0.0.1:$metrics_port: $(cat "$work/metrics-c1")"
[[ -s $work/metrics-c1 ]] || fail "/metrics on 127.0.0.1:$metrics_port is empty"
echo "test-image: the node serves /metrics on 127.0.0.1:$metrics_port"

lc create m --type=logistic --num_features=4 --optimizer=sgd \
  --learning_rate=0.5 >/dev/null || fail "create failed on the cluster node"
lc train m "$work/train.csv" --batch=100 --progress=0 >"$work/train-c1.out" ||
  fail "train failed on the cluster node"
version_c=$(field version <"$work/train-c1.out")
[[ $version_c == 5 ]] ||
  fail "after 4 updates the cluster node's version is '$version_c', not 5"
lc predict m --dense=0.9,0.8,0.1,0.1 >"$work/predict-c1" ||
  fail "predict failed on the cluster node"
echo "test-image: the node trained to version $version_c; predict: $(tr '\n' ' ' <"$work/predict-c1")"
[[ $(sed -n 1p "$work/predict-c1") == "version: $version_c" ]] ||
  fail "the cluster node predicted with another version: $(cat "$work/predict-c1")"
[[ $(sed -n 2p "$work/predict-c1" | cut -f1) == 1 ]] ||
  fail "the cluster node's model did not learn: $(cat "$work/predict-c1")"

# The log is in Redis: the creation in the catalog stream, the 4 updates in
# the model's own stream; and nothing on the node's disk.
rcli --scan --pattern 'ctest:*' | sort >"$work/redis-keys"
echo "test-image: Redis keys: $(tr '\n' ' ' <"$work/redis-keys")"
catalog_len=$(rcli xlen ctest:catalog)
[[ $catalog_len == 1 ]] ||
  fail "the catalog stream ctest:catalog has '$catalog_len' entries, not 1 (the creation)"
model_stream=$(grep '^ctest:model:m:' "$work/redis-keys" || true)
[[ -n $model_stream && $(wc -l <<<"$model_stream") == 1 ]] ||
  fail "not one stream ctest:model:m:ID in Redis: $(cat "$work/redis-keys")"
model_len=$(rcli xlen "$model_stream")
[[ $model_len == 4 ]] ||
  fail "the model's stream $model_stream has '$model_len' entries, not 4 (the updates)"
echo "test-image: the log in Redis: ctest:catalog $catalog_len entry, $model_stream $model_len entries"
files=$(podman exec "$run_id-c1" find /var/lib/lepton -mindepth 1) ||
  fail "cannot list /var/lib/lepton in the cluster node"
[[ -z $files ]] || fail "the cluster node wrote files with --data_dir=: $files"

step "SIGTERM to the cluster node"
stop_ok "$run_id-c1"

step "a second cluster node on the same Redis rebuilds the model from the log"
start_node "$run_id-c2"
wait_healthy "$run_id-c2"
lc info m >"$work/info-c2" || fail "info failed on the second cluster node"
version_c2=$(field version <"$work/info-c2")
[[ $version_c2 == "$version_c" ]] ||
  fail "the second cluster node serves version '$version_c2', not $version_c"
lc predict m --dense=0.9,0.8,0.1,0.1 >"$work/predict-c2" ||
  fail "predict failed on the second cluster node"
cmp -s "$work/predict-c1" "$work/predict-c2" ||
  fail "the second cluster node predicts '$(cat "$work/predict-c2")', not '$(cat "$work/predict-c1")'"
echo "test-image: the second cluster node serves version $version_c2 and predicts the same"
stop_ok "$run_id-c2"

step "PASS: image $size bytes"
