"""relu_serve.Client: tf.keras.layers.ReLU on a relu-serve server, numpy in,
numpy out."""

import enum
from typing import Any, Optional, Sequence, Tuple

import grpc
import numpy as np

from relu_serve import _channel, _dtypes, _wire
from relu_serve._errors import ReluServeError, from_rpc_error
from relu_serve._proto import health_pb2, relu_pb2


def method_path(file_descriptor, service: str, method: str) -> str:
    """"/package.Service/Method" of a method the descriptors define."""
    s = file_descriptor.services_by_name[service]
    return "/%s/%s" % (s.full_name, s.methods_by_name[method].name)


APPLY_RELU = method_path(relu_pb2.DESCRIPTOR, "ReluService", "ApplyReLU")
HEALTH_CHECK = method_path(health_pb2.DESCRIPTOR, "Health", "Check")
RELU_SERVICE = relu_pb2.DESCRIPTOR.services_by_name["ReluService"].full_name


class ServingStatus(enum.IntEnum):
    """grpc.health.v1.HealthCheckResponse.ServingStatus."""
    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3

    def __str__(self) -> str:
        return self.name


class Prepared:
    """A request ready to send: its bytes, and what the answer must be."""
    __slots__ = ("payload", "dtype", "wire", "shape")

    def __init__(self, payload: bytes, dtype: _dtypes.DType, wire: np.dtype,
                 shape: Tuple[int, ...]):
        self.payload = payload
        self.dtype = dtype
        self.wire = wire  # numpy dtype of the elements sent
        self.shape = shape


def prepare_tensor(x: Any, dtype: Any) -> Tuple[np.ndarray, _dtypes.DType]:
    """The input as wire-ready elements, and its element type."""
    array = x if isinstance(x, np.ndarray) else np.asarray(x)
    chosen = _dtypes.resolve(array, dtype)
    return _dtypes.to_wire(array, chosen), chosen


def prepare_apply(x: Any, max_value: Optional[float], negative_slope: float,
                  threshold: float, dtype: Any) -> Prepared:
    """Serialized ApplyReLURequest for `x` (one copy of a C-contiguous
    little-endian input)."""
    wire, chosen = prepare_tensor(x, dtype)
    params = _wire.params_message(max_value, negative_slope, threshold)
    payload = _wire.encode_apply_request(wire, chosen.proto, wire.shape,
                                         params)
    return Prepared(payload, chosen, wire.dtype, wire.shape)


def trace_metadata(traceparent: Optional[str], tracestate: Optional[str],
                   request_id: Optional[str]
                   ) -> Optional[Tuple[Tuple[str, str], ...]]:
    """The gRPC metadata that carries a call's trace headers: W3C Trace
    Context's traceparent and tracestate, and x-request-id, each sent when
    given (None or "" = not sent). None when there is none."""
    pairs = tuple((name, value) for name, value in (
        ("traceparent", traceparent), ("tracestate", tracestate),
        ("x-request-id", request_id)) if value)
    return pairs or None


def malformed() -> ReluServeError:
    return ReluServeError(grpc.StatusCode.INTERNAL,
                          "server answered with a malformed tensor")


def to_array(data: memoryview, wire: np.dtype, dtype: _dtypes.DType,
             shape: Tuple[int, ...]) -> np.ndarray:
    """A new, writable array holding `data`, elements of `wire` (the one copy
    of the way back), of the dtype handed back for `wire`; ReluServeError
    INTERNAL if the size does not match."""
    count = 1
    for d in shape:
        count *= d
    if len(data) != count * wire.itemsize:
        raise malformed()
    view = np.frombuffer(data, dtype=wire, count=count)
    return np.array(view, dtype=_dtypes.result_dtype(wire, dtype),
                    copy=True).reshape(shape)


def finish_apply(prepared: Prepared, payload: bytes) -> np.ndarray:
    """The result array of a serialized ApplyReLUResponse."""
    try:
        tensor = _wire.decode_apply_response(payload)
    except Exception:  # protobuf's DecodeError, whichever implementation
        raise malformed() from None
    if (tensor.dtype != prepared.dtype.proto
            or tuple(tensor.shape) != tuple(prepared.shape)):
        raise malformed()
    return to_array(tensor.data, prepared.wire, prepared.dtype,
                    prepared.shape)


class ChannelSettings:
    """The keyword options every client takes (see Client)."""

    def __init__(self, *, deadline: Optional[float], tls_ca: Optional[str],
                 tls_cert: Optional[str], tls_key: Optional[str],
                 retries: int, lb_policy: str, health_check_service: str,
                 initial_backoff: float, max_backoff: float,
                 backoff_multiplier: float, max_message_bytes: int,
                 retry_buffer_bytes: int,
                 channel_options: Sequence[Tuple[str, Any]],
                 retry_services: Sequence[str]):
        self.deadline = deadline
        self.credentials = _channel.credentials(tls_ca, tls_cert, tls_key)
        self.options = _channel.channel_options(
            lb_policy=lb_policy, health_check_service=health_check_service,
            retries=retries, initial_backoff_s=initial_backoff,
            max_backoff_s=max_backoff, backoff_multiplier=backoff_multiplier,
            max_message_bytes=max_message_bytes,
            retry_buffer_bytes=retry_buffer_bytes,
            retry_services=retry_services, extra=channel_options)

    def channel(self, target: str, module: Any = grpc) -> Any:
        """A grpc (or grpc.aio) channel to `target` with these settings."""
        if self.credentials is None:
            return module.insecure_channel(target, options=self.options)
        return module.secure_channel(target, self.credentials,
                                     options=self.options)


_CLIENT_DOC_OPTIONS = """
    Args:
      target: a gRPC target: "localhost:50051",
        "dns:///relu-headless.default.svc.cluster.local:50051",
        "ipv4:127.0.0.1:50051,127.0.0.1:50052".
      deadline: seconds each call may take (None: no deadline).
      tls_ca, tls_cert, tls_key: PEM files. None of them: plaintext. With
        tls_ca, the server is verified against that CA; with tls_cert and
        tls_key too, the client presents its certificate (mutual TLS).
      retries: attempts after the first for a call that fails UNAVAILABLE
        (a draining or unreachable server), with exponential backoff from
        initial_backoff to max_backoff seconds; gRPC caps attempts at 5 in
        all; 0 turns retries off. Calls over retry_buffer_bytes are not
        retried.
      lb_policy: "round_robin" spreads calls over every address the target
        resolves to; "pick_first" uses one.
      health_check_service: the grpc.health.v1 service the channel watches
        on every address; calls go only to addresses SERVING it, so a
        draining replica stops getting calls. "" turns it off. A server
        without a health service counts as healthy.
      max_message_bytes: largest message sent and received (relu-server's
        default limit is the same, 256 MiB).
      channel_options: further gRPC channel arguments, appended.
"""


class Client:
    """A connection to relu-serve (relu.v1.ReluService); blocking calls.

    Thread-safe: share one Client between threads; each call may run
    concurrently. Construction is cheap (the channel connects lazily); close()
    it, or use it as a context manager. The asyncio twin is
    relu_serve.aio.Client.
    """

    __doc__ += _CLIENT_DOC_OPTIONS

    def __init__(self, target: str, *, deadline: Optional[float] = 10.0,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, retries: int = 3,
                 lb_policy: str = "round_robin",
                 health_check_service: str = RELU_SERVICE,
                 initial_backoff: float = 0.1, max_backoff: float = 2.0,
                 backoff_multiplier: float = 2.0,
                 max_message_bytes: int = _channel.MAX_MESSAGE_BYTES,
                 retry_buffer_bytes: int = _channel.RETRY_BUFFER_BYTES,
                 channel_options: Sequence[Tuple[str, Any]] = ()):
        self.target = target
        self._settings = ChannelSettings(
            deadline=deadline, tls_ca=tls_ca, tls_cert=tls_cert,
            tls_key=tls_key, retries=retries, lb_policy=lb_policy,
            health_check_service=health_check_service,
            initial_backoff=initial_backoff, max_backoff=max_backoff,
            backoff_multiplier=backoff_multiplier,
            max_message_bytes=max_message_bytes,
            retry_buffer_bytes=retry_buffer_bytes,
            channel_options=channel_options, retry_services=[RELU_SERVICE])
        self._channel = self._settings.channel(target)
        self._apply = self._channel.unary_unary(APPLY_RELU)
        self._check = self._channel.unary_unary(HEALTH_CHECK)

    def apply(self, x: Any, max_value: Optional[float] = None,
              negative_slope: float = 0.0, threshold: float = 0.0, *,
              dtype: Any = None, deadline: Optional[float] = None,
              traceparent: Optional[str] = None,
              tracestate: Optional[str] = None,
              request_id: Optional[str] = None) -> np.ndarray:
        """tf.keras.layers.ReLU(max_value, negative_slope, threshold)(x),
        computed by the server in x's dtype, bit for bit as Keras does.

        Args:
          x: a numpy array, or anything numpy.asarray takes, of float32,
            float64, float16 or bfloat16 (ml_dtypes.bfloat16; without
            ml_dtypes, a uint16 array of bit patterns with dtype="bfloat16").
            Any shape; a 0-d array is a scalar.
          max_value, negative_slope, threshold: the layer's arguments
            (max_value None = unlimited).
          dtype: compute in this type instead of x's ("float32", "float64",
            "float16", "bfloat16"); float inputs are converted by numpy.
          deadline: seconds for this call (default: the client's).
          traceparent, tracestate: W3C Trace Context headers to send
            ("00-<trace-id>-<parent-id>-<flags>"), so the server's request
            log carries the caller's trace id (an invalid traceparent is
            ignored by the server, which starts a trace of its own).
          request_id: sent as x-request-id; the server logs the call under
            it.

        Returns:
          A new array of x's dtype (uint16 bit patterns for bfloat16 without
          ml_dtypes) and shape.

        Raises:
          InvalidArgumentError (a ValueError and a ReluServeError): the server
            refused the parameters or the tensor, with Keras' message.
          ReluServeError: any other failed call (UNAVAILABLE,
            DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...).
          TypeError: x is not of a floating type the service computes in.
        """
        prepared = prepare_apply(x, max_value, negative_slope, threshold,
                                 dtype)
        try:
            payload = self._apply(
                prepared.payload, timeout=self._timeout(deadline),
                metadata=trace_metadata(traceparent, tracestate, request_id))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return finish_apply(prepared, payload)

    def health(self, service: str = "", *,
               deadline: Optional[float] = None) -> ServingStatus:
        """The server's grpc.health.v1 status of `service` ("" is the
        server as a whole; "relu.v1.ReluService" the API).

        Raises ReluServeError (NOT_FOUND for a service the server does not
        know; UNAVAILABLE when it cannot be reached).
        """
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            payload = self._check(request.SerializeToString(),
                                  timeout=self._timeout(deadline))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return ServingStatus(health_pb2.HealthCheckResponse.FromString(
            payload).status)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _timeout(self, deadline: Optional[float]) -> Optional[float]:
        return self._settings.deadline if deadline is None else deadline
