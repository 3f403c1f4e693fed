"""The asyncio client with many calls in flight on one channel."""

import asyncio

import grpc
import numpy as np
import pytest

import relu_serve
import relu_serve.aio

CALLS = 2000


def test_many_calls_in_flight(server):
    async def run():
        async with relu_serve.aio.Client(server.target) as c:
            dtypes = (np.float32, np.float64, np.float16)
            inputs = [np.array([-float(i), i % 7, -0.0], dtype=dtypes[i % 3])
                      for i in range(CALLS)]
            outputs = await asyncio.gather(
                *(c.apply(x, max_value=5.0) for x in inputs))
            return inputs, outputs

    inputs, outputs = asyncio.run(run())
    assert len(outputs) == CALLS
    for i, (x, y) in enumerate(zip(inputs, outputs)):
        assert y.dtype == x.dtype
        assert y.tolist() == [0.0, min(i % 7, 5), 0.0]


def test_errors_and_health(server):
    async def run():
        async with relu_serve.aio.Client(server.target) as c:
            assert await c.health() == relu_serve.ServingStatus.SERVING
            results = await asyncio.gather(
                c.apply(np.float32([1]), negative_slope=-0.1),
                c.apply(np.float32([-1])),
                c.health("nope"), return_exceptions=True)
            return results

    bad, good, unknown = asyncio.run(run())
    assert isinstance(bad, ValueError)
    assert isinstance(bad, relu_serve.ReluServeError)
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(bad) == ("negative_slope of a ReLU layer cannot be a negative "
                        "value. Received: negative_slope=-0.1")
    assert good.tolist() == [0.0]
    assert isinstance(unknown, relu_serve.ReluServeError)
    assert unknown.code == grpc.StatusCode.NOT_FOUND
