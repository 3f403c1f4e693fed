"""The one exception type of relu_serve, made from gRPC errors."""

from typing import Optional

import grpc


class ReluServeError(Exception):
    """A call failed: `code` is the gRPC status code (grpc.StatusCode) and
    `details` the server's message, unchanged; str() of the error is that
    message, like the Keras layer's own error.

    Calls that fail with INVALID_ARGUMENT raise InvalidArgumentError, which
    is also a ValueError, as Keras raises for the same parameters.

    `traceparent` and `request_id` are what relu-server returned in its
    trailing metadata: the trace the call was logged under, with the
    server's span id, and the request id it was logged under (its
    x-request-id when the caller sent one, else the traceparent's trace id);
    None when it sent none.
    """

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code = code
        self.details = details
        self.traceparent: Optional[str] = None
        self.request_id: Optional[str] = None

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


def _trailer(error: grpc.RpcError, name: str) -> Optional[str]:
    """The error's trailing metadata value `name`, None when absent."""
    try:
        pairs = error.trailing_metadata() or ()  # type: ignore
    except Exception:  # pylint: disable=broad-except
        return None
    for key, value in pairs:
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return None


def from_rpc_error(error: grpc.RpcError) -> ReluServeError:
    """The exception for a grpc.RpcError (sync or grpc.aio)."""
    # grpc.RpcError declares neither; every raised one has both.
    result = make_error(error.code(), error.details())  # type: ignore
    result.traceparent = _trailer(error, "traceparent")
    # The server returns x-request-id when the caller sent one; otherwise the
    # request id it logged is the trace id of its traceparent.
    result.request_id = _trailer(error, "x-request-id")
    if result.request_id is None and result.traceparent is not None:
        parts = result.traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            result.request_id = parts[1]
    return result
