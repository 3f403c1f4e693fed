#!/usr/bin/python3
"""Regenerates relu_serve/_proto/ from the project's proto/ directory.

    client/python/generate_protos.py [--out DIR] [--protoc PATH]

The generated modules are committed so that `pip install ./client/python`
and imports from the source tree need no protoc; tests/client/python/
test_generated.py regenerates them into a temporary directory and fails when
they differ from the committed ones (proto/ stays the one source of the API).

The compiler is Debian's protoc (protobuf-compiler, 3.21.12, the release of
python3-protobuf's runtime). Debian's python3-grpc-tools is not used: it
bundles protoc 3.5.1, which rejects the proto3 `optional` label that
relu.v1.ReluParams.max_value uses. No gRPC stubs are generated: the client
calls methods by the names the generated descriptors give
(relu_serve/_methods.py), with its own serializers for the tensor bytes.

Each file lands flat in the output directory under its proto's base name
(relu_pb2.py, health_pb2.py, grpc_service_pb2.py, with .pyi type stubs);
the protos import nothing from each other, so no import needs rewriting, and
each keeps its proto path (relu/v1/relu.proto, ...) as its descriptor name.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")
# health.proto comes from Debian's grpc-proto package, as for the server.
GRPC_PROTO_ROOT = "/usr/share/grpc-proto"
PROTOS = (
    "relu/v1/relu.proto",
    "grpc/health/v1/health.proto",
    "inference/grpc_service.proto",
)
DEFAULT_OUT = os.path.join(HERE, "relu_serve", "_proto")


def generate(out_dir: str, protoc: str = "protoc",
             proto_root: str = PROTO_ROOT) -> list:
    """Writes the modules into `out_dir`; returns the file names written."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [protoc, "--proto_path=" + proto_root,
             "--proto_path=" + GRPC_PROTO_ROOT, "--python_out=" + tmp,
             "--pyi_out=" + tmp] + list(PROTOS),
            check=True)
        os.makedirs(out_dir, exist_ok=True)
        for proto in PROTOS:
            base = proto[:-len(".proto")]
            for suffix in ("_pb2.py", "_pb2.pyi"):
                name = os.path.basename(base) + suffix
                shutil.copyfile(os.path.join(tmp, base + suffix),
                                os.path.join(out_dir, name))
                written.append(name)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--protoc", default=shutil.which("protoc") or "protoc")
    args = parser.parse_args()
    generate(args.out, args.protoc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
