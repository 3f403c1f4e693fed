"""relu_serve.aio.Client: the asyncio client (grpc.aio), same methods as
relu_serve.Client, awaited.

    async with relu_serve.aio.Client("localhost:50051") as client:
        ys = await asyncio.gather(*(client.apply(x) for x in xs))

Make it inside the event loop that uses it (grpc.aio channels belong to the
loop that is running when they are made). Encoding and decoding a tensor
(one copy each way) run on the loop's thread.
"""

from typing import Any, Optional, Sequence, Tuple

import grpc
import grpc.aio
import numpy as np

from relu_serve import _channel
from relu_serve._client import (APPLY_RELU, HEALTH_CHECK, RELU_SERVICE,
                                _CLIENT_DOC_OPTIONS, ChannelSettings,
                                ServingStatus, finish_apply, prepare_apply,
                                trace_metadata)
from relu_serve._errors import from_rpc_error
from relu_serve._proto import health_pb2

__all__ = ["Client"]

_engine_held = False


def _hold_aio_engine() -> None:
    """Keeps grpc.aio's engine (its completion queue and poller thread) for
    the life of the process.

    gRPC shuts the engine down when its last channel closes, and joins the
    poller thread then; in grpcio before grpc/grpc#40989 (Debian 12 has
    1.51) that join can hang forever when the poller is blocked writing its
    wake-up byte to a socket the event loop no longer reads, which many
    calls finishing just before the close make likely (seen here with 2000
    calls in flight on a loaded machine). One reference held from the first
    client on means the shutdown, and so the join, never happens; the
    engine serves every event loop (it binds to each).
    """
    global _engine_held  # pylint: disable=global-statement
    if not _engine_held:
        grpc.aio.init_grpc_aio()
        _engine_held = True


class Client:
    """A connection to relu-serve for asyncio code; any number of calls may
    be in flight on it. Close it with `await client.close()` or use
    `async with`."""

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
        _hold_aio_engine()
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
        self._channel = self._settings.channel(target, grpc.aio)
        self._apply = self._channel.unary_unary(APPLY_RELU)
        self._check = self._channel.unary_unary(HEALTH_CHECK)

    async def apply(self, x: Any, max_value: Optional[float] = None,
                    negative_slope: float = 0.0, threshold: float = 0.0, *,
                    dtype: Any = None, deadline: Optional[float] = None,
                    traceparent: Optional[str] = None,
                    tracestate: Optional[str] = None,
                    request_id: Optional[str] = None) -> np.ndarray:
        """As relu_serve.Client.apply: tf.keras.layers.ReLU(max_value,
        negative_slope, threshold)(x) in x's dtype, bit for bit, sending the
        trace headers given; raises InvalidArgumentError (also a ValueError)
        or ReluServeError."""
        prepared = prepare_apply(x, max_value, negative_slope, threshold,
                                 dtype)
        try:
            payload = await self._apply(
                prepared.payload, timeout=self._timeout(deadline),
                metadata=trace_metadata(traceparent, tracestate, request_id))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return finish_apply(prepared, payload)

    async def health(self, service: str = "", *,
                     deadline: Optional[float] = None) -> ServingStatus:
        """As relu_serve.Client.health."""
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            payload = await self._check(request.SerializeToString(),
                                        timeout=self._timeout(deadline))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return ServingStatus(health_pb2.HealthCheckResponse.FromString(
            payload).status)

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def _timeout(self, deadline: Optional[float]) -> Optional[float]:
        return self._settings.deadline if deadline is None else deadline
