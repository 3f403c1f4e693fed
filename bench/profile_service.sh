#!/bin/bash
# Where the time goes per ApplyReLU call: instruction counts (valgrind
# callgrind) of the echo floor and of relu-server under the same load.
#
#   bench/profile_service.sh <build-dir> [elements] [concurrency] [requests]
#
# Defaults: 16384 float32 elements (64 KiB) with 64 calls in flight, 3000
# calls. Each server runs under callgrind uninstrumented; relu-cli warms
# it up uninstrumented, instrumentation is switched on for the measured calls
# only, then dumped.
# Prints instructions per call, the top functions by self cost per call, and
# leaves the callgrind files in $OUT (default a new /tmp directory) for
# callgrind_annotate. Instruction counts are stable on a loaded machine;
# they do not show waiting (futex sleeps, scheduling), which task-clock does.
set -euo pipefail
B=$(cd "${1:?usage: $0 <build-dir> [elements] [concurrency] [requests]}" && pwd)
ELEMENTS=${2:-16384}
CONCURRENCY=${3:-64}
REQUESTS=${4:-3000}
OUT=${OUT:-$(mktemp -d /tmp/relu-profile-XXXXXX)}
CLI=$B/client/relu-cli

declare -A ARGV=(
  [echo]="$B/bench/echo/relu_echo_server --grpc-address 127.0.0.1:0"
  [raw]="$B/bench/echo/relu_echo_server --grpc-address 127.0.0.1:0 --mode raw"
  [raw-trailer]="$B/bench/echo/relu_echo_server --grpc-address 127.0.0.1:0 --mode raw-trailer"
  [relu]="$B/server/relu-server --grpc-address 127.0.0.1:0 --metrics-address off --http-address off"
  [relu-nobatch]="$B/server/relu-server --grpc-address 127.0.0.1:0 --metrics-address off --http-address off --max-batch-requests 1"
  [relu-noinline]="$B/server/relu-server --grpc-address 127.0.0.1:0 --metrics-address off --http-address off --inline-when-idle=false"
)
SERVERS=${SERVERS:-echo relu relu-nobatch}

for name in $SERVERS; do
  log=$OUT/$name.log
  # shellcheck disable=SC2086
  valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT/$name.callgrind" ${ARGV[$name]} >"$log" 2>&1 &
  pid=$!
  target=""
  for _ in $(seq 600); do
    target=$(grep -o 'gRPC listening on [0-9.]*:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$target" ] && break
    sleep 0.1
  done
  [ -n "$target" ] || { echo "$name did not start; see $log" >&2; kill "$pid"; exit 1; }
  target=127.0.0.1:$target
  "$CLI" bench --target "$target" --timeout 120 --concurrency "$CONCURRENCY" \
    --elements "$ELEMENTS" --requests 300 --json >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  "$CLI" bench --target "$target" --timeout 120 --concurrency "$CONCURRENCY" \
    --elements "$ELEMENTS" --requests "$REQUESTS" --json >"$OUT/$name.bench.json"
  callgrind_control -d "$pid" >/dev/null
  kill -TERM "$pid"
  wait "$pid" || true
done

for name in $SERVERS; do
  # The dump made by callgrind_control -d (.1) holds the measured calls only.
  measured=$OUT/$name.callgrind.1
  total=$(grep '^summary:' "$measured" | awk '{print $2}')
  echo "== $name: $(awk -v t="$total" -v n="$REQUESTS" 'BEGIN{printf "%.0f", t/n}') instructions per call ($total over $REQUESTS calls, $measured)"
  callgrind_annotate --threshold=90 "$measured" 2>/dev/null |
    awk -v n="$REQUESTS" '/^[0-9,]+ .*[:(]/ && ++k<=25 {
        ir=$1; gsub(",", "", ir); $1=""; printf "  %9.0f /call %s\n", ir/n, substr($0, 1, 150) }'
done
echo "callgrind files in $OUT"
