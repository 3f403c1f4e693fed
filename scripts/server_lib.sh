# Sourced by scripts/overload.sh and scripts/soak.sh: runs relu-server on a
# free loopback port in the background for the script's lifetime.
#
#   WORK=$(mktemp -d ...)            # removed on exit
#   relu_start_server "$SERVER" [flags...]
#
# Sets SERVER_PID and PORT (the server's log is $WORK/server.log); exits 1
# with the log if the server does not start listening within a minute.

SERVER_PID=
relu_cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap relu_cleanup EXIT

relu_start_server() {
  local binary=$1
  shift
  "$binary" --grpc-address=127.0.0.1:0 --metrics-address=off --http-address=off --log-level=info \
    "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 600); do
    PORT=$(sed -n 's/.*gRPC listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$WORK/server.log" | head -1)
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
    sleep 0.1
  done
  echo "server did not start"
  cat "$WORK/server.log"
  exit 1
}
