# relu-serve container image: relu-server (the entrypoint) and relu-cli.
#
#   docker build -t relu-serve:0.1.0 .
#   docker run --rm -p 50051:50051 -p 8000:8000 -p 9464:9464 relu-serve:0.1.0
#   docker run --rm --network host relu-serve:0.1.0 --grpc-address=127.0.0.1:50051
#
# Two stages: `builder` has the -dev packages, builds both binaries and runs
# the kernel and batcher unit tests (a failing test fails the build); the
# runtime stage gets only the Debian packages owning the shared libraries the
# two binaries load (found with ldd + dpkg -S, so the list cannot go stale).
# BASE is any Debian 12 (bookworm) image, e.g. a locally debootstrapped one
# where no registry is reachable: --build-arg BASE=localhost/debian:bookworm.
# No `# syntax=` line on purpose: it would pull a frontend image.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      grpc-proto libssl-dev zlib1g-dev \
      libtbb-dev libspdlog-dev libcli11-dev \
      prometheus-cpp-dev libcivetweb-dev civetweb \
      libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev \
      libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The unit tests run here: pure computation, no network, a few seconds.
ARG UNIT_TESTS="relu_kernel_golden_test relu_kernel_simd_vs_scalar_test relu_kernel_kernel_test relu_kernel_params_test relu_kernel_default_path_test relu_batching_test"
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRELU_BUILD_TESTS=ON \
 && cmake --build /build -j"$(nproc)" --target relu-server relu-cli ${UNIT_TESTS} \
 && for t in ${UNIT_TESTS}; do \
      exe=$(find /build/tests -type f -name "$t" -perm -u+x) \
      && [ -n "$exe" ] && "$exe" --gtest_brief=1 || exit 1; \
    done
# The binaries, stripped, and the packages that own their shared libraries.
RUN mkdir -p /out/bin \
 && cp /build/server/relu-server /build/client/relu-cli /out/bin/ \
 && strip --strip-unneeded /out/bin/* \
 && for lib in $(ldd /out/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do \
      real=$(realpath "$lib"); \
      { dpkg -S "$lib" || dpkg -S "$real" || dpkg -S "${real#/usr}"; } 2>/dev/null \
        | head -n1 | cut -d: -f1 | grep . || { echo "no package owns $lib" >&2; exit 1; }; \
    done | sort -u > /out/runtime-packages \
 && cat /out/runtime-packages

FROM ${BASE}
ARG BASE
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="relu-serve" \
      org.opencontainers.image.description="tf.keras.layers.ReLU as a gRPC service (relu.v1.ReluService): relu-server and relu-cli" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="relu-serve" \
      org.opencontainers.image.base.name="${BASE}"
COPY --from=builder /out/runtime-packages /usr/local/share/relu-serve/runtime-packages
RUN apt-get update \
 && xargs -a /usr/local/share/relu-serve/runtime-packages \
      apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
      /usr/share/doc /usr/share/man \
 && groupadd --system --gid 10001 relu \
 && useradd --system --uid 10001 --gid relu --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin relu
COPY --from=builder /out/bin/relu-server /out/bin/relu-cli /usr/local/bin/
# Fails the build if a shared library is missing.
RUN ! ldd /usr/local/bin/relu-server /usr/local/bin/relu-cli | grep 'not found' \
 && relu-server --help >/dev/null && relu-cli --help >/dev/null

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# gRPC, the Open Inference Protocol over HTTP/REST, metrics.
EXPOSE 50051 8000 9464
# Asks the gRPC health service on the port (or Unix socket) RELU_GRPC_ADDRESS names (default
# 50051). Kubernetes ignores this and uses the manifests' gRPC probes.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/bin/sh", "-c", "a=${RELU_GRPC_ADDRESS:-0.0.0.0:50051}; case $a in unix*) t=$a ;; *) t=127.0.0.1:${a##*:} ;; esac; exec relu-cli health --target \"$t\" --timeout 3"]
ENTRYPOINT ["relu-server"]
