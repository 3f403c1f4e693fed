#!/bin/bash
# relu-server with its request log stuck (a FIFO nobody reads) against one with the log off:
# relu-cli bench, 16 elements x 64 in flight, 5 s, alternating, 3 rounds each.
set -e
B=${1:?usage: stuck_request_log_bench.sh BUILD_DIR}
FIFO=$(mktemp -u /tmp/relu-request-log-fifo.XXXXXX)
mkfifo $FIFO
# Hold a reader open (never reading) so the server's open() succeeds and its writes block once the pipe is full.
python3 -c "import os,time; fd=os.open('$FIFO', os.O_RDONLY|os.O_NONBLOCK); time.sleep(600)" &
HOLDER=$!
sleep 0.5
$B/server/relu-server --grpc-address=127.0.0.1:50961 --metrics-address=127.0.0.1:50962 --request-log=all --request-log-file=$FIFO 2>/dev/null &
STUCK=$!
$B/server/relu-server --grpc-address=127.0.0.1:50963 --metrics-address=off --request-log=off 2>/dev/null &
OFF=$!
sleep 1
for round in 1 2 3; do
  for t in off:50963 stuck:50961; do
    name=${t%%:*}; port=${t##*:}
    printf "%s round %d: " $name $round
    $B/client/relu-cli bench --target 127.0.0.1:$port --concurrency 64 --duration 5 --elements 16 --json
  done
done
curl -s http://127.0.0.1:50962/metrics | grep -E "^relu_request_log_(dropped|lines)_total|^relu_requests_total\{code=\"OK\",method=\"ApplyReLU\"\}"
kill $STUCK $OFF $HOLDER
wait $STUCK $OFF 2>/dev/null || true
rm -f $FIFO
