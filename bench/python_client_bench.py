#!/usr/bin/python3
"""The Python client's cost per call: relu_serve against relu-cli, one server.

    bench/python_client_bench.py <build-dir> [--duration S] [--cells 16x1,...]

Starts relu-server (defaults, 127.0.0.1, a free port) and for each cell
(float32 elements x calls in flight) runs, in turn against that one server:
`relu-cli bench` (C++ client, callback API), relu_serve.Client (blocking; one
thread per call in flight) and relu_serve.aio.Client (asyncio, that many
calls in flight on one loop). Prints calls/s and MB/s (request tensor bytes,
10^6 bytes per MB) of each; every call's answer is checked by size only.
The clients share the machine's cores with the server: compare within a run.
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "client", "python"))
import relu_serve  # noqa: E402  pylint: disable=wrong-import-position
import relu_serve.aio  # noqa: E402  pylint: disable=wrong-import-position

DEFAULT_CELLS = "16x1,16x16,262144x1,262144x4,16777216x1"


def start_server(binary):
    log = tempfile.NamedTemporaryFile(prefix="relu-bench-", delete=False)
    proc = subprocess.Popen([binary, "--grpc-address=127.0.0.1:0",
                             "--metrics-address=off", "--http-address=off"],
                            stdout=log,
                            stderr=subprocess.STDOUT)
    while True:
        with open(log.name) as f:
            m = re.search(r"gRPC listening on \S+:(\d+)\n", f.read())
        if m:
            return proc, "127.0.0.1:" + m.group(1), log.name
        if proc.poll() is not None:
            sys.exit("relu-server exited %d" % proc.returncode)
        time.sleep(0.02)


def run_cli(cli, target, elements, concurrency, duration):
    out = subprocess.run(
        [cli, "bench", "--target", target, "--concurrency", str(concurrency),
         "--duration", str(duration), "--elements", str(elements), "--json"],
        check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["calls_per_s"], j["mb_per_s"]


def run_blocking(target, elements, concurrency, duration):
    x = np.linspace(-1, 1, elements, dtype=np.float32)
    counts = [0] * concurrency
    with relu_serve.Client(target) as client:
        client.apply(x)  # connect
        stop = time.monotonic() + duration

        def loop(i):
            while time.monotonic() < stop:
                assert client.apply(x).size == elements
                counts[i] += 1

        start = time.monotonic()
        threads = [threading.Thread(target=loop, args=(i,))
                   for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - start
    calls = sum(counts)
    return calls / seconds, calls * x.nbytes / seconds / 1e6


def run_asyncio(target, elements, concurrency, duration):
    x = np.linspace(-1, 1, elements, dtype=np.float32)

    async def main():
        async with relu_serve.aio.Client(target) as client:
            await client.apply(x)  # connect
            stop = time.monotonic() + duration
            calls = 0

            async def loop():
                nonlocal calls
                while time.monotonic() < stop:
                    assert (await client.apply(x)).size == elements
                    calls += 1

            start = time.monotonic()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            return calls, time.monotonic() - start

    calls, seconds = asyncio.run(main())
    return calls / seconds, calls * x.nbytes / seconds / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_dir")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--cells", default=DEFAULT_CELLS)
    args = parser.parse_args()
    server = os.path.join(args.build_dir, "server", "relu-server")
    cli = os.path.join(args.build_dir, "client", "relu-cli")
    proc, target, log = start_server(server)
    try:
        print("| cell | client | calls/s | MB/s | x relu-cli calls/s |")
        print("|---|---|---:|---:|---:|")
        for cell in args.cells.split(","):
            elements, concurrency = (int(v) for v in cell.split("x"))
            rows = [("relu-cli", run_cli(cli, target, elements, concurrency,
                                         args.duration)),
                    ("relu_serve.Client", run_blocking(
                        target, elements, concurrency, args.duration)),
                    ("relu_serve.aio.Client", run_asyncio(
                        target, elements, concurrency, args.duration))]
            base = rows[0][1][0]
            for i, (name, (cps, mbps)) in enumerate(rows):
                print("| %s | %s | %.4g | %.4g | %.2f |" % (
                    "%d el x%d" % (elements, concurrency) if i == 0 else "",
                    name, cps, mbps, cps / base))
            sys.stdout.flush()
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(log)


if __name__ == "__main__":
    main()
