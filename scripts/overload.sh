#!/usr/bin/env bash
# Overload: offers about ten times the load relu-server can take and checks
# that it keeps its promises. On demand (30 s by default):
#   scripts/overload.sh [--duration S] [--server PATH] [--load PATH]
# The ctest test reliability.overload_short runs it for 5 s.
#
# Steps:
#  1. Start relu-server with small, known queue limits (below).
#  2. Warm up, then record the baseline peak RSS (VmHWM).
#  3. Capacity C: the OK calls/s of a closed loop with ADMITTED calls in
#     flight, the most the server takes at once (ADMITTED = the queue's
#     MAX_QUEUE_REQUESTS + a running batch's MAX_BATCH_REQUESTS).
#  4. Overload: ten times that, 10 x ADMITTED calls always in flight for
#     --duration seconds, each client sending again as soon as it is answered
#     or refused (no backoff: the worst client). On this 2-core machine the
#     client shares the CPU with the server, so the load is ten times the
#     server's concurrency rather than ten times its rate in calls/s (an
#     open loop at 10 x C calls/s cannot be generated here: tried, the
#     client peaked near 1.1 x C); the calls/s offered is reported.
#  5. Afterwards: a closed loop at low concurrency must be all OK.
# Fails unless: every accepted call is answered bit-exactly (relu-load checks
# each against the scalar kernel); the only codes are OK and
# RESOURCE_EXHAUSTED; there are refusals; refusals never wait for the kernel,
# checked by comparisons, not wall-clock bounds: the big calls' refusals'
# median is at most the accepted calls' median, and the probe's refusals'
# p99 at most the accepted calls' p99 (the big calls' tails are both set by
# the ~20 MiB queued on their connections: a CI run had refusals' p99
# 149 ms against 140 ms, with medians 29 ms against 43 ms); peak RSS (VmHWM)
# stays under MEM_BOUND (formula below); the server still runs and serves
# normally afterwards.
set -euo pipefail

DURATION=30
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${RELU_SERVER:-$ROOT/build/server/relu-server}
LOAD=${RELU_LOAD:-$ROOT/build/tests/reliability/relu-load}
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --server) SERVER=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--server PATH] [--load PATH]" >&2; exit 2 ;;
  esac
done

# The server's limits and the offered calls.
MAX_QUEUE_REQUESTS=4
MAX_QUEUE_BYTES=$((1 << 20))
MAX_BATCH_REQUESTS=4
MAX_BATCH_ELEMENTS=$((1 << 18))
MAX_MESSAGE_BYTES=$((4 << 20))
ELEMENTS=65536                       # float32: 256 KiB per request
REQUEST_BYTES=$((ELEMENTS * 4))
ADMITTED=$((MAX_QUEUE_REQUESTS + MAX_BATCH_REQUESTS))
IN_FLIGHT=$((10 * ADMITTED))         # the clients' outstanding calls
KERNEL_THREADS=1

WORK=$(mktemp -d /tmp/relu_overload.XXXXXX)
# shellcheck source=scripts/server_lib.sh
. "$(dirname "$0")/server_lib.sh"
relu_start_server "$SERVER" \
  --max-queue-requests=$MAX_QUEUE_REQUESTS --max-queue-bytes=$MAX_QUEUE_BYTES \
  --max-batch-requests=$MAX_BATCH_REQUESTS --max-batch-elements=$MAX_BATCH_ELEMENTS --max-message-bytes=$MAX_MESSAGE_BYTES \
  --kernel-threads=$KERNEL_THREADS
TARGET=127.0.0.1:$PORT

kib() { awk -v k="$1" '$1 == k":" {print $2}' /proc/$SERVER_PID/status; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
load() {
  "$LOAD" --target="$TARGET" --dtypes=float32 --min-elements=$ELEMENTS \
    --max-elements=$ELEMENTS --variants=4 --channels=8 "$@"
}

# 2. Warm-up at the capacity run's concurrency, then the baseline.
load --duration-s=1 --concurrency=$ADMITTED >"$WORK/warm.json"
BASE_KIB=$(kib VmHWM)

# 3. Capacity: as many calls in flight as the server admits.
load --duration-s=3 --concurrency=$ADMITTED >"$WORK/cap.json"
CAPACITY=$(json "$WORK/cap.json" 'd["ok_per_s"]')

# 4. Overload, with a probe beside it: one caller on its own connection
# sending small (16-element) calls one at a time. The big calls' refusals
# wait behind ~IN_FLIGHT x 256 KiB on their connections before the server
# even reads them; the probe's show what a refusal itself costs a caller.
"$LOAD" --target="$TARGET" --dtypes=float32 --min-elements=16 --max-elements=16 \
  --variants=1 --channels=1 --duration-s="$DURATION" --concurrency=1 \
  --seed=4 >"$WORK/probe.json" &
PROBE_PID=$!
load --duration-s="$DURATION" --concurrency=$IN_FLIGHT --seed=2 >"$WORK/over.json"
wait $PROBE_PID
PEAK_KIB=$(kib VmHWM)
END_KIB=$(kib VmRSS)

# 5. Afterwards.
load --duration-s=2 --concurrency=2 --seed=3 >"$WORK/after.json"
kill -0 $SERVER_PID

# Memory bound, in bytes. What the server may hold at once:
#  - the queue: at most MAX_QUEUE_BYTES of tensor data, one copy each (the
#    response takes over the request's buffer);
#  - the running batch: at most MAX_BATCH_ELEMENTS x 4 bytes, or one request
#    when a bigger one runs alone; plus its responses serialized for sending;
#  - calls on the wire not yet refused or queued: gRPC's received bytes and
#    the parsed message, two copies of each of the IN_FLIGHT requests the
#    clients keep outstanding (the server itself bounds neither connections
#    nor streams: this term is the clients');
#  - 64 MiB for glibc's per-thread malloc arenas keeping freed memory.
BATCH_BYTES=$((MAX_BATCH_ELEMENTS * 4 > REQUEST_BYTES ? MAX_BATCH_ELEMENTS * 4 : REQUEST_BYTES))
BOUND=$((BASE_KIB * 1024 + MAX_QUEUE_BYTES + 2 * BATCH_BYTES + \
         2 * IN_FLIGHT * REQUEST_BYTES + (64 << 20)))

python3 - "$WORK" "$BASE_KIB" "$PEAK_KIB" "$END_KIB" "$BOUND" "$CAPACITY" "$ADMITTED" "$IN_FLIGHT" "$DURATION" <<'PY'
import json, sys
work, base, peak, end, bound, cap, admitted, in_flight, duration = sys.argv[1:]
base, peak, end, bound = int(base), int(peak), int(end), int(bound)
over = json.load(open(work + "/over.json"))
after = json.load(open(work + "/after.json"))
probe = json.load(open(work + "/probe.json"))
codes = over["codes"]
ok = codes.get("OK", {"count": 0, "p50_ms": 0, "p99_ms": 0})
re = codes.get("RESOURCE_EXHAUSTED", {"count": 0, "p50_ms": 0, "p99_ms": 0, "max_ms": 0})
sent = over["calls"]
print(f"capacity: {float(cap):.1f} OK calls/s of 256 KiB float32 with {admitted} in flight "
      f"(what the server admits at once)")
print(f"overload: {in_flight} in flight for {duration} s -> {sent} calls "
      f"({sent / over['seconds']:.1f}/s offered, {sent / over['seconds'] / float(cap):.1f} x capacity)")
print(f"accepted: {ok['count']} OK ({over['ok_per_s']:.1f}/s), p50 {ok['p50_ms']:.2f} ms, "
      f"p99 {ok['p99_ms']:.2f} ms; mismatches {over['mismatches']}")
print(f"refused: {re['count']} RESOURCE_EXHAUSTED, p50 {re['p50_ms']:.2f} ms, "
      f"p99 {re['p99_ms']:.2f} ms, max {re['max_ms']:.2f} ms")
pc = probe["codes"]
pok = pc.get("OK", {"count": 0, "p50_ms": 0, "p99_ms": 0})
pre = pc.get("RESOURCE_EXHAUSTED", {"count": 0, "p50_ms": 0, "p99_ms": 0, "max_ms": 0})
print(f"probe (16 elements, own connection): {pok['count']} OK p50 {pok['p50_ms']:.2f} ms "
      f"p99 {pok['p99_ms']:.2f} ms; {pre['count']} RESOURCE_EXHAUSTED p50 {pre['p50_ms']:.2f} ms "
      f"p99 {pre['p99_ms']:.2f} ms max {pre['max_ms']:.2f} ms; mismatches {probe['mismatches']}")
print(f"memory: baseline VmHWM {base/1024:.1f} MiB, peak VmHWM {peak/1024:.1f} MiB, "
      f"VmRSS after {end/1024:.1f} MiB, bound {bound/1048576:.1f} MiB")
print(f"after: {json.dumps(after['codes'])}")
failures = []
if over["mismatches"] or after["mismatches"] or probe["mismatches"]:
    failures.append("wrong answers")
other = (set(codes) | set(pc)) - {"OK", "RESOURCE_EXHAUSTED"}
if other:
    failures.append(f"unexpected codes {sorted(other)}")
if re["count"] == 0:
    failures.append("no refusals: the load did not overload the server")
if ok["count"] == 0:
    failures.append("nothing accepted under overload")
else:
    if re["count"] and re["p50_ms"] > ok["p50_ms"]:
        failures.append("refusals' median above the accepted calls' median")
    if pre["count"] and pre["p99_ms"] > ok["p99_ms"]:
        failures.append("the probe's refusals' p99 above the accepted calls' p99")
if peak * 1024 > bound:
    failures.append("peak RSS above the bound")
if set(after["codes"]) != {"OK"}:
    failures.append("not serving normally afterwards")
for f in failures:
    print("FAIL:", f)
print("PASS" if not failures else "FAILED")
sys.exit(1 if failures else 0)
PY
