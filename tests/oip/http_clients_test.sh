#!/usr/bin/env bash
# Clients we did not write against the real relu-server's HTTP front door:
# the curl binary (the README's quick-start line, and a binary-data call) and
# Node's built-in fetch (http_fetch_test.js).
#
# usage: http_clients_test.sh SERVER_BINARY SOURCE_DIR
# Exit codes: 0 passed, 1 failed, 77 skipped (no curl or no node).
set -euo pipefail

server=$1 src=$2
for tool in curl node python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIPPED: $tool is needed"
    exit 77
  fi
done

work=$(mktemp -d /tmp/relu-http-clients-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$server" --grpc-address=127.0.0.1:0 --metrics-address=off \
  --http-address=127.0.0.1:0 --http-timeout-s=1 >"$work/server.log" 2>&1 &
pid=$!
port=
for _ in $(seq 600); do
  port=$(sed -n 's/.*HTTP listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$work/server.log" | head -1)
  [ -n "$port" ] && grep -q "gRPC listening" "$work/server.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start"; cat "$work/server.log"; exit 1; }

fail() { echo "FAIL: $*"; exit 1; }

# The README's line, with the port of this server.
got=$(curl -s "localhost:$port/v2/models/relu/infer" -d '{"inputs":[{"name":"input","shape":[4],"datatype":"FP32","data":[-5,-1.5,2.5,3]}],"parameters":{"threshold":2.5}}')
python3 - "$got" <<'PY' || fail "curl quick start: $got"
import json, math, sys
answer = json.loads(sys.argv[1])
data = answer["outputs"][0]["data"]
assert data == [-0.0, -0.0, 0.0, 3.0], data
assert [math.copysign(1, v) for v in data] == [-1, -1, 1, 1], data
PY
echo "ok: curl quick start answers $got"

# curl: an error is JSON with the HTTP status.
code=$(curl -s -o "$work/err.json" -w '%{http_code}' "localhost:$port/v2/models/relu/infer" -d '{"inputs":[')
[ "$code" = 400 ] || fail "curl malformed JSON: HTTP $code"
grep -q '"error":"request body is not valid JSON' "$work/err.json" || fail "curl error body: $(cat "$work/err.json")"
echo "ok: curl malformed JSON is 400 $(cat "$work/err.json")"

# curl: binary data in and out, FP64, bit for bit (Python's struct packs it).
python3 - "$work" <<'PY'
import json, struct, sys
values = [-2.5, -0.0, 0.1, 1e308, float("inf")]
header = json.dumps({"inputs": [{"name": "input", "shape": [5], "datatype": "FP64",
                                 "parameters": {"binary_data_size": 40}}],
                     "parameters": {"binary_data_output": True}}).encode()
open(sys.argv[1] + "/body.bin", "wb").write(header + struct.pack("<5d", *values))
open(sys.argv[1] + "/header_length", "w").write(str(len(header)))
PY
curl -s -D "$work/headers" -o "$work/answer.bin" "localhost:$port/v2/models/relu/infer" \
  -H "Inference-Header-Content-Length: $(cat "$work/header_length")" \
  -H 'Content-Type: application/octet-stream' --data-binary "@$work/body.bin"
python3 - "$work" <<'PY' || fail "curl binary data"
import json, math, re, struct, sys
headers = open(sys.argv[1] + "/headers").read()
length = int(re.search(r"(?i)inference-header-content-length: (\d+)", headers).group(1))
body = open(sys.argv[1] + "/answer.bin", "rb").read()
meta = json.loads(body[:length])
assert meta["outputs"][0]["parameters"]["binary_data_size"] == 40, meta
out = struct.unpack("<5d", body[length:])
assert out[:4] == (0.0, -0.0, 0.1, 1e308) and math.copysign(1, out[1]) == -1, out
assert out[4] == float("inf"), out
PY
echo "ok: curl binary data FP64 bit for bit"

RELU_HTTP_PORT=$port node "$src/tests/oip/http_fetch_test.js" || fail "node fetch"
