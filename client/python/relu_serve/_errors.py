"""The one exception type of relu_serve, made from gRPC errors."""

from typing import Optional

import grpc


class ReluServeError(Exception):
    """A call failed: `code` is the gRPC status code (grpc.StatusCode) and
    `details` the server's message, unchanged; str() of the error is that
    message, like the Keras layer's own error.

    Calls that fail with INVALID_ARGUMENT raise InvalidArgumentError, which
    is also a ValueError, as Keras raises for the same parameters.
    """

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code = code
        self.details = details

    def __repr__(self) -> str:
        return "%s(%s, %r)" % (type(self).__name__, self.code, self.details)


class InvalidArgumentError(ReluServeError, ValueError):
    """INVALID_ARGUMENT: the server refused the parameters or the tensor
    (e.g. "max_value of a ReLU layer cannot be a negative value. Received:
    max_value=-1.0")."""


def make_error(code: grpc.StatusCode,
               details: Optional[str]) -> ReluServeError:
    """The exception for a failed call with this status."""
    cls = (InvalidArgumentError if code == grpc.StatusCode.INVALID_ARGUMENT
           else ReluServeError)
    return cls(code, details or "")


def from_rpc_error(error: grpc.RpcError) -> ReluServeError:
    """The exception for a grpc.RpcError (sync or grpc.aio)."""
    # grpc.RpcError declares neither; every raised one has both.
    return make_error(error.code(), error.details())  # type: ignore
