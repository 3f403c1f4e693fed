#!/bin/bash
# Server CPU per ApplyReLU call by thread, from perf's software events
# (task-clock, context switches, migrations, page faults): the echo floor
# against relu-server, under the same relu-cli load.
#
#   bench/perf_stat_service.sh <build-dir> [elements] [concurrency] [seconds]
#
# Defaults: 16384 float32 elements (64 KiB), 64 in flight, 4 s. Configurations:
# echo, relu (defaults), relu-nobatch (--max-batch-requests 1) and relu-1thread
# (--kernel-threads 1: no TBB workers). Per thread, threads grouped by name.
set -euo pipefail
B=$(cd "${1:?usage: $0 <build-dir> [elements] [concurrency] [seconds]}" && pwd)
ELEMENTS=${2:-16384}
CONCURRENCY=${3:-64}
SECONDS_RUN=${4:-4}
CLI=$B/client/relu-cli
OUT=$(mktemp -d /tmp/relu-perfstat-XXXXXX)
RELU="$B/server/relu-server --grpc-address 127.0.0.1:0 --metrics-address off --http-address off"
declare -A ARGV=(
  [echo]="$B/bench/echo/relu_echo_server --grpc-address 127.0.0.1:0"
  [relu]="$RELU"
  [relu-nobatch]="$RELU --max-batch-requests 1"
  [relu-1thread]="$RELU --kernel-threads 1"
  [relu-noinline]="$RELU --inline-when-idle=false"
  [relu-nosmall]="$RELU --inline-max-elements 0"
)
for name in ${SERVERS:-echo relu relu-nobatch relu-1thread}; do  # one at a time
  log=$OUT/$name.log
  # shellcheck disable=SC2086
  ${ARGV[$name]} >"$log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 200); do
    port=$(grep -o 'gRPC listening on [0-9.]*:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "$name did not start; see $log" >&2; kill "$pid"; exit 1; }
  bench=("$CLI" bench --target "127.0.0.1:$port" --concurrency "$CONCURRENCY"
         --elements "$ELEMENTS" --json)
  "${bench[@]}" --duration 0.5 >/dev/null
  "${bench[@]}" --duration "$SECONDS_RUN" >"$OUT/$name.json" &
  load=$!
  perf stat --per-thread -x, -e task-clock,context-switches,cpu-migrations,page-faults \
    -p "$pid" -o "$OUT/$name.perf" -- sleep "$SECONDS_RUN" 2>/dev/null || true
  wait "$load"
  kill -TERM "$pid"; wait "$pid" || true
  calls=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$OUT/$name.json")
  python3 - "$OUT/$name.perf" "$calls" "$name" "$SECONDS_RUN" <<'PY'
import collections, sys
path, calls, name, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
per = collections.defaultdict(lambda: collections.defaultdict(float))
for line in open(path):
    f = line.strip().split(",")
    if len(f) < 4 or line.startswith("#"):
        continue
    thread, value, event = f[0], f[1], f[3]
    try:
        v = float(value)
    except ValueError:
        continue
    group = thread.rsplit("-", 1)[0]  # name-tid -> name
    per[group][event] += v
tot = collections.defaultdict(float)
for g in per.values():
    for e, v in g.items():
        tot[e] += v
calls_s = calls / secs
print("== %s: %d calls (~%.0f/s); per call: task-clock %.1f us, ctx switches %.2f, "
      "migrations %.3f, page faults %.2f" % (name, calls, calls_s,
      tot["task-clock"] * 1e3 / calls, tot["context-switches"] / calls,
      tot["cpu-migrations"] / calls, tot["page-faults"] / calls))
for g, ev in sorted(per.items(), key=lambda kv: -kv[1]["task-clock"]):
    if ev["task-clock"] * 1e3 / calls < 0.05:
        continue
    print("   %-22s task-clock %6.1f us/call, ctx switches %5.2f/call" %
          (g, ev["task-clock"] * 1e3 / calls, ev["context-switches"] / calls))
PY
done
