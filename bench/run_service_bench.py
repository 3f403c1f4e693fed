#!/usr/bin/python3
"""The service benchmark: relu-server against a gRPC echo floor, same run.

    bench/run_service_bench.py <build-dir> [--json] [--duration S]

Starts five servers on 127.0.0.1 (free ports): the echo floor
(bench/echo/relu_echo_server), relu-server with its defaults, relu-server with
batching off (--max-batch-requests=1), the Python server
(bench/python/relu_server.py) and the Go peer (bench/go_peer/relu-go-peer,
grpc-go; left out with a note when it is not built). For each cell (float32
elements x concurrency) it runs `relu-cli bench` against each server in turn,
so a change in the machine's load hits every server of a cell alike, and
reports calls/s, MB/s (request tensor bytes), p50/p99 latency and the server's
CPU per call (utime + stime of the server process from /proc/<pid>/stat over
the timed run, divided by its calls), each also as a ratio to the echo's
figure in the same cell.
Then it checks the targets of issue 9 and prints PASS or MISS for each.

The HTTP rows (--servers ...,http-json,http-bin; relu-server's Open
Inference Protocol REST front door, issue 14) are driven by h2load --h1
(Debian's nghttp2-client), a load generator that is not ours: one keep-alive
connection per concurrent caller, each sending the cell's tensor as JSON
numbers (http-json) or as binary tensor data with a binary answer
(http-bin). h2load reports no percentiles: their p50/p99 stay empty; MB/s is
the request tensor's bytes, as for relu-cli. Their targets are issue 14's.

The load generator shares the machine's cores with the servers: figures are
for comparison within one run, not absolute capacity.
"""

import argparse
import json
import os
import platform
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

DEFAULT_CELLS = "16x1,16x256,1024x64,262144x1,262144x16,16777216x1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_cells(text):
    cells = []
    for item in text.split(","):
        elements, concurrency = item.strip().lower().split("x")
        cells.append((int(elements), int(concurrency)))
    return cells


def cell_name(cell):
    elements, concurrency = cell
    size = elements * 4
    if size >= 1 << 20:
        human = "%d MiB" % (size >> 20)
    elif size >= 1 << 10:
        human = "%d KiB" % (size >> 10)
    else:
        human = "%d B" % size
    return "%d el (%s) x%d" % (elements, human, concurrency)


def cpu_seconds(pid):
    """utime + stime of `pid`, all threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    # Fields after the ")" closing comm; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    """One server process; its port is read from "gRPC listening on H:P"
    (or "HTTP listening on H:P" for an HTTP row)."""

    def __init__(self, name, argv, log_dir):
        self.name = name
        self.argv = argv
        self.http = name.startswith("http-")
        self.http_target = None
        self.log_path = os.path.join(log_dir, name + ".log")
        self.proc = None
        self.target = None

    def start(self, timeout_s=30.0):
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with open(self.log_path) as f:
                for line in f:
                    if "HTTP listening on " in line:
                        address = line.split("HTTP listening on ")[1].split()[0]
                        self.http_target = "127.0.0.1:" + address.rsplit(
                            ":", 1)[1]
                    if "gRPC listening on " in line:
                        address = line.split("gRPC listening on ")[1].split()[0]
                        if address.startswith("unix"):
                            self.target = address
                        else:
                            self.target = "127.0.0.1:" + \
                                address.rsplit(":", 1)[1]
                        return
            time.sleep(0.05)
        with open(self.log_path) as f:
            tail = f.read()[-2000:]
        self.stop()
        raise RuntimeError("%s did not start: %s\n%s" %
                           (self.name, " ".join(self.argv), tail))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_cell(cli, server, cell, duration_s, warmup_s, attempts=3):
    """One timed relu-cli run. A run whose relu-cli dies (it has been seen to
    crash now and then) is retried, up to `attempts` runs in all; the number
    of such crashes is reported as client_crashes."""
    elements, concurrency = cell
    base = [cli, "bench", "--target", server.target, "--concurrency",
            str(concurrency), "--elements", str(elements), "--json"]
    crashes = 0
    for _ in range(attempts):
        if warmup_s > 0:
            warm = subprocess.run(base + ["--duration", str(warmup_s)],
                                  stdout=subprocess.DEVNULL)
            crashes += warm.returncode != 0
        cpu_before = cpu_seconds(server.proc.pid)
        run = subprocess.run(base + ["--duration", str(duration_s)],
                             stdout=subprocess.PIPE, text=True)
        cpu_after = cpu_seconds(server.proc.pid)
        if run.returncode == 0:
            break
        crashes += 1
        print("# relu-cli exited with %d; running again" % run.returncode,
              file=sys.stderr, flush=True)
    else:
        raise RuntimeError("relu-cli failed %d times against %s" %
                           (attempts, server.name))
    result = json.loads(run.stdout)
    requests = result["requests"]
    return {
        "calls_per_s": result["calls_per_s"],
        "mb_per_s": result["mb_per_s"],
        "p50_us": result["latency_us"]["p50"],
        "p99_us": result["latency_us"]["p99"],
        "cpu_us_per_call": ((cpu_after - cpu_before) * 1e6 / requests
                            if requests else None),
        "requests": requests,
        "errors": result["errors"],
        "client_crashes": crashes,
    }


def http_body(elements, binary, work_dir):
    """The request body file of an HTTP row, and its extra headers."""
    path = os.path.join(work_dir, "body-%d-%s" % (elements, binary))
    values = [((i % 13) - 6) * 0.25 for i in range(elements)]
    headers = []
    if binary:
        header = json.dumps({
            "inputs": [{"name": "input", "shape": [elements],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": elements * 4}}],
            "parameters": {"binary_data_output": True}}).encode()
        with open(path, "wb") as f:
            f.write(header)
            f.write(struct.pack("<%df" % elements, *values))
        headers = ["-H", "Inference-Header-Content-Length: %d" % len(header),
                   "-H", "Content-Type: application/octet-stream"]
    else:
        with open(path, "w") as f:
            json.dump({"inputs": [{"name": "input", "shape": [elements],
                                   "datatype": "FP32", "data": values}]}, f)
        headers = ["-H", "Content-Type: application/json"]
    return path, headers


def run_h2load_cell(server, cell, duration_s, warmup_s, work_dir):
    """One timed h2load --h1 run against an HTTP row's server."""
    elements, concurrency = cell
    body, headers = http_body(elements, server.name == "http-bin", work_dir)
    url = "http://%s/v2/models/relu/infer" % server.http_target
    argv = (["h2load", "--h1", "-c", str(concurrency), "-m", "1",
             "-D", "%dms" % (duration_s * 1000), "-d", body] + headers +
            [url])
    if warmup_s > 0:
        argv[1:1] = ["--warm-up-time", "%dms" % (warmup_s * 1000)]
    cpu_before = cpu_seconds(server.proc.pid)
    run = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    cpu_after = cpu_seconds(server.proc.pid)
    if run.returncode != 0:
        raise RuntimeError("h2load failed: %s\n%s" % (" ".join(argv),
                                                       run.stdout[-2000:]))
    out = run.stdout
    seconds = float(re.search(r"finished in ([0-9.]+)s", out).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, "
                     r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                      r"(\d+) 5xx", out)
    succeeded = int(done.group(2))
    errors = {}
    for label, count in (("failed", done.group(3)), ("errored", done.group(4)),
                         ("4xx", codes.group(3)), ("5xx", codes.group(4))):
        if int(count):
            errors[label] = int(count)
    return {
        "calls_per_s": succeeded / seconds if seconds else None,
        "mb_per_s": (succeeded * elements * 4 / seconds / 1e6
                     if seconds else None),
        "p50_us": None,
        "p99_us": None,
        "cpu_us_per_call": ((cpu_after - cpu_before) * 1e6 / succeeded
                            if succeeded else None),
        "requests": succeeded,
        "errors": errors,
        "client_crashes": 0,
    }


def median_run(runs):
    """Each metric's median over `runs` (the lower middle for an even count);
    requests and errors summed."""
    out = {}
    for key, _, _ in METRICS:
        values = sorted(r[key] for r in runs if r[key] is not None)
        out[key] = values[(len(values) - 1) // 2] if values else None
    out["requests"] = sum(r["requests"] for r in runs)
    errors = {}
    for r in runs:
        for code, count in r["errors"].items():
            errors[code] = errors.get(code, 0) + count
    out["errors"] = errors
    out["runs"] = len(runs)
    out["client_crashes"] = sum(r["client_crashes"] for r in runs)
    return out


METRICS = [("calls_per_s", "calls/s", "%.0f"), ("mb_per_s", "MB/s", "%.1f"),
           ("p50_us", "p50 us", "%.0f"), ("p99_us", "p99 us", "%.0f"),
           ("cpu_us_per_call", "CPU us/call", "%.1f")]


def ratio(value, floor):
    if value is None or not floor:
        return None
    return value / floor


def check_targets(results, cells):
    """The targets of issue 9, for relu-server with its defaults."""
    def get(server, cell, metric):
        return results.get(cell_name(cell), {}).get(server, {}).get(metric)

    targets = []

    def add(text, value, floor, want, op):
        if value is None or floor is None or not floor:
            targets.append({"target": text, "ratio": None, "result": "SKIP"})
            return
        r = value / floor
        ok = r >= want if op == ">=" else r <= want
        targets.append({"target": text, "ratio": round(r, 4),
                        "result": "PASS" if ok else "MISS"})

    add("16 el x256: calls/s >= 0.9 x echo",
        get("relu", (16, 256), "calls_per_s"),
        get("echo", (16, 256), "calls_per_s"), 0.9, ">=")
    add("16 el x1: p50 <= 1.1 x echo",
        get("relu", (16, 1), "p50_us"), get("echo", (16, 1), "p50_us"),
        1.1, "<=")
    add("1 MiB x16: MB/s >= 1.0 x echo",
        get("relu", (262144, 16), "mb_per_s"),
        get("echo", (262144, 16), "mb_per_s"), 1.0, ">=")
    # Issue 14: HTTP against gRPC ApplyReLU (relu), same run.
    add("http-bin 1 MiB x16: MB/s >= 0.8 x relu",
        get("http-bin", (262144, 16), "mb_per_s"),
        get("relu", (262144, 16), "mb_per_s"), 0.8, ">=")
    add("http-json 16 el x256: calls/s >= 0.5 x relu",
        get("http-json", (16, 256), "calls_per_s"),
        get("relu", (16, 256), "calls_per_s"), 0.5, ">=")
    add("64 MiB x1: MB/s >= 1.0 x echo",
        get("relu", (16777216, 1), "mb_per_s"),
        get("echo", (16777216, 1), "mb_per_s"), 1.0, ">=")
    for c in (1, 256):
        add("16 el x%d: calls/s >= 5 x python" % c,
            get("relu", (16, c), "calls_per_s"),
            get("python", (16, c), "calls_per_s"), 5.0, ">=")
    for c in (1, 16):
        add("1 MiB x%d: MB/s >= 3 x python" % c,
            get("relu", (262144, c), "mb_per_s"),
            get("python", (262144, c), "mb_per_s"), 3.0, ">=")
    return [t for t in targets if t["result"] != "SKIP" or cells is None]


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"cpu": model, "cores": os.cpu_count(),
            "kernel": platform.release(), "loadavg": load}


def print_table(results, cells, servers):
    header = "%-26s %-12s" % ("cell", "server")
    for _, label, _ in METRICS:
        header += " %11s %7s" % (label, "x echo")
    print(header)
    print("-" * len(header))
    for cell in cells:
        row_set = results[cell_name(cell)]
        floor = row_set.get("echo", {})
        for name in servers:
            r = row_set[name]
            line = "%-26s %-12s" % (cell_name(cell), name)
            for key, _, fmt in METRICS:
                v = r[key]
                q = ratio(v, floor.get(key))
                if key == "calls_per_s" and v is not None and v < 100:
                    fmt = "%.1f"
                line += " %11s %7s" % ("-" if v is None else fmt % v,
                                       "-" if q is None else "%.2f" % q)
            if r["errors"]:
                line += "  errors: %s" % json.dumps(r["errors"])
            if r["client_crashes"]:
                line += "  (relu-cli crashed %d time(s); rerun)" % (
                    r["client_crashes"])
            print(line)
        print()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds per timed run (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="seconds of untimed load before each run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs per server and cell, taken in turn "
                             "across the servers; the table shows each "
                             "figure's median (default 1)")
    parser.add_argument("--cells", default=DEFAULT_CELLS,
                        help="comma-separated ELEMENTSxCONCURRENCY (default "
                             "%s)" % DEFAULT_CELLS)
    parser.add_argument("--servers",
                        default="echo,relu,relu-nobatch,python,go",
                        help="which servers (echo is always run: the floor); "
                             "relu-noinline adds relu-server "
                             "--inline-when-idle=false, relu-unix relu-server "
                             "on a Unix socket; http-json and "
                             "http-bin add relu-server's HTTP front door "
                             "driven by h2load --h1")
    args = parser.parse_args()

    # SIGTERM unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    b = os.path.abspath(args.build_dir)
    here = os.path.dirname(os.path.abspath(__file__))
    cli = os.path.join(b, "client", "relu-cli")
    any_port = ["--grpc-address", "127.0.0.1:0"]
    server = os.path.join(b, "server", "relu-server")
    relu = [server] + any_port + ["--metrics-address", "off",
                                  "--http-address", "off"]
    socket_path = "/tmp/relu-service-bench-%d.sock" % os.getpid()
    request_log = os.path.join(tempfile.gettempdir(),
                               "relu-bench-requests-%d.log" % os.getpid())
    argv = {
        "echo": [os.path.join(b, "bench", "echo", "relu_echo_server")] +
                any_port,
        "relu": relu,
        "relu-nobatch": relu + ["--max-batch-requests", "1"],
        # Every call through the batch thread, opt-in: --servers ...,relu-noinline
        "relu-noinline": relu + ["--inline-when-idle=false"],
        # Same-host callers over a Unix socket, opt-in: --servers ...,relu-unix
        "relu-unix": [server, "--grpc-address", "unix:" + socket_path,
                      "--metrics-address", "off", "--http-address", "off"],
        # The request log's cost, opt-in: --servers relu-log-off,relu-log-all
        # (every call logged, to a file on disk).
        "relu-log-off": relu + ["--request-log=off"],
        "relu-log-all": relu + ["--request-log=all", "--request-log-file",
                                request_log],
        # The HTTP front door (issue 14), opt-in: a keep-alive connection
        # holds one of civetweb's threads, so there are more threads than
        # the largest concurrency.
        "http-json": relu[:-1] + ["127.0.0.1:0", "--http-threads", "512"],
        "http-bin": relu[:-1] + ["127.0.0.1:0", "--http-threads", "512"],
        "python": ["/usr/bin/python3",
                   os.path.join(here, "python", "relu_server.py"),
                   "--stubs-dir", os.path.join(b, "bench", "python", "gen")] +
                  any_port,
        "go": [os.path.join(b, "bench", "go_peer", "relu-go-peer")] + any_port,
    }
    names = ["echo"] + [s for s in args.servers.split(",") if s and s != "echo"]
    if "go" in names and not os.access(argv["go"][0], os.X_OK):
        print("# no Go peer at %s (build target relu_go_peer, needs Debian's "
              "golang-go and golang-google-grpc-dev): its rows are left out"
              % argv["go"][0], file=sys.stderr, flush=True)
        names.remove("go")
    for name in names:
        if name not in argv:
            sys.exit("unknown server %r; use %s" % (name, ", ".join(argv)))
    for path in (cli, argv["echo"][0], relu[0]):
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: build relu-cli relu-server relu_echo_server "
                     "relu_python_stubs in %s" % (path, b))
    cells = parse_cells(args.cells)

    before = machine()
    started = time.monotonic()
    results = {}
    with tempfile.TemporaryDirectory(prefix="relu-service-bench-") as logs:
        servers = [Server(n, argv[n], logs) for n in names]
        try:
            for s in servers:
                s.start()
            for cell in cells:
                runs = {s.name: [] for s in servers}
                for rep in range(args.repeat):
                    for s in servers:
                        print("# %s: %s (run %d of %d)" %
                              (cell_name(cell), s.name, rep + 1, args.repeat),
                              file=sys.stderr, flush=True)
                        warmup = args.warmup if rep == 0 else 0
                        if s.http:
                            runs[s.name].append(run_h2load_cell(
                                s, cell, args.duration, warmup, logs))
                        else:
                            runs[s.name].append(run_cell(
                                cli, s, cell, args.duration, warmup))
                results[cell_name(cell)] = {
                    name: median_run(r) for name, r in runs.items()}
        finally:
            for s in servers:
                s.stop()
            if os.path.exists(request_log):
                os.unlink(request_log)
    after = machine()
    targets = check_targets(results, cells)
    command = " ".join([os.path.relpath(__file__)] + sys.argv[1:])

    if args.json:
        out = {"machine": {"cpu": before["cpu"], "cores": before["cores"],
                           "kernel": before["kernel"],
                           "loadavg_before": before["loadavg"],
                           "loadavg_after": after["loadavg"]},
               "command": command, "duration_s": args.duration,
               "repeat": args.repeat,
               "wall_s": round(time.monotonic() - started, 1),
               "cells": [{"elements": e, "concurrency": c,
                          "name": cell_name((e, c)),
                          "servers": results[cell_name((e, c))]}
                         for e, c in cells],
               "targets": targets}
        for cell in out["cells"]:
            floor = cell["servers"]["echo"]
            for r in cell["servers"].values():
                r["x_echo"] = {k: (None if ratio(r[k], floor[k]) is None
                                   else round(ratio(r[k], floor[k]), 3))
                               for k, _, _ in METRICS}
        print(json.dumps(out, indent=1))
        return
    print("machine: %s, %d cores, Linux %s; load average %s before, %s after"
          % (before["cpu"], before["cores"], before["kernel"],
             before["loadavg"], after["loadavg"]))
    print("command: %s  (%g s per run, %d run(s) per cell and server, "
          "medians; %.0f s total)\n" % (command, args.duration, args.repeat,
                                        time.monotonic() - started))
    print_table(results, cells, names)
    print("targets (relu-server defaults):")
    for t in targets:
        print("  %-4s %-40s ratio %s" % (t["result"], t["target"],
                                         "-" if t["ratio"] is None
                                         else "%.3f" % t["ratio"]))


if __name__ == "__main__":
    main()
