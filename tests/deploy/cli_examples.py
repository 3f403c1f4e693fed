#!/usr/bin/python3
"""Runs the tutorial's examples through relu-cli against a running server.

The examples are the "seed" cases of tests/data/relu_golden_edges.json (the
four tutorial calls, in every dtype). Each one is a `relu-cli apply` call; its
printed list must equal the expected output value for value, the sign of zero
included. Exit 0 when all match, 1 otherwise.

usage: cli_examples.py RELU_CLI TARGET GOLDEN_JSON
"""

import json
import math
import subprocess
import sys


def same(printed, expected):
    a, b = float(printed), float(expected)
    if math.isnan(b):
        return math.isnan(a)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def main():
    cli, target, golden = sys.argv[1:4]
    with open(golden) as f:
        cases = [c for c in json.load(f)["cases"] if c["kind"] == "seed"]
    failures = 0
    if not cases:
        print("no seed cases in", golden)
        return 1
    for case in cases:
        params = case["params"]
        command = [cli, "apply", "--target", target, "--dtype", case["dtype"],
                   "--negative-slope", repr(params["negative_slope"]),
                   "--threshold", repr(params["threshold"])]
        if params["max_value"] is not None:
            command += ["--max-value", repr(params["max_value"])]
        command += ["--"] + case["input"]
        run = subprocess.run(command, capture_output=True, text=True)
        printed = run.stdout.strip()
        values = [v.strip() for v in printed.strip("[]").split(",") if v.strip()]
        ok = (run.returncode == 0 and len(values) == len(case["output"]) and
              all(same(v, e) for v, e in zip(values, case["output"])))
        print(f"{'ok  ' if ok else 'FAIL'} {case['name']}: {' '.join(command[1:])}"
              f" -> {printed or run.stderr.strip()}"
              f" (expected [{', '.join(case['output'])}])")
        failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
