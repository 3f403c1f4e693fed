"""The channel is configured as the C++ client's (client/src/client.cc):
round_robin, health checking of relu.v1.ReluService, retries of
UNAVAILABLE, 256 MiB messages; and round_robin gets past a dead address."""

import json
import socket

import numpy as np

import relu_serve
from relu_serve import _channel
from relu_serve._client import RELU_SERVICE


def options_of(**kwargs):
    client = relu_serve.Client("127.0.0.1:1", **kwargs)
    try:
        # pylint: disable-next=protected-access
        return dict(client._settings.options)
    finally:
        client.close()


def test_defaults_match_the_cpp_client():
    options = options_of()
    assert options["grpc.max_send_message_length"] == 256 << 20
    assert options["grpc.max_receive_message_length"] == 256 << 20
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.per_rpc_retry_buffer_size"] == 24 << 20
    assert options["grpc.service_config_disable_resolution"] == 1
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": RELU_SERVICE}
    (method,) = config["methodConfig"]
    assert method["name"] == [
        {"service": "relu.v1.ReluService"},
        {"service": "grpc.health.v1.Health", "method": "Check"}]
    assert method["retryPolicy"] == {
        "maxAttempts": 4, "initialBackoff": "0.100s", "maxBackoff": "2.000s",
        "backoffMultiplier": 2.0, "retryableStatusCodes": ["UNAVAILABLE"]}


def test_options_turn_off():
    options = options_of(retries=0, health_check_service="",
                         lb_policy="pick_first",
                         channel_options=[("grpc.keepalive_time_ms", 60000)])
    config = json.loads(options["grpc.service_config"])
    assert config == {"loadBalancingConfig": [{"pick_first": {}}]}
    assert options["grpc.enable_retries"] == 0
    assert options["grpc.keepalive_time_ms"] == 60000
    assert _channel.service_config("round_robin", "", 9, 0.1, 2, 2, [])
    assert json.loads(_channel.service_config(
        "round_robin", "", 9, 0.1, 2, 2, []))["methodConfig"][0][
            "retryPolicy"]["maxAttempts"] == 5


def test_round_robin_skips_a_dead_address(start_server, server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    second = start_server()
    target = "ipv4:127.0.0.1:%d,%s,%s" % (dead, server.target, second.target)
    with relu_serve.Client(target) as client:
        for _ in range(30):
            assert client.apply(np.float32([-1, 1])).tolist() == [0, 1]
        # Calls keep working when one live server goes away.
        second.process.kill()
        second.wait()
        for _ in range(30):
            assert client.apply(np.float32([2])).tolist() == [2]
