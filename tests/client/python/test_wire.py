"""The hand-built request bytes equal protobuf's serialization, and the
response scanner reads what protobuf's parser reads."""

import numpy as np
import pytest

from relu_serve import _wire
from relu_serve._client import prepare_apply
from relu_serve._proto import grpc_service_pb2 as oip_pb2
from relu_serve._proto import relu_pb2


@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (1, 300, 2)])
@pytest.mark.parametrize("max_value", [None, 0.0, 6.0])
def test_request_is_protobufs_serialization(shape, max_value):
    x = np.arange(np.prod(shape, dtype=int), dtype=np.float32).reshape(shape)
    prepared = prepare_apply(x, max_value, 0.5, 1.5, None)
    expected = relu_pb2.ApplyReLURequest(
        tensor=relu_pb2.Tensor(dtype=relu_pb2.DATA_TYPE_FLOAT32,
                               shape=shape, data=x.tobytes()),
        params=relu_pb2.ReluParams(negative_slope=0.5, threshold=1.5))
    if max_value is not None:
        expected.params.max_value = max_value
    assert prepared.payload == expected.SerializeToString()


def test_big_varints():
    assert _wire.varint(0) == b"\x00"
    assert _wire.varint(300) == b"\xac\x02"
    x = np.zeros(1 << 20, dtype=np.float64)  # 8 MiB: a 4-byte length
    prepared = prepare_apply(x, None, 0.0, 0.0, None)
    parsed = relu_pb2.ApplyReLURequest.FromString(prepared.payload)
    assert parsed.tensor.data == x.tobytes()
    assert list(parsed.tensor.shape) == [1 << 20]


@pytest.mark.parametrize("shape", [[], [0], [4], [2, 2], [-1]])
def test_response_scanner_matches_protobuf(shape):
    message = relu_pb2.ApplyReLUResponse(tensor=relu_pb2.Tensor(
        dtype=relu_pb2.DATA_TYPE_FLOAT16, shape=shape, data=b"abcdefgh"))
    raw = _wire.decode_apply_response(message.SerializeToString())
    assert raw.dtype == relu_pb2.DATA_TYPE_FLOAT16
    assert raw.shape == shape
    assert bytes(raw.data) == b"abcdefgh"


def test_response_scanner_falls_back_on_unusual_layouts():
    # Unpacked shape and a repeated data field (the last one wins), which
    # protobuf accepts and never writes itself.
    tensor = (b"\x08\x01" + b"\x10\x02" + b"\x10\x01" + b"\x1a\x02xx" +
              b"\x1a\x08abcdefgh")
    payload = b"\x0a" + bytes([len(tensor)]) + tensor
    raw = _wire.decode_apply_response(payload)
    assert (raw.dtype, raw.shape, bytes(raw.data)) == (1, [2, 1], b"abcdefgh")
    assert _wire.decode_apply_response(b"").shape == []


def test_infer_request_and_response():
    request = oip_pb2.ModelInferRequest(model_name="relu")
    request.inputs.add(name="input", datatype="FP32", shape=[2])
    request.parameters["max_value"].double_param = 6.0
    data = np.float32([1, -1])
    parsed = oip_pb2.ModelInferRequest.FromString(
        _wire.encode_infer_request(request, data))
    assert list(parsed.raw_input_contents) == [data.tobytes()]
    del parsed.raw_input_contents[:]
    assert parsed == request

    response = oip_pb2.ModelInferResponse(model_name="relu", id="7")
    response.outputs.add(name="output", datatype="FP32", shape=[2])
    response.raw_output_contents.append(b"12345678")
    message, raw = _wire.decode_infer_response(response.SerializeToString())
    assert [bytes(r) for r in raw] == [b"12345678"]
    del response.raw_output_contents[:]
    assert message == response
