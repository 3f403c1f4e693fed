"""relu_serve.oip.Client: the same numpy interface over the Open Inference
Protocol (KServe v2 gRPC, inference.GRPCInferenceService), which relu-server
serves next to relu.v1 and Triton / KServe servers speak.

    with relu_serve.oip.Client("localhost:50051") as client:
        y = client.apply(x, max_value=6.0)

The tensor travels in raw_input_contents / raw_output_contents with datatype
FP32, FP64, FP16 or BF16; the layer's arguments are request parameters
(max_value, negative_slope, threshold as double_param, each sent only when it
differs from the layer's default), as relu-server reads them. Against another
server, `model`, `version`, `input_name` name what it serves.
"""

from typing import Any, Optional, Sequence, Tuple

import grpc
import numpy as np

from relu_serve import _channel, _dtypes, _wire
from relu_serve._client import (_CLIENT_DOC_OPTIONS, ChannelSettings,
                                malformed, method_path, prepare_tensor,
                                to_array, trace_metadata)
from relu_serve._errors import from_rpc_error
from relu_serve._proto import grpc_service_pb2 as pb

__all__ = ["Client"]

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def _path(method: str) -> str:
    return method_path(pb.DESCRIPTOR, "GRPCInferenceService", method)


class Client:
    """A blocking Open Inference Protocol client with relu_serve's numpy
    interface. Thread-safe; close() it or use it as a context manager.

    Args (besides the channel options below):
      model, version: the model to call ("relu", "" = the server's choice).
      input_name: name of the input tensor ("input").
    """

    __doc__ += _CLIENT_DOC_OPTIONS.replace(
        '"relu.v1.ReluService"', '"inference.GRPCInferenceService"')

    def __init__(self, target: str, *, model: str = "relu",
                 version: str = "", input_name: str = "input",
                 deadline: Optional[float] = 10.0,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, retries: int = 3,
                 lb_policy: str = "round_robin",
                 health_check_service: str = "",
                 initial_backoff: float = 0.1, max_backoff: float = 2.0,
                 backoff_multiplier: float = 2.0,
                 max_message_bytes: int = _channel.MAX_MESSAGE_BYTES,
                 retry_buffer_bytes: int = _channel.RETRY_BUFFER_BYTES,
                 channel_options: Sequence[Tuple[str, Any]] = ()):
        self.target = target
        self.model = model
        self.version = version
        self.input_name = input_name
        self._settings = ChannelSettings(
            deadline=deadline, tls_ca=tls_ca, tls_cert=tls_cert,
            tls_key=tls_key, retries=retries, lb_policy=lb_policy,
            health_check_service=health_check_service,
            initial_backoff=initial_backoff, max_backoff=max_backoff,
            backoff_multiplier=backoff_multiplier,
            max_message_bytes=max_message_bytes,
            retry_buffer_bytes=retry_buffer_bytes,
            channel_options=channel_options, retry_services=[SERVICE])
        self._channel = self._settings.channel(target)
        self._infer = self._channel.unary_unary(_path("ModelInfer"))

    def apply(self, x: Any, max_value: Optional[float] = None,
              negative_slope: float = 0.0, threshold: float = 0.0, *,
              dtype: Any = None, deadline: Optional[float] = None,
              request_id: str = "", traceparent: Optional[str] = None,
              tracestate: Optional[str] = None) -> np.ndarray:
        """ModelInfer of `x` with the layer's arguments as parameters: the
        same contract as relu_serve.Client.apply (x's dtype and shape back,
        one copy each way; InvalidArgumentError / ReluServeError).
        `request_id` is the protocol's request id (ModelInferRequest.id);
        `traceparent` and `tracestate` are sent as W3C Trace Context
        metadata."""
        wire, chosen = prepare_tensor(x, dtype)
        request = pb.ModelInferRequest(model_name=self.model,
                                       model_version=self.version,
                                       id=request_id)
        request.inputs.add(name=self.input_name, datatype=chosen.oip,
                           shape=wire.shape)
        if max_value is not None:
            request.parameters["max_value"].double_param = float(max_value)
        for name, value in (("negative_slope", negative_slope),
                            ("threshold", threshold)):
            if value != 0.0:  # NaN too, for the server to refuse
                request.parameters[name].double_param = float(value)
        try:
            payload = self._infer(
                _wire.encode_infer_request(request, wire),
                timeout=self._timeout(deadline),
                metadata=trace_metadata(traceparent, tracestate, None))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        try:
            response, raw = _wire.decode_infer_response(payload)
        except Exception:
            raise malformed() from None
        if not response.outputs:
            raise malformed()
        output = response.outputs[0]
        shape = tuple(output.shape)
        if _dtypes.BY_OIP.get(output.datatype) is not chosen:
            raise malformed()
        if raw:
            return to_array(raw[0], wire.dtype, chosen, shape)
        # A server that answered in the typed field (FP32 / FP64 only).
        typed = (output.contents.fp32_contents if chosen.oip == "FP32" else
                 output.contents.fp64_contents)
        return to_array(
            memoryview(np.array(typed, dtype=chosen.wire)).cast("B"),
            chosen.wire, chosen, shape)

    def server_live(self, *, deadline: Optional[float] = None) -> bool:
        """ServerLive."""
        return self._unary("ServerLive", pb.ServerLiveRequest(),
                           pb.ServerLiveResponse, deadline).live

    def server_ready(self, *, deadline: Optional[float] = None) -> bool:
        """ServerReady (false while relu-server drains)."""
        return self._unary("ServerReady", pb.ServerReadyRequest(),
                           pb.ServerReadyResponse, deadline).ready

    def model_ready(self, *, deadline: Optional[float] = None) -> bool:
        """ModelReady of this client's model and version."""
        return self._unary("ModelReady", pb.ModelReadyRequest(
            name=self.model, version=self.version), pb.ModelReadyResponse,
                           deadline).ready

    def server_metadata(self, *, deadline: Optional[float] = None
                        ) -> pb.ServerMetadataResponse:
        """ServerMetadata (name, version, extensions)."""
        return self._unary("ServerMetadata", pb.ServerMetadataRequest(),
                           pb.ServerMetadataResponse, deadline)

    def model_metadata(self, *, deadline: Optional[float] = None
                       ) -> pb.ModelMetadataResponse:
        """ModelMetadata of this client's model and version."""
        return self._unary("ModelMetadata", pb.ModelMetadataRequest(
            name=self.model, version=self.version),
                           pb.ModelMetadataResponse, deadline)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _unary(self, method: str, request: Any, response_class: Any,
               deadline: Optional[float]) -> Any:
        call = self._channel.unary_unary(
            _path(method), request_serializer=type(request).SerializeToString,
            response_deserializer=response_class.FromString)
        try:
            return call(request, timeout=self._timeout(deadline))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _timeout(self, deadline: Optional[float]) -> Optional[float]:
        return self._settings.deadline if deadline is None else deadline
