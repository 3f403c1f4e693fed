#!/bin/bash
# Latency against offered load: relu-cli bench --rate at fractions of the
# closed-loop maximum, against relu-server on its defaults.
#   bench/latency_vs_load.sh <build-dir>
# Prints a Markdown row per rate: elements, fraction of the maximum, calls/s
# offered and achieved, calls sent over 1 ms late, calls not sent by the
# end, and latency percentiles (us) from when each call was due.
set -euo pipefail
LOG=$(mktemp /tmp/relu-latency-vs-load-XXXXXX.log)
B=$(cd "${1:?usage: $0 <build-dir>}" && pwd)
$B/server/relu-server --grpc-address 127.0.0.1:0 --metrics-address off --http-address off > "$LOG" 2>&1 &
SP=$!
sleep 1
P=$(grep -o "gRPC listening on [0-9.:]*" "$LOG" | awk -F: '{print $NF}')
T=127.0.0.1:$P
for cell in "16 64 1024" "262144 16 64"; do
  set -- $cell; EL=$1; CC=$2; CAP=$3
  $B/client/relu-cli bench --target $T --elements $EL --concurrency $CC --duration 1 >/dev/null
  MAX=$($B/client/relu-cli bench --target $T --elements $EL --concurrency $CC --duration 4 --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["calls_per_s"])')
  echo "elements $EL: closed loop with $CC in flight: $MAX calls/s"
  for f in 0.1 0.5 0.8 0.9 1.0 1.2; do
    R=$(/usr/bin/python3 -c "print(round($MAX*$f,1))")
    $B/client/relu-cli bench --target $T --elements $EL --rate $R --arrivals poisson --concurrency $CAP --duration 4 --json | /usr/bin/python3 -c "
import json,sys; d=json.load(sys.stdin); l=d['latency_us']
print('| $EL | $f | %.0f | %.0f | %d | %d | %.0f | %.0f | %.0f | %.0f |' % (d['offered_per_s'], d['calls_per_s'], d['late'], d['unsent'], l['p50'], l['p90'], l['p99'], l['p999']))"
  done
done
kill $SP
