"""A drain in the middle of load: two relu-servers behind one client
(round_robin over both addresses); one gets SIGTERM while calls are flowing,
drains and exits 0, the other takes over, and no call fails: the client's
health checking moves calls off the draining server when it turns
NOT_SERVING, and its retry policy resends the calls it refuses with
UNAVAILABLE meanwhile."""

import signal
import threading
import time
import urllib.request

import numpy as np

import relu_serve

THREADS = 4
CALLS_PER_PHASE = 500


def requests_total(server) -> float:
    url = "http://127.0.0.1:%d/metrics" % server.metrics_port
    with urllib.request.urlopen(url) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("relu_requests_total"))


class Load:
    """Threads calling apply in a loop; counts answers, keeps failures."""

    def __init__(self, client):
        self.client = client
        self.calls = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run)
                        for _ in range(THREADS)]
        for t in self.threads:
            t.start()

    def run(self):
        x = np.float32([-1.5, 0.5, 3.0])
        while not self.stopping.is_set():
            try:
                y = self.client.apply(x, max_value=2.0)
                ok = y.tolist() == [0.0, 0.5, 2.0]
                error = None if ok else "wrong answer %r" % y
            except relu_serve.ReluServeError as e:
                error = repr(e)
            with self.lock:
                if error:
                    self.failures.append(error)
                else:
                    self.calls += 1

    def wait_for(self, calls):
        # No time limit: ctest's TIMEOUT ends a run that never gets there.
        while True:
            with self.lock:
                if self.calls >= calls or self.failures:
                    return
            time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def test_drain_under_load_second_server_takes_over(start_server):
    flags = ("--drain-timeout-s=10", "--kernel-threads=1")
    leaving = start_server(*flags)
    staying = start_server(*flags)
    target = "ipv4:%s,%s" % (leaving.target, staying.target)
    with relu_serve.Client(target) as client:
        load = Load(client)
        try:
            # Both serve.
            while (requests_total(leaving) < CALLS_PER_PHASE / 4
                   or requests_total(staying) < CALLS_PER_PHASE / 4):
                load.wait_for(load.calls + 50)
                if load.failures:
                    break
            before = load.calls
            leaving.signal(signal.SIGTERM)
            code = leaving.wait()
            after_exit = load.calls
            load.wait_for(after_exit + CALLS_PER_PHASE)
        finally:
            load.stop()
    assert load.failures == [], "%d calls failed, first: %s" % (
        len(load.failures), load.failures[0])
    assert code == 0, leaving.log()
    assert "drained; exiting" in leaving.log()
    assert after_exit >= before
    assert load.calls >= after_exit + CALLS_PER_PHASE
    assert requests_total(staying) >= CALLS_PER_PHASE
