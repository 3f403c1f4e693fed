// relu-serve C++ client: applies tf.keras.layers.ReLU on a relu-serve server.
//
//   #include <relu/client.h>
//   relu::Client client("localhost:50051");
//   relu::ReluParams params;
//   params.max_value = 2.0;
//   absl::StatusOr<std::vector<float>> y =
//       client.Apply(std::vector<float>{-5, -2, 0, 3}, params);
//
// This header is the whole public API; it includes no gRPC or protobuf
// header. Errors are absl::Status values carrying the server's status code and
// message (for example INVALID_ARGUMENT "max_value of a ReLU layer cannot be a
// negative value. Received: max_value=-1.0"), or the local gRPC error
// (UNAVAILABLE, DEADLINE_EXCEEDED, ...).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace relu {

// IEEE-754 binary16 in its storage form. Conversions round to nearest, ties to
// even, keep subnormals, and keep NaN a NaN (quiet, sign kept).
struct Float16 {
  uint16_t bits = 0;

  Float16() = default;
  // Rounds `value` to the nearest binary16 (overflow gives +-inf).
  explicit Float16(float value);
  explicit Float16(double value);
  static Float16 FromBits(uint16_t bits) {
    Float16 h;
    h.bits = bits;
    return h;
  }
  // Exact: every binary16 value is a float.
  float ToFloat() const;
  explicit operator float() const { return ToFloat(); }
};

// bfloat16 (the upper half of a binary32) in its storage form. Conversions
// round to nearest, ties to even, keep subnormals (no flush to zero), and keep
// NaN a NaN, like TensorFlow's bfloat16.
struct BFloat16 {
  uint16_t bits = 0;

  BFloat16() = default;
  explicit BFloat16(float value);
  explicit BFloat16(double value);
  static BFloat16 FromBits(uint16_t bits) {
    BFloat16 b;
    b.bits = bits;
    return b;
  }
  // Exact: every bfloat16 value is a float.
  float ToFloat() const;
  explicit operator float() const { return ToFloat(); }
};

// Element types the service computes in (values of relu.v1.DataType).
enum class DataType {
  kUnspecified = 0,
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
};

// Bytes per element: 4, 8, 2, 2; 0 for kUnspecified.
size_t ElementSize(DataType dtype);
// "float32", "float64", "float16", "bfloat16" ("unspecified" otherwise).
std::string_view DataTypeName(DataType dtype);
// Inverse of DataTypeName; also accepts "half", "float", "double".
std::optional<DataType> ParseDataType(std::string_view name);

// A dense row-major tensor. `data` holds ElementCount() * ElementSize(dtype)
// little-endian bytes. An empty shape is a scalar (one element).
struct Tensor {
  DataType dtype = DataType::kUnspecified;
  std::vector<int64_t> shape;
  std::string data;

  // Product of `shape` (1 for a scalar). Meaningful only for a valid shape.
  int64_t ElementCount() const;

  // A tensor holding a copy of `values` with the given shape; an empty
  // `shape` argument gives a 1-D tensor (for a scalar, clear `shape` after).
  // Precondition: product(shape) == values.size().
  static Tensor FromFloat32(const std::vector<float>& values,
                            std::vector<int64_t> shape = {});
  static Tensor FromFloat64(const std::vector<double>& values,
                            std::vector<int64_t> shape = {});
  static Tensor FromFloat16(const std::vector<Float16>& values,
                            std::vector<int64_t> shape = {});
  static Tensor FromBFloat16(const std::vector<BFloat16>& values,
                             std::vector<int64_t> shape = {});

  // The elements, decoded; INVALID_ARGUMENT if dtype differs or the byte
  // length does not match the shape.
  absl::StatusOr<std::vector<float>> ToFloat32() const;
  absl::StatusOr<std::vector<double>> ToFloat64() const;
  absl::StatusOr<std::vector<Float16>> ToFloat16() const;
  absl::StatusOr<std::vector<BFloat16>> ToBFloat16() const;
};

// tf.keras.layers.ReLU parameters. Defaults are plain ReLU.
struct ReluParams {
  std::optional<double> max_value;  // unset = unlimited
  double negative_slope = 0.0;
  double threshold = 0.0;
};

struct ClientOptions {
  // Deadline of each call, counted from the moment it starts.
  std::chrono::milliseconds deadline = std::chrono::seconds(10);

  // TLS: all empty = plaintext. With `tls_ca_file` only, the server is
  // verified against that CA; with `tls_cert_file` and `tls_key_file` too,
  // the client also presents its certificate (mutual TLS). Files hold PEM.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  // gRPC load-balancing policy. "round_robin" spreads calls over all the
  // addresses the target resolves to; "pick_first" uses one.
  std::string lb_policy = "round_robin";

  // Client-side health checking: the client watches this grpc.health.v1
  // service on every address and sends calls only to those SERVING it, so a
  // draining replica stops getting calls. Empty = off. A server without a
  // health service counts as healthy.
  std::string health_check_service = "relu.v1.ReluService";

  // Retries of UNAVAILABLE through gRPC's service-config retry policy, with
  // exponential backoff. `max_attempts` counts the first attempt (gRPC caps it
  // at 5); 1 disables retries.
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(100);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(2);
  double backoff_multiplier = 2.0;
  // Bytes of a call's messages gRPC keeps to be able to retry it; calls
  // larger than this are not retried (gRPC's own default is 256 KiB).
  int retry_buffer_bytes = 24 << 20;

  // HTTP/2 keepalive pings while calls are active; 0 = off (gRPC's default).
  // Servers refuse pings more often than every 5 minutes unless configured
  // otherwise, so only set this with a server that allows it.
  std::chrono::milliseconds keepalive_time = std::chrono::milliseconds(0);
  std::chrono::milliseconds keepalive_timeout = std::chrono::seconds(20);

  // Message size limits (gRPC's client default receive limit is 4 MiB).
  int max_send_message_bytes = 256 << 20;
  int max_receive_message_bytes = 256 << 20;
};

// The trace headers of one call. The caller's are sent as gRPC metadata
// when set (empty = not sent): `traceparent` and `tracestate` of W3C Trace
// Context (https://www.w3.org/TR/trace-context/), `x-request-id`. The client
// does not check them beyond what metadata allows (printable ASCII); a server
// ignores an invalid traceparent and starts a trace of its own. After the
// call (whatever its status), the `server_*` fields hold what relu-server
// returned in its trailing metadata: its traceparent (same trace id as the
// caller's when that was valid, the server's own span id) and the request id
// it logged the call under (its x-request-id trailer, which it sends when
// the caller gave one; otherwise the traceparent's trace id); empty when the
// server sent none.
struct CallTrace {
  std::string traceparent;
  std::string tracestate;
  std::string request_id;
  std::string server_traceparent;
  std::string server_request_id;
};

// Health of a server as grpc.health.v1 reports it.
enum class ServingStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,
};
// "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN".
std::string_view ServingStatusName(ServingStatus status);

// A connection to a relu-serve target. Thread-safe: one Client may serve
// calls from many threads, with any number of calls in flight. Cheap calls,
// expensive construction (one gRPC channel): share it.
class Client {
 public:
  using ApplyCallback = std::function<void(absl::StatusOr<Tensor>)>;

  // `target` is a gRPC target: "localhost:50051",
  // "dns:///relu-headless.default.svc.cluster.local:50051",
  // "ipv4:127.0.0.1:50051,127.0.0.1:50052". The channel connects lazily.
  // If a TLS file cannot be read, every call fails with that error (see
  // init_status()); use Create() to get the error up front.
  explicit Client(std::string target, ClientOptions options = {});
  // Like the constructor, but returns the TLS file error instead.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      std::string target, ClientOptions options = {});
  // Waits until every asynchronous call's callback has returned, so it must
  // not run inside one of them.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // OK, or why the client cannot make calls.
  absl::Status init_status() const;

  // Blocking ApplyReLU. The result has the input's dtype and shape; its byte
  // length is checked against its shape (INTERNAL if the server's answer is
  // malformed).
  absl::StatusOr<Tensor> Apply(Tensor tensor, const ReluParams& params = {});
  // Same, sending and receiving `trace`'s headers (see CallTrace; null = none
  // sent). INVALID_ARGUMENT, without a call, when a header holds a byte
  // outside printable ASCII.
  absl::StatusOr<Tensor> Apply(Tensor tensor, const ReluParams& params,
                               CallTrace* trace);
  // 1-D helpers.
  absl::StatusOr<std::vector<float>> Apply(const std::vector<float>& values,
                                           const ReluParams& params = {});
  absl::StatusOr<std::vector<double>> Apply(const std::vector<double>& values,
                                            const ReluParams& params = {});
  absl::StatusOr<std::vector<Float16>> Apply(const std::vector<Float16>& values,
                                             const ReluParams& params = {});
  absl::StatusOr<std::vector<BFloat16>> Apply(
      const std::vector<BFloat16>& values, const ReluParams& params = {});

  // Starts ApplyReLU and returns at once. `done` runs exactly once, on a gRPC
  // thread (or on the caller's thread if the client failed to initialize);
  // it must not block for long.
  void ApplyAsync(Tensor tensor, const ReluParams& params, ApplyCallback done);
  // Same, with a future.
  std::future<absl::StatusOr<Tensor>> ApplyAsync(Tensor tensor,
                                                 const ReluParams& params = {});

  // grpc.health.v1 Check for `service` ("" = the whole server,
  // "relu.v1.ReluService" = the API). An error status when the call fails
  // (e.g. NOT_FOUND for a service the server does not know).
  absl::StatusOr<ServingStatus> Health(std::string_view service = "");

  const std::string& target() const { return target_; }
  const ClientOptions& options() const { return options_; }

 private:
  struct Impl;

  std::string target_;
  ClientOptions options_;
  std::shared_ptr<Impl> impl_;  // shared with calls in flight
};

}  // namespace relu
