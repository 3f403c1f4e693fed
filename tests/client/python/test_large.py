"""A 64 MiB tensor, and the copies numpy conversion makes (one each way)."""

import tracemalloc

import numpy as np

import relu_serve


def test_64_mib_tensor(client):
    n = (64 << 20) // 4
    rng = np.random.default_rng(16)
    x = rng.standard_normal(n, dtype=np.float32).reshape(1024, n // 1024)
    y = client.apply(x, max_value=1.5)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(y, np.clip(np.where(x > 0, x, 0), 0, 1.5))
    assert y.flags.writeable and y.flags.c_contiguous


def test_one_copy_each_way(client):
    # Python-visible allocations while a call runs: the request bytes (the
    # one copy out), the response bytes gRPC hands over, and the result
    # array (the one copy back). A further copy either way would add a
    # fourth tensor-sized block.
    size = 16 << 20
    x = np.full(size // 4, -1.0, dtype=np.float32)
    client.apply(x[:4])  # connect first
    tracemalloc.start()
    try:
        y = client.apply(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y[0] == 0.0
    assert 3 * size <= peak < 3.5 * size, peak / size
