"""The four element types relu-serve computes in, and their numpy forms.

float32, float64 and float16 are numpy's own. bfloat16 is `ml_dtypes.bfloat16`
when ml_dtypes can be imported; without it, a bfloat16 tensor is a uint16
array of bit patterns, and the caller names the type with dtype="bfloat16".
"""

from typing import Any, NamedTuple, Optional

import numpy as np

try:  # Not in Debian 12; used when the user installed it.
    import ml_dtypes as _ml_dtypes
    BFLOAT16: Optional[np.dtype] = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the machine
    BFLOAT16 = None

HAVE_ML_DTYPES = BFLOAT16 is not None


class DType(NamedTuple):
    """One element type: name, relu.v1 enum value, OIP datatype, dtypes."""
    name: str          # "float32", ...
    proto: int         # relu.v1.DataType value
    oip: str           # Open Inference Protocol datatype ("FP32", ...)
    wire: np.dtype     # little-endian numpy dtype of the bytes on the wire
    result: np.dtype   # dtype of the array handed back


_UINT16 = np.dtype("<u2")
FLOAT32 = DType("float32", 1, "FP32", np.dtype("<f4"), np.dtype(np.float32))
FLOAT64 = DType("float64", 2, "FP64", np.dtype("<f8"), np.dtype(np.float64))
FLOAT16 = DType("float16", 3, "FP16", np.dtype("<f2"), np.dtype(np.float16))
# ml_dtypes' bfloat16 is native-endian: little-endian where gRPC runs.
BF16 = DType("bfloat16", 4, "BF16", BFLOAT16 if HAVE_ML_DTYPES else _UINT16,
             BFLOAT16 if HAVE_ML_DTYPES else np.dtype(np.uint16))

BY_NAME = {d.name: d for d in (FLOAT32, FLOAT64, FLOAT16, BF16)}
BY_PROTO = {d.proto: d for d in BY_NAME.values()}
BY_OIP = {d.oip: d for d in BY_NAME.values()}
_ALIASES = {"float": "float32", "double": "float64", "half": "float16",
            "bf16": "bfloat16"}


def resolve(array: np.ndarray, dtype: Any) -> DType:
    """The element type to send `array` as.

    `dtype` None takes the array's own dtype (float32, float64, float16, or
    ml_dtypes.bfloat16). dtype="bfloat16" with a uint16 array sends its bit
    patterns as they are. Raises TypeError for anything else (integers,
    complex, ...): the service computes in floating types only, and casting
    silently would hide which precision the layer ran in.
    """
    if dtype is not None:
        name = dtype if isinstance(dtype, str) else None
        if name is None:
            try:
                name = np.dtype(dtype).name
            except TypeError:
                name = str(dtype)
        name = _ALIASES.get(name, name)
        if name not in BY_NAME:
            raise TypeError(
                "dtype must be float32, float64, float16 or bfloat16; got %r"
                % (dtype,))
        chosen = BY_NAME[name]
        if chosen is BF16 and array.dtype.kind == "u" and array.itemsize == 2:
            return chosen
        if array.dtype.kind == "f" or (HAVE_ML_DTYPES
                                        and array.dtype == BFLOAT16):
            return chosen  # converted by numpy (one extra copy)
        raise TypeError(
            "cannot send a %s array as %s%s" % (
                array.dtype, chosen.name,
                "" if chosen is not BF16 else
                " (give float values, or uint16 bit patterns)"))
    if HAVE_ML_DTYPES and array.dtype == BFLOAT16:
        return BF16
    if array.dtype.kind == "f" and array.dtype.itemsize in (2, 4, 8):
        return BY_NAME["float%d" % (8 * array.dtype.itemsize)]
    if array.dtype.kind == "u" and array.itemsize == 2:
        raise TypeError(
            "a uint16 array needs dtype='bfloat16' to be sent as bfloat16 "
            "bit patterns")
    raise TypeError(
        "relu-serve computes in float32, float64, float16 or bfloat16; got a "
        "%s array (cast it, e.g. x.astype(numpy.float32), as the Keras layer "
        "would to its dtype)" % array.dtype)


def to_wire(array: np.ndarray, dtype: DType) -> np.ndarray:
    """`array` as C-contiguous little-endian elements of `dtype` (uint16 bit
    patterns for bfloat16 given as such, or without ml_dtypes).

    No copy when it is already so; otherwise numpy's one conversion copy.
    bfloat16 from float values (without ml_dtypes) is rounded to nearest even.
    """
    if dtype is BF16 and not HAVE_ML_DTYPES and array.dtype.kind == "f":
        return bfloat16_from_float32(array)
    if dtype is BF16 and array.dtype.kind == "u":
        return np.asarray(array, dtype=_UINT16, order="C")
    return np.asarray(array, dtype=dtype.wire, order="C")


def bfloat16_from_float32(x: Any) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of `x`, rounded to nearest, ties to even.

    Subnormals are kept and NaN stays a quiet NaN with its sign, as
    TensorFlow's bfloat16 does. For use without ml_dtypes.
    """
    bits = np.asarray(x, dtype="<f4", order="C").view("<u4")
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1)))
               >> 16).astype("<u2")
    nan = np.isnan(bits.view("<f4"))
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | np.uint32(0x0040)).astype("<u2")
    return rounded


def bfloat16_to_float32(bits: Any) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (exact: a bfloat16 is the upper
    half of a float32)."""
    b = np.asarray(bits, dtype="<u2", order="C")
    return (b.astype("<u4") << 16).view("<f4").astype(np.float32)


def result_dtype(wire: np.dtype, dtype: DType) -> np.dtype:
    """The dtype handed back for a tensor sent as `wire`: uint16 bit
    patterns for bit patterns sent, else `dtype`'s native form."""
    return np.dtype(np.uint16) if wire.kind == "u" else dtype.result
