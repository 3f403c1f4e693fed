#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus (run once; the output is
committed). No protobuf or NumPy module needed: both formats are written by
hand here, which also lets seeds be slightly wrong on purpose."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + payload
    return key + varint(len(payload)) + payload


def tensor(dtype, shape, data, packed=True):
    body = field(1, 0, dtype) if dtype else b""
    if shape:
        if packed:
            body += field(2, 2, b"".join(varint(d) for d in shape))
        else:
            body += b"".join(field(2, 0, d) for d in shape)
    if data:
        body += field(3, 2, data)
    return body


def params(max_value=None, slope=None, threshold=None):
    body = b""
    if max_value is not None:
        body += field(1, 1, struct.pack("<d", max_value))
    if slope is not None:
        body += field(2, 1, struct.pack("<d", slope))
    if threshold is not None:
        body += field(3, 1, struct.pack("<d", threshold))
    return body


def request(t, p=None):
    out = field(1, 2, t) if t is not None else b""
    if p is not None:
        out += field(2, 2, p)
    return out


F32 = [-3.0, -1.0, -0.0, 0.0, 0.5, 1.0, 6.0, 7.5, float("inf"), float("-inf"),
       float("nan"), 1e-40]


def requests():
    f32 = struct.pack("<%df" % len(F32), *F32)
    f64 = struct.pack("<%dd" % len(F32), *F32)
    f16 = struct.pack("<12H", 0xC200, 0xBC00, 0x8000, 0, 0x3800, 0x3C00,
                      0x4600, 0x4780, 0x7C00, 0xFC00, 0x7E00, 0x0001)
    bf16 = struct.pack("<12H", 0xC040, 0xBF80, 0x8000, 0, 0x3F00, 0x3F80,
                       0x40C0, 0x40F0, 0x7F80, 0xFF80, 0x7FC0, 0x0001)
    yield "f32_plain", request(tensor(1, [12], f32))
    yield "f32_all_params", request(tensor(1, [3, 4], f32), params(6.0, 0.1, 0.5))
    yield "f64_slope", request(tensor(2, [12], f64), params(None, 0.2, None))
    yield "f16_max", request(tensor(3, [2, 6], f16), params(1.0, None, None))
    yield "bf16_threshold", request(tensor(4, [12], bf16), params(None, None, 1.0))
    yield "f32_unpacked_shape", request(tensor(1, [2, 6], f32, packed=False))
    yield "scalar", request(tensor(1, [], f32[:4]), params(0.0))
    yield "empty", request(tensor(1, [0, 7], b""))
    yield "unknown_dtype", request(tensor(9, [1], f32[:4]))
    yield "negative_dim", request(tensor(1, [-2, 3], f32))
    yield "overflow", request(tensor(2, [1 << 40, 1 << 40], b""))
    yield "short_data", request(tensor(1, [4], f32[:12]))
    yield "nan_param", request(tensor(1, [1], f32[:4]), params(float("nan")))
    yield "negative_param", request(tensor(1, [1], f32[:4]), params(None, -1.0))
    yield "missing_tensor", request(None, params(1.0))
    yield "big_max_tiny_threshold", request(
        tensor(2, [12], f64), params(1e308, 0.0, 5e-324))
    yield "inf_max", request(tensor(3, [12], f16), params(float("inf"), 0.5, 0.5))
    # Found by the fuzzer: a tensor length of 0 written in 10 bytes, which
    # protobuf refuses (lengths take at most 5); the wire parse accepted it.
    yield "long_tensor_length", b"\x0a" + b"\x80" * 9 + b"\x20"
    # Found by the fuzzer: a 5-byte tag with bits past 32, which protobuf
    # reads as its low 32 bits (field 16, varint); the shape after it was
    # counted short on the wire.
    # ModelInferRequest: model_name, one input (name, datatype, shape [2]),
    # raw_input_contents; then with an id, parameters and two raw entries.
    infer_input = field(1, 2, b"input") + field(2, 2, b"FP32") + field(
        3, 2, varint(2))
    infer = field(1, 2, b"relu") + field(5, 2, infer_input)
    yield "infer_raw", infer + field(7, 2, f32[:8])
    yield "infer_two_raw", field(2, 2, b"1") + field(7, 2, f32[:8]) + \
        field(3, 2, b"id-9") + infer + field(7, 2, b"") + field(
            4, 2, field(1, 2, b"threshold") + field(2, 2, field(4, 1,
                                                     struct.pack("<d", 0.5))))
    yield "tag_past_32_bits", b"\x80\x81\x80\x80\x20\x69" + request(
        tensor(1, [2, 6], f32))


def npy(descr, shape, data, version=1, fortran=False, pad=True):
    shape_s = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_s)
    len_size = 2 if version == 1 else 4
    total = 6 + 2 + len_size + len(header) + 1
    if pad:
        header += " " * ((64 - total % 64) % 64)
    header += "\n"
    h = header.encode("latin1")
    length = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + length + h + data


def npys():
    f32 = struct.pack("<6f", -1.0, 0.0, 1.5, float("nan"), float("inf"), -0.0)
    yield "f32_2x3", npy("<f4", [2, 3], f32)
    yield "f64_vec", npy("<f8", [3], struct.pack("<3d", -1.0, 2.0, 0.5))
    yield "f16_vec", npy("<f2", [2], struct.pack("<2H", 0xBC00, 0x3C00))
    yield "f32_big_endian", npy(">f4", [2], struct.pack(">2f", -1.0, 3.0))
    yield "scalar", npy("<f4", [], struct.pack("<f", -2.0))
    yield "empty", npy("<f4", [0, 4], b"")
    yield "v2", npy("<f4", [2], struct.pack("<2f", 1.0, -1.0), version=2)
    yield "v3", npy("<f8", [1], struct.pack("<d", 1.0), version=3)
    yield "fortran", npy("<f4", [2, 2], f32[:16], fortran=True)
    yield "int32", npy("<i4", [2], struct.pack("<2i", 1, 2))
    yield "short_data", npy("<f4", [4], f32[:8])
    yield "unpadded", npy("<f4", [1], f32[:4], pad=False)
    yield "bad_magic", b"\x93NUMPX\x01\x00" + npy("<f4", [1], f32[:4])[8:]


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in items:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("request_fuzzer", requests())
    write("npy_fuzzer", npys())
