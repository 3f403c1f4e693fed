#!/usr/bin/env bash
# Builds the relu-serve image with a private Docker daemon and runs it for
# real: host networking on loopback ports, the tutorial's examples through
# relu-cli, a /metrics scrape, the image's HEALTHCHECK, then SIGTERM: the
# server must drain and exit 0.
#
# usage: docker_test.sh SOURCE_DIR STATE_DIR RELU_CLI GOLDEN_JSON
#   STATE_DIR keeps the daemon's data root (the imported base image and the
#   build cache) and the debootstrapped base, so reruns are fast.
# Exit: 0 pass, 1 fail, 77 Docker cannot run here (ctest: skipped).
# Nothing is pulled: the base image is debootstrapped from Debian's mirror and
# imported as localhost/debian:bookworm; the build uses --network host only.
set -euo pipefail

SRC=$(cd "$1" && pwd)
STATE=$2
CLI=$3
GOLDEN=$4
DOCKER=/usr/bin/docker  # Debian's client (BuildKit built in)
BASE_IMAGE=localhost/debian:bookworm
IMAGE=relu-serve:test
SKIP=77

skip() { echo "SKIPPED: $*"; exit "$SKIP"; }
fail() { echo "FAIL: $*"; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

DOCKERD=$(command -v dockerd || true)
[[ -n "$DOCKERD" ]] || skip "no dockerd (apt-get install docker.io)"
[[ -x "$DOCKER" ]] || skip "no $DOCKER (apt-get install docker.io)"
[[ $(id -u) -eq 0 ]] || skip "a private dockerd needs root"

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
# One run at a time per state directory (the daemon's data root).
exec 9>"$STATE/lock"
flock -w 1200 9 || fail "another docker test holds $STATE/lock"

# The socket path must stay short (sun_path), so the run's scratch is in /tmp.
W=$(mktemp -d /tmp/relu-docker.XXXXXX)
export DOCKER_HOST="unix://$W/docker.sock"
CONTAINER="relu-test-$$"
DOCKERD_PID=

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$DOCKERD_PID" ]]; then
    "$DOCKER" rm -f "$CONTAINER" >/dev/null 2>&1
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
  fi
  # Whatever the daemon left mounted under the scratch and the data root.
  for m in $(awk -v w="$W" -v s="$STATE" 'index($2, w) == 1 || index($2, s "/data") == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# Runs a long command in the background and waits for it, so that a signal
# to this script runs the cleanup at once instead of after the command.
in_background() { "$@" & wait $!; }

log "starting dockerd (data root $STATE/data)"
"$DOCKERD" --data-root "$STATE/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
  -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
  --storage-driver=overlay2 >"$STATE/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 150); do
  "$DOCKER" version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || break
  sleep 0.2
done
if ! "$DOCKER" version >/dev/null 2>&1; then
  tail -n 20 "$STATE/dockerd.log"
  skip "dockerd did not start (log above)"
fi

# The base image: debootstrapped once, the tarball kept in STATE.
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [[ ! -s "$STATE/debian-bookworm.tar" ]]; then
    command -v debootstrap >/dev/null || skip "no debootstrap (apt-get install debootstrap)"
    log "debootstrapping a bookworm base"
    in_background timeout 600 debootstrap --variant=minbase bookworm "$W/rootfs" \
      http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$STATE/debootstrap.log"; fail "debootstrap failed"; }
    tar -C "$W/rootfs" --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' \
      --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
      --exclude='./usr/share/locale/*' -cf "$STATE/debian-bookworm.tar.part" .
    mv "$STATE/debian-bookworm.tar.part" "$STATE/debian-bookworm.tar"
    rm -rf "$W/rootfs"
  fi
  "$DOCKER" import - "$BASE_IMAGE" <"$STATE/debian-bookworm.tar" >/dev/null
fi

# 1. The build context is the project alone: copy it into a throwaway image
# and compare its top level with the project's files (tracked or not ignored).
log "checking the build context"
printf 'FROM %s\nCOPY . /context\n' "$BASE_IMAGE" |
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --network host -t relu-context:test -f - "$SRC" >/dev/null
context=$("$DOCKER" run --rm --network none --entrypoint /bin/sh relu-context:test \
  -c 'cd /context && for e in $(ls -A); do [ -d "$e" ] && [ -z "$(ls -A "$e")" ] || echo "$e"; done
      echo "SIZE $(du -sk . | cut -f1)"')
"$DOCKER" rmi relu-context:test >/dev/null
echo "  context (empty directories left out): $(echo "$context" | tr '\n' ' ')"
context_kb=$(echo "$context" | awk '/^SIZE/ {print $2}')
for entry in $(echo "$context" | grep -v '^SIZE'); do
  case "$entry" in
    .git|build*|out|run) fail "the build context holds $entry" ;;
  esac
  if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    [[ -n $(git -C "$SRC" ls-files --cached --others --exclude-standard -- "$entry" | head -n1) ]] \
      || fail "the build context holds $entry, which is not a project file"
  fi
done
(( context_kb < 20000 )) || fail "the build context is ${context_kb} KiB"

# 2. The image.
log "building $IMAGE"
start=$(date +%s)
revision=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
if ! DOCKER_BUILDKIT=1 in_background "$DOCKER" build --network host --progress=plain \
    --build-arg BASE="$BASE_IMAGE" --build-arg REVISION="$revision" \
    -t "$IMAGE" "$SRC" >"$STATE/build.log" 2>&1; then
  tail -n 60 "$STATE/build.log"
  fail "docker build failed (log: $STATE/build.log)"
fi
build_s=$(( $(date +%s) - start ))
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
base_size=$("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE")
size_mb=$(( size / 1000000 ))
log "image built in ${build_s} s: ${size_mb} MB (base $(( base_size / 1000000 )) MB)"
echo "  runtime packages: $("$DOCKER" run --rm --network none --entrypoint /bin/cat "$IMAGE" \
  /usr/local/share/relu-serve/runtime-packages | tr '\n' ' ')"
status=0
(( size <= 150000000 )) || { echo "FAIL: the image is ${size_mb} MB, above 150 MB"; status=1; }

inspect() { "$DOCKER" image inspect -f "$1" "$IMAGE"; }
[[ $(inspect '{{.Config.User}}') == 10001:10001 ]] || fail "image user is $(inspect '{{.Config.User}}')"
[[ $(inspect '{{json .Config.Entrypoint}}') == '["relu-server"]' ]] \
  || fail "entrypoint is $(inspect '{{json .Config.Entrypoint}}')"
for port in 50051/tcp 8000/tcp 9464/tcp; do
  [[ $(inspect '{{json .Config.ExposedPorts}}') == *"\"$port\""* ]] || fail "port $port not exposed"
done
[[ $(inspect '{{json .Config.Healthcheck}}') == *'relu-cli health'* ]] || fail "no relu-cli HEALTHCHECK"
for label in title description version revision base.name; do
  [[ -n $(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}") ]] \
    || fail "no org.opencontainers.image.$label label"
done
# The Deployment's preStop pause runs /bin/sleep in the image.
"$DOCKER" run --rm --network none --entrypoint /bin/sleep "$IMAGE" 0 || fail "no /bin/sleep in the image"

# 3. Run it as the Deployment does: read-only root, no capabilities, no
# privilege escalation; loopback ports through the RELU_* variables (so the
# HEALTHCHECK, which reads RELU_GRPC_ADDRESS, asks the right port).
ports=$(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r GRPC_PORT METRICS_PORT HTTP_PORT <<<"$ports"
TARGET="127.0.0.1:$GRPC_PORT"
container_log() { "$DOCKER" logs "$CONTAINER" 2>&1; }
log "running $IMAGE on $TARGET (metrics 127.0.0.1:$METRICS_PORT)"
"$DOCKER" run -d --name "$CONTAINER" --network host --read-only --cap-drop ALL \
  --security-opt no-new-privileges \
  -e RELU_GRPC_ADDRESS="$TARGET" -e RELU_METRICS_ADDRESS="127.0.0.1:$METRICS_PORT" \
  -e RELU_HTTP_ADDRESS="127.0.0.1:$HTTP_PORT" \
  -e RELU_DRAIN_TIMEOUT_S=10 \
  --health-interval 1s --health-start-period 1s --health-timeout 5s \
  "$IMAGE" --log-level=info >/dev/null
for _ in $(seq 300); do
  [[ $(container_log) == *"gRPC listening on $TARGET"* ]] && break
  [[ $("$DOCKER" inspect -f '{{.State.Running}}' "$CONTAINER") == true ]] || break
  sleep 0.2
done
[[ $(container_log) == *"gRPC listening on $TARGET"* ]] \
  || { container_log; fail "relu-server in the container did not start"; }

"$CLI" health --target "$TARGET" || { echo "FAIL: relu-cli health"; status=1; }
/usr/bin/python3 "$(dirname "$0")/cli_examples.py" "$CLI" "$TARGET" "$GOLDEN" \
  || { echo "FAIL: the tutorial's examples"; status=1; }

# The README's HTTP quick start, on the container's HTTP port.
answer=$(curl -s "127.0.0.1:$HTTP_PORT/v2/models/relu/infer" -d '{"inputs":[{"name":"input","shape":[4],"datatype":"FP32","data":[-5,-1.5,2.5,3]}],"parameters":{"threshold":2.5}}' || true)
[[ "$answer" == *'"data":[-0.0,-0.0,0.0,3.0]'* ]] \
  || { echo "FAIL: HTTP infer answered: $answer"; status=1; }

metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" || true)
if [[ -z "$metrics" ]]; then
  echo "FAIL: no /metrics on 127.0.0.1:$METRICS_PORT"; status=1
else
  echo "$metrics" | awk '/^relu_requests_total/ && $NF != 0 {print "  " $0}'
  [[ $(echo "$metrics" | awk '/^relu_requests_total/ {s += $NF} END {print s + 0}') != 0 ]] \
    || { echo "FAIL: /metrics counts no request"; status=1; }
fi

health=
for _ in $(seq 60); do
  health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$CONTAINER")
  [[ "$health" == healthy ]] && break
  sleep 0.5
done
[[ "$health" == healthy ]] || { echo "FAIL: HEALTHCHECK status $health"; status=1; }
log "HEALTHCHECK: $health"

# 4. SIGTERM: drain and exit 0.
log "SIGTERM"
"$DOCKER" kill -s TERM "$CONTAINER" >/dev/null
code=$("$DOCKER" wait "$CONTAINER")
logs=$("$DOCKER" logs "$CONTAINER" 2>&1)
echo "$logs" | tail -n 4 | sed 's/^/  server: /'
[[ "$code" == 0 ]] || { echo "FAIL: exit code $code after SIGTERM"; status=1; }
[[ "$logs" == *draining* ]] || { echo "FAIL: no drain logged"; status=1; }
[[ "$logs" == *'drained; exiting'* ]] || { echo "FAIL: the drain did not complete"; status=1; }

log "done: image ${size_mb} MB, built in ${build_s} s, status $status"
exit "$status"
