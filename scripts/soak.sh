#!/usr/bin/env bash
# Soak: relu-server under mixed traffic for a long time, every answer checked.
# Not part of CI. Usage:
#   scripts/soak.sh [--duration S (600)] [--chunk S (60)] [--server PATH] [--load PATH]
#
# relu-load runs in chunks of --chunk seconds, closed loop, CONCURRENCY calls
# in flight over 4 connections; each call picks one of 64 pre-built requests:
# float32/float64/float16/bfloat16, 1 to 1 Mi elements (log-uniform; scalars
# and empty-free), random valid Keras params (max_value, negative_slope,
# threshold); CANCEL_PERCENT of the calls are cancelled by the client 0-5 ms
# after they start. Each chunk uses a new seed (new tensors). Every OK answer
# is compared bit for bit with the scalar kernel (NaN matches NaN).
# After each chunk the server's VmRSS is recorded.
# Fails on: any wrong answer; any code other than OK, CANCELLED,
# RESOURCE_EXHAUSTED; the server dying; VmRSS at the end more than 25% (plus
# 16 MiB) above its value after the first chunk (growth without bound).
set -euo pipefail

DURATION=600
CHUNK=60
CONCURRENCY=${CONCURRENCY:-16}
CANCEL_PERCENT=${CANCEL_PERCENT:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${RELU_SERVER:-$ROOT/build/server/relu-server}
LOAD=${RELU_LOAD:-$ROOT/build/tests/reliability/relu-load}
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --chunk) CHUNK=$2; shift 2 ;;
    --server) SERVER=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--chunk S] [--server PATH] [--load PATH]" >&2; exit 2 ;;
  esac
done
[ "$CHUNK" -le "$DURATION" ] || CHUNK=$DURATION

WORK=$(mktemp -d /tmp/relu_soak.XXXXXX)
# shellcheck source=scripts/server_lib.sh
. "$(dirname "$0")/server_lib.sh"
relu_start_server "$SERVER"

kib() { awk -v k="$1" '$1 == k":" {print $2}' /proc/$SERVER_PID/status; }
START_KIB=$(kib VmRSS)
echo "soak: ${DURATION}s in ${CHUNK}s chunks, concurrency $CONCURRENCY, cancel ${CANCEL_PERCENT}%, server pid $SERVER_PID, VmRSS at start $((START_KIB / 1024)) MiB"
ELAPSED=0
CHUNKS=0
while [ "$ELAPSED" -lt "$DURATION" ]; do
  CHUNKS=$((CHUNKS + 1))
  "$LOAD" --target=127.0.0.1:$PORT --duration-s="$CHUNK" --concurrency="$CONCURRENCY" \
    --variants=64 --min-elements=1 --max-elements=1048576 --channels=4 \
    --cancel-percent="$CANCEL_PERCENT" --seed=$CHUNKS >"$WORK/chunk$CHUNKS.json"
  kill -0 $SERVER_PID
  echo "$(kib VmRSS) $(kib VmHWM)" >"$WORK/rss$CHUNKS"
  echo "chunk $CHUNKS: $(cat "$WORK/chunk$CHUNKS.json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["calls"], "calls,", {k: v["count"] for k, v in d["codes"].items()}, "mismatches", d["mismatches"])'), VmRSS $(( $(cut -d' ' -f1 "$WORK/rss$CHUNKS") / 1024 )) MiB"
  ELAPSED=$((ELAPSED + CHUNK))
done

python3 - "$WORK" "$CHUNKS" "$START_KIB" <<'PY'
import json, sys
work, chunks, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
calls, mismatches, codes, seconds = 0, 0, {}, 0.0
for i in range(1, chunks + 1):
    d = json.load(open(f"{work}/chunk{i}.json"))
    calls += d["calls"]; mismatches += d["mismatches"]; seconds += d["seconds"]
    for k, v in d["codes"].items():
        codes[k] = codes.get(k, 0) + v["count"]
rss = [tuple(int(x) for x in open(f"{work}/rss{i}").read().split()) for i in range(1, chunks + 1)]
first, last = rss[0][0], rss[-1][0]
print(f"total: {calls} calls in {seconds:.0f} s ({calls / seconds:.0f}/s), codes {codes}, mismatches {mismatches}")
print(f"VmRSS: start {start/1024:.1f} MiB, after chunk 1 {first/1024:.1f} MiB, end {last/1024:.1f} MiB; "
      f"VmHWM {rss[-1][1]/1024:.1f} MiB; per chunk (MiB): {[round(r[0]/1024) for r in rss]}")
failures = []
if mismatches:
    failures.append("wrong answers")
other = set(codes) - {"OK", "CANCELLED", "RESOURCE_EXHAUSTED"}
if other:
    failures.append(f"unexpected codes {sorted(other)}")
if last > first * 1.25 + 16 * 1024:
    failures.append("VmRSS grew more than 25% + 16 MiB after the first chunk")
for f in failures:
    print("FAIL:", f)
print("PASS" if not failures else "FAILED")
sys.exit(1 if failures else 0)
PY
