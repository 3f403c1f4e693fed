"""relu_serve.oip against relu-server's Open Inference Protocol service."""

import grpc
import numpy as np
import pytest

import relu_serve
import relu_serve.oip


@pytest.fixture(scope="module")
def oip(server):
    with relu_serve.oip.Client(server.target) as c:
        yield c


def test_liveness_readiness_metadata(oip):
    assert oip.server_live() is True
    assert oip.server_ready() is True
    assert oip.model_ready() is True
    assert oip.server_metadata().name == "relu-serve"
    meta = oip.model_metadata()
    assert meta.name == "relu"
    assert [i.name for i in meta.inputs] == ["input"]


def test_apply_shapes_and_dtypes(oip):
    for dtype in (np.float32, np.float64, np.float16):
        x = np.array([[-2.0, 0.5], [7.0, -0.0]], dtype=dtype)
        y = oip.apply(x, max_value=6.0)
        assert y.dtype == dtype and y.shape == (2, 2)
        assert y.tolist() == [[0.0, 0.5], [6.0, 0.0]]
    y = oip.apply(np.float32([-4.0, 2.0]), negative_slope=0.5)
    assert y.tolist() == [-2.0, 2.0]
    assert oip.apply(np.float32(-3.0)).shape == ()
    assert oip.apply(np.zeros((0, 3), np.float64)).shape == (0, 3)


def test_errors_are_keras_messages(oip):
    with pytest.raises(ValueError) as info:
        oip.apply(np.float32([1]), max_value=-1.0)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(info.value) == ("max_value of a ReLU layer cannot be a "
                               "negative value. Received: max_value=-1.0")
    with pytest.raises(ValueError, match="negative_slope=nan"):
        oip.apply(np.float32([1]), negative_slope=float("nan"))


def test_unknown_model_is_not_found(server):
    with relu_serve.oip.Client(server.target, model="nope") as c:
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.apply(np.float32([1]))
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        assert not isinstance(info.value, ValueError)
        with pytest.raises(relu_serve.ReluServeError) as info:
            c.model_ready()
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        assert "nope" in info.value.details
