"""Every case of tests/data/relu_golden_edges.json, in its dtype, bit for bit
(NaN by isnan), through the blocking, asyncio and OIP clients."""

import asyncio

import numpy as np
import pytest

import relu_serve
import relu_serve.aio
import relu_serve.oip
from conftest import golden_cases

CASES = golden_cases()
BITS = {"float16": "<u2", "bfloat16": "<u2", "float32": "<u4",
        "float64": "<u8"}


def bits_of(hexes, dtype):
    return np.array([int(h, 16) for h in hexes], dtype=BITS[dtype])


def to_input(case):
    """The case's input as the array a user would pass, and apply's dtype."""
    bits = bits_of(case["input_hex"], case["dtype"])
    if case["dtype"] == "bfloat16":
        if relu_serve.HAVE_ML_DTYPES:
            import ml_dtypes  # pylint: disable=import-outside-toplevel
            return bits.view(ml_dtypes.bfloat16), None
        return bits, "bfloat16"
    return bits.view(case["dtype"]), None


def check(case, y):
    expected = bits_of(case["output_hex"], case["dtype"])
    want_dtype = (np.uint16 if case["dtype"] == "bfloat16"
                  and not relu_serve.HAVE_ML_DTYPES else case["dtype"])
    assert y.dtype == np.dtype(want_dtype)
    assert y.shape == expected.shape
    got = y.view(expected.dtype)
    # NaN: compared by "is NaN" only, as the contract says.
    as_float = (relu_serve.bfloat16_to_float32(got)
                if case["dtype"] == "bfloat16" else y.astype(np.float64))
    want_float = (relu_serve.bfloat16_to_float32(expected)
                  if case["dtype"] == "bfloat16"
                  else expected.view(case["dtype"]).astype(np.float64))
    nan = np.isnan(want_float)
    assert np.array_equal(np.isnan(as_float), nan), case["name"]
    assert np.array_equal(got[~nan], expected[~nan]), (
        case["name"], [hex(v) for v in got], case["output_hex"])


def params(case):
    p = case["params"]
    return dict(max_value=p["max_value"], negative_slope=p["negative_slope"],
                threshold=p["threshold"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_blocking(client, case):
    x, dtype = to_input(case)
    check(case, client.apply(x, dtype=dtype, **params(case)))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_oip(server, case):
    x, dtype = to_input(case)
    with relu_serve.oip.Client(server.target) as oip:
        check(case, oip.apply(x, dtype=dtype, **params(case)))


def test_golden_asyncio_all_in_flight(server):
    async def run():
        async with relu_serve.aio.Client(server.target) as aio:
            calls = []
            for case in CASES:
                x, dtype = to_input(case)
                calls.append(aio.apply(x, dtype=dtype, **params(case)))
            return await asyncio.gather(*calls)

    for case, y in zip(CASES, asyncio.run(run())):
        check(case, y)


def test_golden_in_two_dimensions_and_strided(client):
    # The same cases as a 2-D array, and as a strided view of a bigger one.
    for case in CASES:
        x, dtype = to_input(case)
        n = len(x)
        if n % 2:
            continue
        y = client.apply(x.reshape(2, n // 2), dtype=dtype, **params(case))
        assert y.shape == (2, n // 2)
        check(case, y.reshape(n))
        wide = np.repeat(x, 3)[::3]
        assert not wide.flags.c_contiguous
        check(case, client.apply(wide, dtype=dtype, **params(case)))


def test_tutorial_examples(client):
    x = np.array([-5.0, -2.0, 0.0, 3.0], dtype=np.float32)
    assert client.apply(x).tolist() == [0.0, 0.0, 0.0, 3.0]
    assert client.apply(x, max_value=2.0).tolist() == [0.0, 0.0, 0.0, 2.0]
    assert client.apply(x, negative_slope=2.0).tolist() == [-10.0, -4.0, 0.0,
                                                            3.0]
    y = client.apply(np.float32([-5.0, -1.5, 2.5, 3.0]), threshold=2.5)
    assert y.tolist() == [0.0, 0.0, 0.0, 3.0]
    assert np.signbit(y).tolist() == [True, True, False, False]  # -0.0, -0.0
