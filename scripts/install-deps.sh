#!/usr/bin/env bash
# Installs the Debian 12 packages relu-serve needs to build, test and run.
# Idempotent: prints nothing and changes nothing when everything is present.
# Must run as root on a machine without them (CI, a fresh developer box).
set -euo pipefail

PACKAGES=(
  # Toolchain.
  g++ cmake make pkg-config clang-14 clang-format
  # gRPC, protobuf and abseil.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # grpc.health.v1's health.proto (/usr/share/grpc-proto), OpenSSL's
  # headers for relu-server's start-up check of its TLS files, zlib's for
  # its bounded inflate of compressed requests.
  grpc-proto libssl-dev zlib1g-dev
  # Kernel, logging, flags, metrics; the servers' allocator (tcmalloc).
  libtbb-dev libspdlog-dev libcli11-dev prometheus-cpp-dev libcivetweb-dev civetweb
  libtcmalloc-minimal4
  # Tests and benchmarks (oneDNN is the kernel benchmark's peer).
  libgtest-dev libgmock-dev libbenchmark-dev libdnnl-dev nlohmann-json3-dev
  # The service benchmark's HTTP rows: h2load, a load generator that is not ours.
  nghttp2-client
  # Debian's oneDNN CMake package requires OpenCL (built with the OCL GPU runtime).
  ocl-icd-opencl-dev
  # Test tools: a real Prometheus, TLS material, process inspection, Python peers.
  prometheus openssl procps curl python3 python3-yaml python3-jsonschema
  python3-numpy python3-grpcio python3-protobuf
  # The Python client's tests: pytest, a venv to pip-install it into (offline,
  # from Debian's setuptools and wheel), matplotlib for its plot example.
  python3-pytest python3-venv python3-setuptools python3-wheel python3-matplotlib
  # Hostile clients: raw HTTP/2 frames (h2, hpack, hyperframe), and the
  # proxy put in front against HTTP/2 rapid reset.
  python3-h2 haproxy
  # The container image test: a private Docker daemon and a debootstrapped base.
  docker.io debootstrap
  # The service benchmarks' Go peer (bench/go_peer), built offline in GOPATH
  # mode: Go, grpc-go 1.33 and its protobuf runtimes (the 1-5 package is the
  # APIv2-based github.com/golang/protobuf that grpc-go's codec must use with
  # protoc-gen-go 1.28's messages; it replaces the older 1-3 one), and the
  # two protoc plugins that generate the code from proto/ at build time.
  golang-go golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
