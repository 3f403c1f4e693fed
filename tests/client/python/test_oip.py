"""relu_serve.oip against relu-server's Open Inference Protocol service."""

from concurrent import futures

import grpc
import numpy as np
import pytest

import relu_serve
import relu_serve.oip
from relu_serve._proto import grpc_service_pb2 as pb


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


def test_another_oip_server_answering_in_typed_fields():
    # A stand-in for another Open Inference Protocol server (as Triton may
    # answer): typed fp32_contents instead of raw_output_contents. It also
    # shows what the client sends.
    seen = []

    def infer(request, context):
        del context
        seen.append(request)
        x = np.frombuffer(request.raw_input_contents[0], dtype="<f4")
        response = pb.ModelInferResponse(model_name=request.model_name,
                                         id=request.id)
        out = response.outputs.add(name="y", datatype="FP32",
                                   shape=request.inputs[0].shape)
        out.contents.fp32_contents.extend(np.maximum(x, 0).tolist())
        return response

    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(
            infer, request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=pb.ModelInferResponse.SerializeToString)})
    fake = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                       handlers=[handler])
    port = fake.add_insecure_port("127.0.0.1:0")
    fake.start()
    try:
        with relu_serve.oip.Client("127.0.0.1:%d" % port, model="m",
                                   version="3", input_name="x") as c:
            y = c.apply(np.float32([[-1, 2], [3, -4]]), max_value=6.0,
                        request_id="r1")
    finally:
        fake.stop(None)
    assert y.dtype == np.float32 and y.tolist() == [[0, 2], [3, 0]]
    (request,) = seen
    assert (request.model_name, request.model_version, request.id) == (
        "m", "3", "r1")
    assert [(i.name, i.datatype, list(i.shape)) for i in request.inputs] == [
        ("x", "FP32", [2, 2])]
    assert dict(request.parameters) == {
        "max_value": pb.InferParameter(double_param=6.0)}
