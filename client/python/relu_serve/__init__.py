"""relu_serve: tf.keras.layers.ReLU computed by a relu-serve server, numpy in,
numpy out, bit for bit as Keras computes it.

    import relu_serve
    with relu_serve.Client("localhost:50051") as client:
        client.apply([-5.0, -2.0, 0.0, 3.0], max_value=2.0)  # [0. 0. 0. 2.]

- Client: blocking calls (apply, health); relu_serve.aio.Client: asyncio;
  relu_serve.oip.Client: the same over the Open Inference Protocol.
- float32, float64, float16 arrays as numpy has them; bfloat16 as
  ml_dtypes.bfloat16 when ml_dtypes is installed, otherwise as uint16 bit
  patterns with dtype="bfloat16" (bfloat16_from_float32 / bfloat16_to_float32
  convert).
- Errors: ReluServeError (gRPC code + the server's message); the
  INVALID_ARGUMENT ones are InvalidArgumentError, also a ValueError.
- Copies: a C-contiguous little-endian input is copied once, into the
  request bytes; the result once, out of the response bytes into a new
  writable array. Other inputs (strided, big-endian, another float type
  with dtype=...) take numpy's one conversion copy first.
"""

from relu_serve._client import Client, ServingStatus
from relu_serve._dtypes import (HAVE_ML_DTYPES, bfloat16_from_float32,
                                bfloat16_to_float32)
from relu_serve._errors import InvalidArgumentError, ReluServeError

__version__ = "0.1.0"

# help() and tracebacks name the public module.
for _public in (Client, ServingStatus, InvalidArgumentError, ReluServeError,
                bfloat16_from_float32, bfloat16_to_float32):
    _public.__module__ = __name__
del _public

__all__ = [
    "Client",
    "HAVE_ML_DTYPES",
    "InvalidArgumentError",
    "ReluServeError",
    "ServingStatus",
    "bfloat16_from_float32",
    "bfloat16_to_float32",
]
