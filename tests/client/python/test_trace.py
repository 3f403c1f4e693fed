"""Trace headers: the client sends a traceparent, tracestate and x-request-id
when given; the server logs the call under them and returns its own
traceparent (same trace) and the request id, which a failed call's
exception carries."""

import asyncio
import json
import os
import tempfile

import numpy as np
import pytest

import relu_serve
import relu_serve.aio
import relu_serve.oip

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE_ID


@pytest.fixture
def logged_server(start_server):
    """A server logging every call to a file; yields (server, read_lines),
    read_lines() stopping the server first so the log is complete."""
    directory = tempfile.mkdtemp(prefix="relu-request-log-")
    path = os.path.join(directory, "requests.log")
    server = start_server("--request-log=all", "--request-log-file=" + path)

    def read_lines():
        assert server.stop() == 0
        with open(path) as f:
            return [json.loads(line) for line in f]

    yield server, read_lines
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(directory)


def test_sync_and_aio_clients_send_trace_headers(logged_server):
    server, read_lines = logged_server
    with relu_serve.Client(server.target) as client:
        y = client.apply(np.array([-1.0, 2.0], np.float32),
                         traceparent=TRACEPARENT, tracestate="k=v",
                         request_id='sync "1" \\')
        np.testing.assert_array_equal(y, [0.0, 2.0])
        client.apply(np.array([1.0], np.float32))  # no headers: its own ids

    async def call_aio():
        async with relu_serve.aio.Client(server.target) as client:
            await client.apply(np.array([3.0], np.float64),
                               traceparent=TRACEPARENT, request_id="aio-1")

    asyncio.run(call_aio())
    with relu_serve.oip.Client(server.target) as client:
        client.apply(np.array([1.0], np.float32), traceparent=TRACEPARENT)
    lines = read_lines()
    assert len(lines) == 4
    assert lines[0]["trace_id"] == TRACE_ID
    assert lines[0]["parent_id"] == "00f067aa0ba902b7"
    assert lines[0]["request_id"] == 'sync "1" \\'
    assert lines[1]["trace_id"] != TRACE_ID
    assert lines[1]["request_id"] == lines[1]["trace_id"]
    assert lines[2]["trace_id"] == TRACE_ID
    assert lines[2]["request_id"] == "aio-1"
    assert lines[2]["dtype"] == "float64"
    assert lines[3]["trace_id"] == TRACE_ID
    assert lines[3]["method"] == "ModelInfer"


def test_a_failed_call_carries_the_servers_ids(server):
    with relu_serve.Client(server.target) as client:
        with pytest.raises(relu_serve.InvalidArgumentError) as raised:
            client.apply([1.0], max_value=-1.0, traceparent=TRACEPARENT,
                         request_id="bad-1")
    error = raised.value
    assert error.traceparent.startswith("00-%s-" % TRACE_ID)
    assert error.traceparent.endswith("-01")
    assert error.request_id == "bad-1"


def test_without_a_request_id_the_trace_id_stands_for_it(server):
    with relu_serve.Client(server.target) as client:
        with pytest.raises(relu_serve.InvalidArgumentError) as raised:
            client.apply([1.0], max_value=-1.0, traceparent=TRACEPARENT)
    # The server sends no x-request-id back; it logged the call under the
    # trace id, which its traceparent carries.
    assert raised.value.request_id == TRACE_ID


def test_a_failed_call_without_trace_headers_still_gets_ids(server):
    # A caller that sent none gets the server's ids only when its call
    # fails (a successful call returns none: a trailer costs a small call
    # about 13 % of its calls/s), so that the failure can be found in the
    # request log.
    with relu_serve.Client(server.target) as client:
        with pytest.raises(relu_serve.InvalidArgumentError) as raised:
            client.apply([1.0], max_value=-1.0)
    error = raised.value
    assert error.traceparent is not None
    assert len(error.traceparent) == 55
    assert error.traceparent.endswith("-00")
    assert error.request_id == error.traceparent[3:35]
