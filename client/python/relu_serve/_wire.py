"""Request bytes built around the tensor, and tensors read from response bytes.

protobuf's Python API would copy a tensor three times on the way out (numpy to
bytes, bytes into the message, the message serialized) and twice on the way
in. Here the small fields are serialized by the generated classes and the
tensor's bytes are placed after them as the `data` field (its number taken
from the descriptor), so the tensor is copied once, straight into the request
bytes; a response is scanned for the tensor's fields and its data is read
where the response bytes hold it. tests/client/python/test_wire.py checks
both against protobuf's own serialization and parsing.
"""

from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from relu_serve._proto import grpc_service_pb2, relu_pb2

_LEN = 2     # wire type of bytes / strings / messages / packed fields
_VARINT = 0
_I64 = 1
_I32 = 5


def _field(message_class, name: str) -> int:
    return message_class.DESCRIPTOR.fields_by_name[name].number


def varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative int."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


_REQ_TENSOR = _tag(_field(relu_pb2.ApplyReLURequest, "tensor"), _LEN)
_REQ_PARAMS = _tag(_field(relu_pb2.ApplyReLURequest, "params"), _LEN)
_TENSOR_DATA = _tag(_field(relu_pb2.Tensor, "data"), _LEN)
_RESP_TENSOR = _field(relu_pb2.ApplyReLUResponse, "tensor")
_T_DTYPE = _field(relu_pb2.Tensor, "dtype")
_T_SHAPE = _field(relu_pb2.Tensor, "shape")
_T_DATA = _field(relu_pb2.Tensor, "data")
_OIP_RAW_INPUT = _tag(
    _field(grpc_service_pb2.ModelInferRequest, "raw_input_contents"), _LEN)
_OIP_RAW_OUTPUT = _field(grpc_service_pb2.ModelInferResponse,
                         "raw_output_contents")


class WireError(Exception):
    """Bytes that this module's scanner does not read (not a protobuf error:
    the caller falls back to protobuf's parser)."""


def _read_varint(buf: memoryview, pos: int) -> Tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def fields(buf: memoryview
           ) -> Iterator[Tuple[int, int, Optional[int], int, int]]:
    """Yields (number, wire_type, value, start, end) of each top-level field:
    value is the int of a varint / fixed field; start:end the payload of a
    length-delimited one."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, wire_type, value, pos, pos
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > end:
                raise WireError("truncated field")
            yield number, wire_type, None, pos, pos + length
            pos += length
        elif wire_type == _I64:
            pos += 8
            yield number, wire_type, None, pos - 8, pos
        elif wire_type == _I32:
            pos += 4
            yield number, wire_type, None, pos - 4, pos
        else:
            raise WireError("unsupported wire type %d" % wire_type)
        if pos > end:
            raise WireError("truncated field")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def encode_apply_request(data: np.ndarray, proto_dtype: int,
                         shape: Sequence[int],
                         params: relu_pb2.ReluParams) -> bytes:
    """Serialized relu.v1.ApplyReLURequest; `data` (C-contiguous,
    little-endian) is copied once, into the returned bytes."""
    header = relu_pb2.Tensor(dtype=proto_dtype,
                             shape=shape).SerializeToString()
    nbytes = data.nbytes
    # Empty data is left out, as protobuf leaves out an empty proto3 field.
    data_field = ((_TENSOR_DATA, varint(nbytes), memoryview(data).cast("B"))
                  if nbytes else ())
    tensor_len = len(header) + sum(len(part) for part in data_field)
    params_bytes = params.SerializeToString()
    return b"".join((_REQ_TENSOR, varint(tensor_len), header) + data_field +
                    (_REQ_PARAMS, varint(len(params_bytes)), params_bytes))


class RawTensor:
    """A response tensor: dtype enum value, shape, and where its data lies
    in the response bytes (no copy made)."""
    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype: int, shape: List[int], data: memoryview):
        self.dtype = dtype
        self.shape = shape
        self.data = data


def decode_apply_response(payload: bytes) -> RawTensor:
    """The tensor of a serialized relu.v1.ApplyReLUResponse, its data a view
    of `payload`. Falls back to protobuf's parser (which copies) on a layout
    the scanner does not read; raises protobuf's DecodeError on bytes that
    are not a response at all."""
    buf = memoryview(payload)
    try:
        tensor = None
        for number, wire_type, _, start, end in fields(buf):
            if number == _RESP_TENSOR:
                if wire_type != _LEN or tensor is not None:
                    raise WireError("unexpected tensor field")
                tensor = (start, end)
        if tensor is None:
            return RawTensor(0, [], memoryview(b""))
        dtype, shape, data = 0, [], None
        body = buf[tensor[0]:tensor[1]]
        for number, wire_type, value, start, end in fields(body):
            if number == _T_DTYPE and wire_type == _VARINT:
                dtype = value
            elif number == _T_SHAPE and wire_type == _LEN:
                packed = body[start:end]
                pos = 0
                while pos < len(packed):
                    dim, pos = _read_varint(packed, pos)
                    shape.append(_signed64(dim))
            elif number == _T_SHAPE and wire_type == _VARINT:
                shape.append(_signed64(value))
            elif number == _T_DATA and wire_type == _LEN:
                if data is not None:
                    raise WireError("repeated data field")
                data = body[start:end]
            else:
                raise WireError("unexpected field %d" % number)
        return RawTensor(dtype, shape,
                         data if data is not None else memoryview(b""))
    except WireError:
        message = relu_pb2.ApplyReLUResponse.FromString(payload)
        return RawTensor(message.tensor.dtype, list(message.tensor.shape),
                         memoryview(message.tensor.data))


def encode_infer_request(request: grpc_service_pb2.ModelInferRequest,
                         data: np.ndarray) -> bytes:
    """Serialized inference.ModelInferRequest: `request` (without
    raw_input_contents) followed by `data` as raw_input_contents[0], copied
    once. Protobuf reads a field wherever it appears in the message."""
    nbytes = data.nbytes
    return b"".join((request.SerializeToString(), _OIP_RAW_INPUT,
                     varint(nbytes),
                     memoryview(data).cast("B") if nbytes else b""))


def decode_infer_response(
        payload: bytes
) -> Tuple[grpc_service_pb2.ModelInferResponse, List[memoryview]]:
    """The response without its raw_output_contents, and those as views of
    `payload` (no copy of the tensor bytes into Python objects)."""
    buf = memoryview(payload)
    raw: List[memoryview] = []
    rest: List[memoryview] = []
    try:
        pos = 0
        for number, wire_type, _, start, end in fields(buf):
            if number == _OIP_RAW_OUTPUT and wire_type == _LEN:
                raw.append(buf[start:end])  # its key and length dropped
            else:
                rest.append(buf[pos:end])
            pos = end
    except WireError:
        message = grpc_service_pb2.ModelInferResponse.FromString(payload)
        raw = [memoryview(r) for r in message.raw_output_contents]
        del message.raw_output_contents[:]
        return message, raw
    message = grpc_service_pb2.ModelInferResponse.FromString(
        b"".join(rest))
    return message, raw


def params_message(max_value: Optional[float], negative_slope: float,
                   threshold: float) -> relu_pb2.ReluParams:
    """relu.v1.ReluParams of the layer's arguments."""
    params = relu_pb2.ReluParams(negative_slope=float(negative_slope),
                                 threshold=float(threshold))
    if max_value is not None:
        params.max_value = float(max_value)
    return params
