#!/usr/bin/python3
"""The benchmarks' Go peer (bench/go_peer, relu-go-peer) computes what
relu-server computes, so its rows in bench/h2load_bench.py and
bench/run_service_bench.py compare servers giving the same answers.

    go_peer_test.py --peer build/bench/go_peer/relu-go-peer
                    [--relu-server build/server/relu-server]

Starts the peer on 127.0.0.1:0 and checks, through grpcio:
  - every float32 and float64 case of tests/data/relu_golden_edges.json, bit
    for bit (NaN by isnan);
  - with --relu-server, a tensor of special and random values under every
    parameter set of the golden file, bit for bit against relu-server's answer;
  - INVALID_ARGUMENT for an unsupported dtype, data of the wrong length, a
    negative dimension and the parameters Keras refuses (its wording).
Exits 77 (ctest's skip) when the peer was not built (no Go toolchain).
"""

import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

import grpc  # noqa: E402

from relu_serve._proto import relu_pb2  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "data", "relu_golden_edges.json")
DTYPES = {"float32": (relu_pb2.DATA_TYPE_FLOAT32, "<f", "<I", 4),
          "float64": (relu_pb2.DATA_TYPE_FLOAT64, "<d", "<Q", 8)}


class Server:
    """A server process printing "gRPC listening on HOST:PORT"."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            if "gRPC listening on " in line:
                port = line.split("gRPC listening on ")[1].split()[0]
                self.target = "127.0.0.1:" + port.rsplit(":", 1)[1]
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError("%s did not start" % argv[0])
        self.channel = grpc.insecure_channel(self.target)
        self.apply = self.channel.unary_unary(
            "/relu.v1.ReluService/ApplyReLU",
            request_serializer=relu_pb2.ApplyReLURequest.SerializeToString,
            response_deserializer=relu_pb2.ApplyReLUResponse.FromString)

    def stop(self):
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def request(dtype, shape, data, params):
    r = relu_pb2.ApplyReLURequest()
    r.tensor.dtype = DTYPES[dtype][0] if isinstance(dtype, str) else dtype
    r.tensor.shape.extend(shape)
    r.tensor.data = data
    if params is not None:
        if params.get("max_value") is not None:
            r.params.max_value = float(params["max_value"])
        r.params.negative_slope = float(params.get("negative_slope", 0.0))
        r.params.threshold = float(params.get("threshold", 0.0))
    return r


def same(dtype, got_bits, want_bits):
    """Bit for bit, NaN by isnan."""
    _, ffmt, ifmt, _ = DTYPES[dtype]
    got = struct.unpack(ffmt, struct.pack(ifmt, got_bits))[0]
    want = struct.unpack(ffmt, struct.pack(ifmt, want_bits))[0]
    if math.isnan(want):
        return math.isnan(got)
    return got_bits == want_bits


def bits(dtype, data):
    _, _, ifmt, size = DTYPES[dtype]
    return [struct.unpack_from(ifmt, data, i)[0]
            for i in range(0, len(data), size)]


def check_golden(peer, failures):
    with open(GOLDEN) as f:
        cases = [c for c in json.load(f)["cases"] if c["dtype"] in DTYPES]
    for case in cases:
        dtype = case["dtype"]
        _, _, ifmt, _ = DTYPES[dtype]
        data = b"".join(struct.pack(ifmt, int(h, 16))
                        for h in case["input_hex"])
        want = [int(h, 16) for h in case["output_hex"]]
        answer = peer.apply(request(dtype, [len(want)], data, case["params"]),
                            timeout=10)
        got = bits(dtype, answer.tensor.data)
        if (answer.tensor.dtype != DTYPES[dtype][0] or
                list(answer.tensor.shape) != [len(want)] or
                len(got) != len(want) or
                not all(same(dtype, g, w) for g, w in zip(got, want))):
            failures.append("golden %s: got %s, want %s" % (
                case["name"], [hex(g) for g in got], case["output_hex"]))
    return len(cases)


def special_values(dtype, count):
    """Edge values, then random ones of every magnitude and sign."""
    ffmt, ifmt, size = DTYPES[dtype][1:]
    values = [0.0, -0.0, math.inf, -math.inf, math.nan, 6.0, -6.0, 2.5, 1.0,
              0.1, -0.1, 1e-45 if size == 4 else 5e-324, -1e-45, 3.4e38,
              -3.4e38, 0.5, 0.7, 1.5, 2.0, 3.0, 4.0, 10.0]
    rng = random.Random(15)
    data = bytearray(b"".join(struct.pack(ffmt, v) for v in values))
    while len(data) < count * size:
        if rng.random() < 0.5:
            v = rng.choice([-1, 1]) * rng.random() * rng.choice([1, 8, 64])
            data += struct.pack(ffmt, v)
        else:
            data += struct.pack(ifmt, rng.getrandbits(8 * size))
    return bytes(data[:count * size])


def check_against_relu_server(peer, relu, failures):
    with open(GOLDEN) as f:
        param_sets = {json.dumps(c["params"], sort_keys=True): c["params"]
                      for c in json.load(f)["cases"]}
    param_sets = list(param_sets.values()) + [None, {"max_value": math.inf}]
    count = 0
    for dtype in DTYPES:
        data = special_values(dtype, 4099)
        for params in param_sets:
            r = request(dtype, [4099], data, params)
            got = bits(dtype, peer.apply(r, timeout=10).tensor.data)
            want = bits(dtype, relu.apply(r, timeout=10).tensor.data)
            bad = [i for i, (g, w) in enumerate(zip(got, want))
                   if not same(dtype, g, w)]
            if len(got) != len(want) or bad:
                failures.append("%s %s: %d elements differ from relu-server, "
                                "first at %s" % (dtype, params, len(bad),
                                                 bad[:1]))
            count += 1
    return count


def check_refusals(peer, failures):
    f32 = struct.pack("<2f", -1.0, 1.0)
    rows = [
        ("float16 dtype", request(relu_pb2.DATA_TYPE_FLOAT16, [2],
                                  b"\0" * 4, None), "DATA_TYPE_FLOAT16"),
        ("unspecified dtype", request(relu_pb2.DATA_TYPE_UNSPECIFIED, [2],
                                      f32, None), "dtype"),
        ("short data", request("float32", [3], f32, None), "8 bytes"),
        ("negative dimension", request("float32", [-2], f32, None),
         "negative dimension"),
        ("overflowing shape", request("float32", [1 << 40, 1 << 40], f32,
                                      None), "shape"),
        ("negative max_value", request("float32", [2], f32,
                                       {"max_value": -1.0}),
         "max_value of a ReLU layer cannot be a negative value. "
         "Received: max_value=-1.0"),
        ("negative slope", request("float32", [2], f32,
                                   {"negative_slope": -1e-05}),
         "negative_slope of a ReLU layer cannot be a negative value. "
         "Received: negative_slope=-1e-05"),
        ("NaN threshold", request("float32", [2], f32,
                                  {"threshold": math.nan}),
         "threshold of a ReLU layer cannot be NaN. Received: threshold=nan"),
    ]
    for name, r, text in rows:
        try:
            peer.apply(r, timeout=10)
            failures.append("%s: answered OK" % name)
        except grpc.RpcError as e:
            if (e.code() != grpc.StatusCode.INVALID_ARGUMENT or
                    text not in e.details()):
                failures.append("%s: %s %r" % (name, e.code(), e.details()))
    # An empty tensor and a scalar are valid.
    empty = peer.apply(request("float32", [0, 3], b"", None), timeout=10)
    if empty.tensor.data or list(empty.tensor.shape) != [0, 3]:
        failures.append("empty tensor: %s" % empty)
    scalar = peer.apply(request("float32", [], struct.pack("<f", -2.0), None),
                        timeout=10)
    if scalar.tensor.data != struct.pack("<f", 0.0):
        failures.append("scalar: %r" % scalar.tensor.data)
    return len(rows) + 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True)
    parser.add_argument("--relu-server")
    args = parser.parse_args()
    if not os.access(args.peer, os.X_OK):
        print("SKIP: %s not built (no Go toolchain; see "
              "scripts/install-deps.sh)" % args.peer)
        return 77
    failures = []
    peer = Server([args.peer, "--grpc-address", "127.0.0.1:0"])
    relu = None
    try:
        n = check_golden(peer, failures)
        print("golden float32/float64 cases: %d" % n)
        if args.relu_server:
            relu = Server([args.relu_server, "--grpc-address", "127.0.0.1:0",
                           "--metrics-address", "off", "--http-address",
                           "off"])
            n = check_against_relu_server(peer, relu, failures)
            print("tensors compared with relu-server: %d" % n)
        n = check_refusals(peer, failures)
        print("refusal and shape rows: %d" % n)
    finally:
        peer.stop()
        if relu is not None:
            relu.stop()
    for f in failures:
        print("FAIL " + f)
    print("PASS" if not failures else "%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
