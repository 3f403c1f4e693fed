#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time and fails on any crash, leak,
# sanitizer report or oracle failure (libFuzzer exits non-zero on all of
# them). Usage:
#   tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET (60)]
# BUILD_DIR is a RELU_FUZZ=ON clang build (`make test-fuzz` makes one).
# The seed corpus in the tree is read, never written: new inputs go to
# BUILD_DIR/fuzz-corpus/<target>, kept between runs; crashes to
# BUILD_DIR/fuzz-artifacts/. Prints each target's executions and libFuzzer's
# coverage figures (cov: edges, ft: features) at the end.
set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR [SECONDS]}
SECONDS_PER_TARGET=${2:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
ARTIFACTS=$BUILD/fuzz-artifacts
mkdir -p "$ARTIFACTS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=""
for target in request_fuzzer npy_fuzzer; do
  bin=$BUILD/tests/fuzz/$target
  corpus=$BUILD/fuzz-corpus/$target
  mkdir -p "$corpus"
  log=$BUILD/fuzz-$target.log
  echo "== $target: ${SECONDS_PER_TARGET}s"
  # -timeout: one input running over 10 s counts as a failure (a hang).
  # -rss_limit_mb: over 2 GiB counts as a failure (memory blow-up).
  if "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
      -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$ARTIFACTS/$target-" \
      "$corpus" "$HERE/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -60 "$log"
  fi
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  summary+="$target: $result, ${runs:-?} executions; last: ${last}"$'\n'
done
printf '%s' "$summary"
exit $status
