#!/usr/bin/python3
"""The service benchmark driven by a load generator that is not ours: h2load
(Debian's nghttp2-client) sends gRPC calls as prepared HTTP/2 requests.

    bench/h2load_bench.py <build-dir> [--cells ...] [--duration S] [--repeat N]

Starts two echo floors (bench/echo/relu_echo_server, no compute: `--mode
raw` answers each call with its request's bytes, no parse, the floor of gRPC's
callback API; `--mode proto` parses and serializes with protobuf) and
relu-server on 127.0.0.1 free ports, then for each cell (float32 elements,
connections x streams per connection) runs h2load against each in turn for
--duration seconds: both echoes' ApplyReLU, relu-server's ApplyReLU and its
ModelInfer with raw_input_contents (the same tensor). Reports calls/s, MB/s
of request tensors, mean latency and the server's CPU per call (utime +
stime from /proc over the run), p50 and p99 latency (from h2load's
--log-file, one row per call of the measured period), and ratios: calls/s,
p50 and CPU to the raw echo, calls/s to the protobuf echo, ModelInfer's and
the Go peer's MB/s to ApplyReLU's. When it is built, the Go peer (bench/go_peer/relu-go-peer:
ApplyReLU in grpc-go, float32 in place on the request's bytes; --go-peer)
runs beside them. With --repeat N each figure is the median of N runs taken
in turn across the servers.

h2load cannot read gRPC's status (it is in the trailers): before the runs,
each request is sent once with grpcio and its answer checked, and each run's
response bytes per call must be a whole answer's, so an error answered fast
cannot pass for a fast call.

The load generator shares the machine's cores with the servers: figures are
for comparison within one run, not absolute capacity.
"""

import argparse
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

import grpc  # noqa: E402

from run_service_bench import Server, cpu_seconds, machine  # noqa: E402
from relu_serve._proto import grpc_service_pb2, relu_pb2  # noqa: E402

DEFAULT_CELLS = "16x4x64,16x1x1,262144x1x16,16777216x1x1"
APPLY = "/relu.v1.ReluService/ApplyReLU"
INFER = "/inference.GRPCInferenceService/ModelInfer"


def parse_cells(text):
    cells = []
    for item in text.split(","):
        elements, conns, streams = (int(x) for x in item.split("x"))
        cells.append((elements, conns, streams))
    return cells


def cell_name(cell):
    elements, conns, streams = cell
    size = elements * 4
    human = ("%d MiB" % (size >> 20) if size >= 1 << 20 else
             "%d KiB" % (size >> 10) if size >= 1 << 10 else "%d B" % size)
    return "%d el (%s), %d conn x %d streams" % (elements, human, conns,
                                                  streams)


def messages(elements):
    """The ApplyReLU and ModelInfer requests for a float32 tensor of
    `elements` (assorted signs), serialized."""
    data = b"".join(struct.pack("<f", ((i * 7919) % 200 - 100) / 8.0)
                    for i in range(min(elements, 4096)))
    data = (data * (elements // 4096 + 1))[:4 * elements]
    apply = relu_pb2.ApplyReLURequest()
    apply.tensor.dtype = relu_pb2.DATA_TYPE_FLOAT32
    apply.tensor.shape.append(elements)
    apply.tensor.data = data
    infer = grpc_service_pb2.ModelInferRequest(model_name="relu")
    tensor = infer.inputs.add(name="input", datatype="FP32")
    tensor.shape.append(elements)
    infer.raw_input_contents.append(data)
    return apply.SerializeToString(), infer.SerializeToString()


def grpc_frame(message):
    return struct.pack(">BI", 0, len(message)) + message


def check_answers(target, apply, infer, elements, with_infer):
    """One call of each through grpcio: OK and the right size."""
    channel = grpc.insecure_channel(target, options=[
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1)])
    try:
        call = channel.unary_unary(APPLY)
        response = relu_pb2.ApplyReLUResponse.FromString(
            call(apply, timeout=60))
        assert len(response.tensor.data) == 4 * elements
        if with_infer:
            call = channel.unary_unary(INFER)
            response = grpc_service_pb2.ModelInferResponse.FromString(
                call(infer, timeout=60))
            assert len(response.raw_output_contents[0]) == 4 * elements
    finally:
        channel.close()


SIZE = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse_h2load(text):
    out = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    out["seconds"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    out["calls_per_s"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored", text)
    out["requests"], out["done"], out["succeeded"] = (
        int(m.group(1)), int(m.group(2)), int(m.group(3)))
    out["failed"] = int(m.group(4)) + int(m.group(5))
    m = re.search(r"traffic: .*?, ([\d.]+)([KMG]?B) \(\d+\) data", text)
    out["data_bytes"] = float(m.group(1)) * SIZE[m.group(2)]
    m = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    out["mean_us"] = float(m.group(1)) * scale
    return out


def percentiles(log_file):
    """p50 and p99 of h2load's per-call latencies (--log-file: start time,
    status, microseconds to the end of the response; h2load logs the calls
    of the measured period only)."""
    with open(log_file) as f:
        latencies = sorted(int(line.split("\t")[2]) for line in f if line.strip())
    if not latencies:
        raise RuntimeError("h2load logged no calls in " + log_file)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return len(latencies), pick(0.50), pick(0.99)


def run_h2load(server, path, body_file, cell, duration_s, answer_bytes):
    elements, conns, streams = cell
    host, port = server.target.rsplit(":", 1)
    log_file = body_file + ".log"
    argv = ["h2load", "-D", "%g" % duration_s, "-c", str(conns), "-m",
            str(streams), "-t", "1", "--warm-up-time", "1",
            "--log-file", log_file,
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-d", body_file, "http://%s:%s%s" % (host, port, path)]
    cpu0 = cpu_seconds(server.proc.pid)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    cpu = cpu_seconds(server.proc.pid) - cpu0
    if result.returncode != 0:
        raise RuntimeError("h2load failed: %s\n%s" % (" ".join(argv),
                                                      result.stdout[-2000:]))
    r = parse_h2load(result.stdout)
    if r["failed"] or r["succeeded"] == 0:
        raise RuntimeError("h2load: failed calls\n" + result.stdout[-2000:])
    # Each answer: a gRPC frame of the response (the tensor and a few bytes
    # of fields), where an error would be trailers only.
    if r["data_bytes"] / r["succeeded"] < 0.99 * answer_bytes:
        raise RuntimeError("answers of %.0f bytes, expected %d: errors?\n%s" %
                           (r["data_bytes"] / r["succeeded"], answer_bytes,
                            result.stdout[-2000:]))
    logged, r["p50_us"], r["p99_us"] = percentiles(log_file)
    os.unlink(log_file)
    if logged != r["succeeded"]:
        raise RuntimeError("h2load logged %d calls, counted %d succeeded" %
                           (logged, r["succeeded"]))
    r["mb_per_s"] = r["calls_per_s"] * 4 * elements / 1e6
    # h2load's warm-up is not in its figures but is in the CPU time: scale
    # the CPU by the measured share of the run.
    r["cpu_us_per_call"] = (cpu * duration_s / (duration_s + 1.0) * 1e6 /
                            max(r["succeeded"], 1))
    return r


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--cells", default=DEFAULT_CELLS,
                        help="comma-separated ELEMENTSxCONNECTIONSxSTREAMS "
                             "(default %s)" % DEFAULT_CELLS)
    parser.add_argument("--duration", type=int, default=3,
                        help="seconds per h2load run (default 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell and server, medians (default 1)")
    parser.add_argument("--relu-args", default="",
                        help="extra relu-server flags, space-separated")
    parser.add_argument("--variant", action="append", default=[],
                        metavar="NAME=FLAGS",
                        help="another relu-server with these extra flags "
                             "(space-separated), its ApplyReLU a row "
                             "'relu NAME'; repeatable, to compare settings "
                             "in one run")
    parser.add_argument("--compare-build", default=None, metavar="DIR",
                        help="another build of the tree: its raw echo and "
                             "relu-server's ApplyReLU become rows 'raw echo "
                             "(other)' and 'relu (other)' of the same run "
                             "(before/after a change, another allocator)")
    parser.add_argument("--async-echo", action="store_true",
                        help="add a row 'raw echo (async)': the raw echo "
                             "over gRPC's asynchronous API, completion "
                             "queues polled by threads of its own "
                             "(relu_echo_server --mode async-raw)")
    parser.add_argument("--trailer-echo", action="store_true",
                        help="add a row 'raw echo + trailer': the raw echo "
                             "returning one traceparent trailer per call, "
                             "as relu-server does (relu_echo_server --mode "
                             "raw-trailer)")
    parser.add_argument("--go-peer", default=None,
                        help="the Go peer's binary (default "
                             "<build-dir>/bench/go_peer/relu-go-peer; its "
                             "rows are left out when it is not built); "
                             "'off' leaves them out")
    args = parser.parse_args()

    b = os.path.abspath(args.build_dir)
    relu_argv = [os.path.join(b, "server", "relu-server"), "--grpc-address",
                 "127.0.0.1:0", "--metrics-address", "off"]
    if has_flag(relu_argv[0], "--http-address"):
        relu_argv += ["--http-address", "off"]
    variants = {}
    for item in args.variant:
        name, _, flags = item.partition("=")
        variants["relu " + name] = relu_argv + flags.split()
    other = {}
    if args.compare_build:
        o = os.path.abspath(args.compare_build)
        other["raw echo (other)"] = [
            os.path.join(o, "bench", "echo", "relu_echo_server"),
            "--grpc-address", "127.0.0.1:0", "--mode", "raw"]
        other["relu (other)"] = [os.path.join(o, "server", "relu-server")] + \
            relu_argv[1:] + args.relu_args.split()
    relu_argv += args.relu_args.split()
    echo_argv = [os.path.join(b, "bench", "echo", "relu_echo_server"),
                 "--grpc-address", "127.0.0.1:0"]
    raw_argv = echo_argv + ["--mode", "raw"]
    if args.async_echo:
        other["raw echo (async)"] = echo_argv + ["--mode", "async-raw"]
    if args.trailer_echo:
        other["raw echo + trailer"] = echo_argv + ["--mode", "raw-trailer"]
    go_peer = args.go_peer or os.path.join(b, "bench", "go_peer",
                                           "relu-go-peer")
    if go_peer != "off" and not os.access(go_peer, os.X_OK):
        print("# no Go peer at %s (build target relu_go_peer, needs Debian's "
              "golang-go and golang-google-grpc-dev): its rows are left out"
              % go_peer, file=sys.stderr, flush=True)
        go_peer = "off"
    cells = parse_cells(args.cells)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="relu-h2load-") as work:
        servers = {"relu": Server("relu", relu_argv, work),
                   "echo": Server("echo", echo_argv, work),
                   "raw": Server("raw", raw_argv, work)}
        for label, argv in list(variants.items()) + list(other.items()):
            servers[label] = Server(re.sub(r"[^a-z-]", "", label.replace(
                " ", "-")), argv, work)
        if go_peer != "off":
            servers["go"] = Server("go", [go_peer, "--grpc-address",
                                          "127.0.0.1:0"], work)
        try:
            for s in servers.values():
                s.start()
            rows = []
            for cell in cells:
                elements = cell[0]
                apply, infer = messages(elements)
                files = {}
                for name, message in (("apply", apply), ("infer", infer)):
                    files[name] = os.path.join(work, name + ".bin")
                    with open(files[name], "wb") as f:
                        f.write(grpc_frame(message))
                check_answers(servers["relu"].target, apply, infer, elements,
                              True)
                for name in ("echo", "raw", "go"):
                    if name not in servers:
                        continue
                    check_answers(servers[name].target, apply, infer,
                                  elements, False)
                # The answers' sizes: the request's tensor back, as a frame.
                answer = 5 + 4 * elements
                runs = {"raw echo": [], "echo ApplyReLU": [],
                        "relu ApplyReLU": [], "relu ModelInfer": []}
                runs.update({label: [] for label in variants})
                runs.update({label: [] for label in other})
                if "go" in servers:
                    runs["go ApplyReLU"] = []
                plan = [(label, servers[label], APPLY, files["apply"])
                        for label in list(variants) + list(other)]
                plan += [("raw echo", servers["raw"], APPLY, files["apply"]),
                         ("echo ApplyReLU", servers["echo"], APPLY,
                          files["apply"]),
                         ("relu ApplyReLU", servers["relu"], APPLY,
                          files["apply"]),
                         ("relu ModelInfer", servers["relu"], INFER,
                          files["infer"])]
                if "go" in servers:
                    plan.append(("go ApplyReLU", servers["go"], APPLY,
                                 files["apply"]))
                for rep in range(args.repeat):
                    for label, server, path, body in plan:
                        print("# %s: %s (run %d of %d)" % (
                            cell_name(cell), label, rep + 1, args.repeat),
                            file=sys.stderr, flush=True)
                        runs[label].append(run_h2load(
                            server, path, body, cell, args.duration, answer))
                rows.append((cell, {label: {k: median(r, k) for k in (
                    "calls_per_s", "mb_per_s", "mean_us", "p50_us", "p99_us",
                    "cpu_us_per_call")}
                    for label, r in runs.items()}))
        finally:
            for s in servers.values():
                s.stop()
    after = machine()
    print("machine: %s, %d cores, Linux %s; load average %s before, %s after"
          % (before["cpu"], before["cores"], before["kernel"],
             before["loadavg"], after["loadavg"]))
    print("command: %s  (h2load -D %g -t 1, %d run(s), medians)\n" % (
        " ".join([os.path.relpath(__file__)] + sys.argv[1:]), args.duration,
        args.repeat))
    print("| cell | server | calls/s | MB/s | mean latency us | p50 us | "
          "p99 us | CPU us/call | calls/s x raw echo | calls/s x proto echo | "
          "p50 x raw echo | CPU x raw echo | MB/s x ApplyReLU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cell, results in rows:
        raw = results["raw echo"]
        echo = results["echo ApplyReLU"]
        apply = results["relu ApplyReLU"]
        for label in results:
            r = results[label]
            print("| %s | %s | %.0f | %.1f | %.0f | %.0f | %.0f | %.1f | %.3f "
                  "| %.3f | %.3f | %.3f | %s |"
                  % (cell_name(cell), label, r["calls_per_s"], r["mb_per_s"],
                     r["mean_us"], r["p50_us"], r["p99_us"],
                     r["cpu_us_per_call"],
                     r["calls_per_s"] / raw["calls_per_s"],
                     r["calls_per_s"] / echo["calls_per_s"],
                     r["p50_us"] / raw["p50_us"],
                     r["cpu_us_per_call"] / raw["cpu_us_per_call"],
                     "%.3f" % (r["mb_per_s"] / apply["mb_per_s"])
                     if label in ("relu ModelInfer", "go ApplyReLU")
                     else "-"))


def has_flag(server, flag):
    """Whether `server --help` lists `flag`."""
    out = subprocess.run([server, "--help"], capture_output=True, text=True)
    return flag in out.stdout


if __name__ == "__main__":
    main()
