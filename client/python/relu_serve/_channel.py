"""Channel options and credentials, the same as the C++ client's
(client/src/client.cc): round_robin over every address the target resolves
to, client-side health checking of relu.v1.ReluService, retries of
UNAVAILABLE through the service config's retry policy, 256 MiB messages."""

import json
from typing import List, Optional, Sequence, Tuple

import grpc

MAX_MESSAGE_BYTES = 256 << 20
RETRY_BUFFER_BYTES = 24 << 20


def service_config(lb_policy: str, health_check_service: str, retries: int,
                   initial_backoff_s: float, max_backoff_s: float,
                   backoff_multiplier: float,
                   retry_services: Sequence[str]) -> str:
    """The channel's service config, as JSON."""
    config: dict = {"loadBalancingConfig": [{lb_policy: {}}]}
    if health_check_service:
        config["healthCheckConfig"] = {"serviceName": health_check_service}
    if retries >= 1:
        names = [{"service": s} for s in retry_services]
        names.append({"service": "grpc.health.v1.Health", "method": "Check"})
        config["methodConfig"] = [{
            "name": names,
            "retryPolicy": {
                # gRPC counts the first attempt and caps the total at 5.
                "maxAttempts": min(retries + 1, 5),
                "initialBackoff": "%.3fs" % initial_backoff_s,
                "maxBackoff": "%.3fs" % max_backoff_s,
                "backoffMultiplier": backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]
    return json.dumps(config)


def channel_options(*, lb_policy: str, health_check_service: str,
                    retries: int, initial_backoff_s: float,
                    max_backoff_s: float, backoff_multiplier: float,
                    max_message_bytes: int, retry_buffer_bytes: int,
                    retry_services: Sequence[str],
                    extra: Sequence[Tuple[str, object]] = ()
                    ) -> List[Tuple[str, object]]:
    """gRPC channel arguments for grpc.insecure_channel / secure_channel."""
    options: List[Tuple[str, object]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.service_config", service_config(
            lb_policy, health_check_service, retries, initial_backoff_s,
            max_backoff_s, backoff_multiplier, retry_services)),
        # The config above is the one in force, even if DNS offers one.
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1 if retries >= 1 else 0),
        ("grpc.per_rpc_retry_buffer_size", retry_buffer_bytes),
    ]
    options.extend(extra)
    return options


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def credentials(tls_ca: Optional[str], tls_cert: Optional[str],
                tls_key: Optional[str]) -> Optional[grpc.ChannelCredentials]:
    """None for plaintext; TLS when any file is given (PEM paths): the
    server verified against `tls_ca` (the system roots when None), and with
    `tls_cert` and `tls_key` the client's certificate presented (mutual
    TLS). Raises ValueError when only one of cert and key is given, OSError
    when a file cannot be read."""
    if tls_ca is None and tls_cert is None and tls_key is None:
        return None
    if (tls_cert is None) != (tls_key is None):
        raise ValueError(
            "TLS client certificate and key must be given together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls_ca) if tls_ca else None,
        private_key=_read(tls_key) if tls_key else None,
        certificate_chain=_read(tls_cert) if tls_cert else None)
