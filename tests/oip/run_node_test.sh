#!/usr/bin/env bash
# Runs oip_client_test.js (an Open Inference Protocol client built on Node's
# @grpc/grpc-js and @grpc/proto-loader) against the real relu-server.
#
# usage: run_node_test.sh SERVER_BINARY SOURCE_DIR WORK_DIR VERSION SUITE
#
# Installs the npm packages pinned by tests/oip/node/package-lock.json into
# WORK_DIR (once; `npm ci`, no install scripts). Exit codes: 0 passed, 1
# failed, 77 skipped (no node/npm, or the npm registry is unreachable and the
# packages are not installed yet): ctest's SKIP_RETURN_CODE.
set -euo pipefail

server=$1 src=$2 work=$3 version=$4 suite=$5
here=$src/tests/oip

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIPPED: node and npm are needed for the Open Inference Protocol client test"
  exit 77
fi

mkdir -p "$work"
# Several suites run at once under ctest -j: one installs, the others wait.
exec 9>"$work/.install.lock"
flock 9
if ! cmp -s "$here/node/package-lock.json" "$work/.installed-lock.json" ||
   [ ! -f "$work/node_modules/@grpc/grpc-js/package.json" ]; then
  cp "$here/node/package.json" "$here/node/package-lock.json" "$work/"
  if ! (cd "$work" && npm ci --no-audit --no-fund --ignore-scripts >&2); then
    if ! npm ping >/dev/null 2>&1; then
      echo "SKIPPED: the npm registry ($(npm config get registry)) is unreachable;" \
           "cannot install @grpc/grpc-js and @grpc/proto-loader"
      exit 77
    fi
    echo "FAILED: npm ci failed although the registry answers" >&2
    exit 1
  fi
  cp "$here/node/package-lock.json" "$work/.installed-lock.json"
fi
flock -u 9

exec node "$here/oip_client_test.js" \
  --server="$server" --modules="$work/node_modules" --proto="$src/proto" \
  --golden="$src/tests/data/relu_golden_edges.json" --version="$version" \
  --suite="$suite"
