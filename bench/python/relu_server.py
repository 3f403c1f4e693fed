#!/usr/bin/python3
"""relu.v1.ReluService in Python: the server someone would write in an afternoon.

Debian's python3-grpcio (sync server, thread pool) and python3-numpy; stubs from
`protoc --python_out` (CMake target relu_python_stubs) and generic handlers, as
Debian's python3-grpc-tools (1.14) is far older than its grpcio (1.51).

ApplyReLU accepts float32 only; it checks the shape against the data length and
applies the Keras formula with numpy. It is the benchmark's "instead" baseline,
not a second implementation of the spec: it is exact for plain ReLU, and is not
checked bit for bit against the spec's edge cases with parameters.

It also answers grpc.health.v1.Health Check/Watch with SERVING for every
service (relu-cli checks health on its channel before sending calls).
Prints `gRPC listening on HOST:PORT` once serving.
"""

import argparse
import concurrent.futures
import sys
import threading

import grpc
import numpy as np

SERVICE = "relu.v1.ReluService"
# grpc.health.v1.HealthCheckResponse{status: SERVING}, serialized by hand:
# field 1, varint, value 1.
HEALTH_SERVING = b"\x08\x01"


def make_relu_handler(relu_pb2):
    float32 = relu_pb2.DATA_TYPE_FLOAT32

    def apply_relu(request, context):
        if not request.HasField("tensor"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "tensor is missing from the request")
        tensor = request.tensor
        if tensor.dtype != float32:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "this server supports DATA_TYPE_FLOAT32 only; got %d"
                          % tensor.dtype)
        shape = list(tensor.shape)
        if any(d < 0 for d in shape):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "tensor.shape %s has a negative dimension" % shape)
        elements = 1
        for d in shape:
            elements *= d
        if len(tensor.data) != elements * 4:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "tensor.data has %d bytes; shape %s of float32 needs %d"
                          % (len(tensor.data), shape, elements * 4))
        x = np.frombuffer(tensor.data, dtype="<f4")
        p = request.params
        max_value = p.max_value if p.HasField("max_value") else None
        if max_value is not None and max_value < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "max_value must be >= 0")
        if p.negative_slope < 0 or p.threshold < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "negative_slope and threshold must be >= 0")
        if max_value is None and p.negative_slope == 0 and p.threshold == 0:
            y = np.maximum(x, np.float32(0))
        else:
            y = np.where(x >= p.threshold, x,
                         np.float32(p.negative_slope) * (x - np.float32(p.threshold)))
            if max_value is not None:
                y = np.minimum(y, np.float32(max_value))
            y = y.astype("<f4", copy=False)
        out = relu_pb2.ApplyReLUResponse()
        out.tensor.dtype = tensor.dtype
        out.tensor.shape.extend(shape)
        out.tensor.data = y.tobytes()
        return out

    return grpc.method_handlers_generic_handler(SERVICE, {
        "ApplyReLU": grpc.unary_unary_rpc_method_handler(
            apply_relu,
            request_deserializer=relu_pb2.ApplyReLURequest.FromString,
            response_serializer=relu_pb2.ApplyReLUResponse.SerializeToString),
    })


def make_health_handler():
    def check(_request, _context):
        return HEALTH_SERVING

    def watch(_request, context):
        yield HEALTH_SERVING
        done = threading.Event()
        context.add_callback(done.set)
        done.wait()

    # No (de)serializers: the methods see and return raw bytes.
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check),
        "Watch": grpc.unary_stream_rpc_method_handler(watch),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grpc-address", default="127.0.0.1:0",
                        help="host:port; port 0 picks a free one")
    parser.add_argument("--stubs-dir", required=True,
                        help="directory holding relu/v1/relu_pb2.py "
                             "(<build>/bench/python/gen)")
    parser.add_argument("--workers", type=int, default=16,
                        help="handler threads (each health Watch holds one)")
    parser.add_argument("--max-message-bytes", type=int, default=256 << 20)
    args = parser.parse_args()

    sys.path.insert(0, args.stubs_dir)
    from relu.v1 import relu_pb2  # pylint: disable=import-outside-toplevel

    options = [("grpc.max_receive_message_length", args.max_message_bytes),
               ("grpc.max_send_message_length", args.max_message_bytes),
               ("grpc.so_reuseport", 0)]
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=args.workers),
        handlers=[make_relu_handler(relu_pb2), make_health_handler()],
        options=options)
    port = server.add_insecure_port(args.grpc_address)
    if port == 0:
        sys.exit("relu_server.py: cannot listen on %s" % args.grpc_address)
    server.start()
    host = args.grpc_address.rsplit(":", 1)[0]
    print("gRPC listening on %s:%d" % (host, port), flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
