"""Fixtures of the relu_serve tests: the real relu-server binary on loopback.

    /usr/bin/python3 -m pytest tests/client/python --relu-server=build/server/relu-server

(ctest runs this as client.python.) The package is imported from the source
tree, client/python.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))
PACKAGE_DIR = os.path.join(REPO, "client", "python")
GOLDEN = os.path.join(REPO, "tests", "data", "relu_golden_edges.json")
sys.path.insert(0, PACKAGE_DIR)

_LISTENING = re.compile(r"(gRPC|metrics) listening on (\S+):(\d+)\n")


def pytest_addoption(parser):
    parser.addoption("--relu-server", default=os.environ.get("RELU_SERVER"),
                     help="path of the relu-server binary")


class ServerProcess:
    """A relu-server process on 127.0.0.1 (port 0 unless given), its log in
    a temporary file. Started when constructed: returns once the server logs
    "gRPC listening on HOST:PORT" (its last start-up line)."""

    def __init__(self, binary: str, args: List[str] = ()):
        args = list(args)
        if not any(a.startswith("--grpc-address") for a in args):
            args.append("--grpc-address=127.0.0.1:0")
        if not any(a.startswith("--metrics-address") for a in args):
            args.append("--metrics-address=127.0.0.1:0")
        if not any(a.startswith("--http-address") for a in args):
            args.append("--http-address=127.0.0.1:0")
        self._log = tempfile.NamedTemporaryFile(prefix="relu-server-log-",
                                                delete=False)
        self.process = subprocess.Popen([binary] + args, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.port = -1
        self.metrics_port = -1
        # No time limit here: ctest's TIMEOUT ends a run that never starts.
        while self.port < 0:
            for what, _, port in _LISTENING.findall(self.log()):
                if what == "gRPC":
                    self.port = int(port)
                else:
                    self.metrics_port = int(port)
            if self.port < 0:
                if self.process.poll() is not None:
                    raise RuntimeError("relu-server exited %d:\n%s" % (
                        self.process.returncode, self.log()))
                time.sleep(0.02)

    @property
    def target(self) -> str:
        return "127.0.0.1:%d" % self.port

    def log(self) -> str:
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self) -> int:
        return self.process.wait()

    def stop(self) -> Optional[int]:
        """SIGTERM, wait; the exit code (0 after a complete drain)."""
        self.signal(signal.SIGTERM)
        code = self.wait()
        self.remove_log()
        return code

    def remove_log(self) -> None:
        if os.path.exists(self._log.name):
            os.unlink(self._log.name)


@pytest.fixture(scope="session")
def server_binary(request) -> str:
    path = request.config.getoption("--relu-server")
    if not path:
        pytest.exit("--relu-server=PATH (or RELU_SERVER) is required", 2)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def start_server(server_binary):
    """A factory: start_server(*flags) -> ServerProcess, stopped at the end
    of the session unless the test stopped it."""
    started = []

    def start(*args: str) -> ServerProcess:
        server = ServerProcess(server_binary, list(args))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server) -> ServerProcess:
    """One relu-server with its defaults, shared by the session."""
    return start_server()


@pytest.fixture(scope="session")
def client(server):
    import relu_serve
    with relu_serve.Client(server.target) as c:
        yield c


def golden_cases():
    with open(GOLDEN) as f:
        return json.load(f)["cases"]
