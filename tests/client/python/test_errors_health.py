"""Errors: one exception type with the gRPC code and the server's message
unchanged (Keras' wording); INVALID_ARGUMENT is also a ValueError. Health."""

import socket

import grpc
import numpy as np
import pytest

import relu_serve

KERAS_MESSAGES = [
    (dict(max_value=-1.0),
     "max_value of a ReLU layer cannot be a negative value. "
     "Received: max_value=-1.0"),
    (dict(negative_slope=-0.1),
     "negative_slope of a ReLU layer cannot be a negative value. "
     "Received: negative_slope=-0.1"),
    (dict(threshold=-1.0),
     "threshold of a ReLU layer cannot be a negative value. "
     "Received: threshold=-1.0"),
    (dict(threshold=-1e-05),
     "threshold of a ReLU layer cannot be a negative value. "
     "Received: threshold=-1e-05"),
    (dict(max_value=float("-inf")),
     "max_value of a ReLU layer cannot be a negative value. "
     "Received: max_value=-inf"),
    (dict(threshold=float("nan")),
     "threshold of a ReLU layer cannot be NaN. Received: threshold=nan"),
    # Checked in Keras' order: max_value first.
    (dict(max_value=-2.0, negative_slope=-1.0, threshold=-1.0),
     "max_value of a ReLU layer cannot be a negative value. "
     "Received: max_value=-2.0"),
    (dict(negative_slope=-1.0, threshold=-1.0),
     "negative_slope of a ReLU layer cannot be a negative value. "
     "Received: negative_slope=-1.0"),
]


@pytest.mark.parametrize("params,message", KERAS_MESSAGES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_keras_messages(client, params, message, dtype):
    with pytest.raises(ValueError) as info:
        client.apply(np.zeros(3, dtype=dtype), **params)
    error = info.value
    assert isinstance(error, relu_serve.ReluServeError)
    assert isinstance(error, relu_serve.InvalidArgumentError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details == message
    assert str(error) == message


def test_allowed_edge_parameters(client):
    x = np.float32([-1.0, 0.5, 9.0])
    assert client.apply(x, max_value=float("inf")).tolist() == [0, 0.5, 9]
    assert client.apply(x, max_value=-0.0, threshold=-0.0).tolist() == [0] * 3


def test_types_the_service_does_not_compute_in(client):
    for x in ([1, 2], np.int32([1]), np.complex64([1]), ["a"]):
        with pytest.raises(TypeError):
            client.apply(x)
    with pytest.raises(TypeError, match="bfloat16"):
        client.apply(np.uint16([1]))
    with pytest.raises(TypeError):
        client.apply(np.float32([1]), dtype="int8")
    # An explicit dtype converts float input, as the Keras layer would.
    y = client.apply([-1.0, 2.0], dtype="float16")
    assert y.dtype == np.float16 and y.tolist() == [0.0, 2.0]


def test_bfloat16_from_floats(client):
    # Floats sent as bfloat16 are rounded to nearest even; the answer is
    # bfloat16 (uint16 bit patterns without ml_dtypes).
    x = np.float32([-1.0, 2.5, 1.00390625, 3.0])  # 1 + 2^-8: a tie, to even
    y = client.apply(x, dtype="bfloat16", max_value=2.75)
    if relu_serve.HAVE_ML_DTYPES:
        y = y.view(np.uint16)
    assert y.dtype == np.uint16
    assert [hex(v) for v in y] == ["0x0", "0x4020", "0x3f80", "0x4030"]
    assert relu_serve.bfloat16_to_float32(y).tolist() == [0, 2.5, 1, 2.75]
    nan = relu_serve.bfloat16_from_float32([float("nan"), -float("nan")])
    assert np.isnan(relu_serve.bfloat16_to_float32(nan)).all()
    assert np.signbit(relu_serve.bfloat16_to_float32(nan)).tolist() == [
        False, True]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_unavailable():
    with relu_serve.Client("127.0.0.1:%d" % free_port(), retries=0) as c:
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.apply(np.float32([1]))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert not isinstance(info.value, ValueError)


def test_message_over_the_limit_is_resource_exhausted(server):
    with relu_serve.Client(server.target, max_message_bytes=1 << 20) as c:
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.apply(np.zeros(1 << 20, dtype=np.float32))
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health(client):
    assert client.health() == relu_serve.ServingStatus.SERVING
    assert client.health("relu.v1.ReluService") is (
        relu_serve.ServingStatus.SERVING)
    assert str(client.health()) == "SERVING"
    with pytest.raises(relu_serve.ReluServeError) as info:
        client.health("nope")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_tls_files_checked_up_front(tmp_path):
    with pytest.raises(ValueError, match="together"):
        relu_serve.Client("127.0.0.1:1", tls_cert=str(tmp_path / "c.pem"))
    with pytest.raises(OSError):
        relu_serve.Client("127.0.0.1:1", tls_ca=str(tmp_path / "nope.pem"))
