#!/usr/bin/env bash
# The HTTP library comparison of the README ("The HTTP library"): builds a
# minimal POST echo on civetweb, Boost.Beast and cpp-httplib, and drives each
# with h2load --h1 (Debian's nghttp2-client) on loopback: a 164-byte JSON body
# with 16 and 128 connections, and a 1 MiB body with 8.
#
# usage: bench/http_compare/run.sh   (needs libcivetweb-dev, libboost-dev,
# libcpp-httplib-dev and nghttp2-client; installs nothing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/relu-http-compare-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

g++ -O2 -std=c++17 -o "$work/civet_echo" "$here/civet_echo.cc" -lcivetweb -lpthread
g++ -O2 -std=c++17 -o "$work/beast_echo" "$here/beast_echo.cc" -lpthread
g++ -O2 -std=c++17 -o "$work/httplib_echo" "$here/httplib_echo.cc" -lcpp-httplib -lpthread
python3 -c "
import json
open('$work/small.json', 'w').write(json.dumps({'inputs': [{'name': 'input', 'shape': [16], 'datatype': 'FP32', 'data': [i * 0.5 - 4 for i in range(16)]}]}))
open('$work/big.bin', 'wb').write(b'x' * (1 << 20))"
for s in civet_echo httplib_echo beast_echo; do "$work/$s" & pids+=($!); done
sleep 1
for entry in civetweb:18081 cpp-httplib:18082 beast:18083; do
  name=${entry%%:*} port=${entry##*:}
  for run in "-n 40000 -c 16 -d $work/small.json" "-n 40000 -c 128 -d $work/small.json" \
             "-n 1000 -c 8 -d $work/big.bin"; do
    echo "== $name: h2load --h1 $run"
    # shellcheck disable=SC2086
    timeout 120 h2load --h1 $run "http://127.0.0.1:$port/echo" | grep -E "finished in|requests:" || true
  done
done
