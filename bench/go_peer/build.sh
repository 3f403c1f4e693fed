#!/bin/sh
# Builds relu-go-peer (bench/go_peer/main.go) offline, in GOPATH mode, from
# Debian 12's Go packages only (scripts/install-deps.sh installs them):
#
#   bench/go_peer/build.sh PROTOC SOURCE_DIR OUT_DIR
#
# The message and service code is generated from proto/relu/v1/relu.proto by
# protoc-gen-go and protoc-gen-go-grpc into OUT_DIR/gopath/src/reluserve/reluv1
# (nothing is written to the source tree); grpc-go and protobuf come from
# /usr/share/gocode, where Debian installs Go library sources. The binary is
# OUT_DIR/relu-go-peer, the build cache OUT_DIR/gocache.
set -eu

if [ $# -ne 3 ]; then
  echo "usage: $0 PROTOC SOURCE_DIR OUT_DIR" >&2
  exit 2
fi
protoc=$1
src=$(cd "$2" && pwd)
out=$(mkdir -p "$3" && cd "$3" && pwd)

gopath=$out/gopath
gen=$gopath/src/reluserve/reluv1
rm -rf "$gen"
mkdir -p "$gen"
map=Mrelu/v1/relu.proto=reluserve/reluv1
"$protoc" --proto_path="$src/proto" \
  --go_out="$gopath/src" --go_opt="$map" \
  --go-grpc_out="$gopath/src" --go-grpc_opt="$map" \
  relu/v1/relu.proto

cd "$src/bench/go_peer"
env GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off \
  GOFLAGS= GOCACHE="$out/gocache" GOTMPDIR= \
  go build -trimpath -o "$out/relu-go-peer" .
