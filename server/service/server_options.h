// relu-server's configuration: one struct, filled from flags and RELU_*
// environment variables by AddServerFlags().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "server/batching/batch_scheduler.h"

namespace CLI {
class App;
}

namespace relu::service {

// The batcher's defaults, except that the server runs a call on its gRPC
// thread when the kernel is idle (run_inline_when_idle, --inline-when-idle),
// and small calls there always (inline_max_elements, --inline-max-elements;
// 16384 elements, 64 KiB of float32, chosen by measurement: README,
// "Performance").
inline batching::BatchSchedulerOptions ServerBatchingDefaults() {
  batching::BatchSchedulerOptions options;
  options.run_inline_when_idle = true;
  options.inline_max_elements = 16384;
  return options;
}

struct ServerOptions {
  // host:port, or a Unix socket: unix:PATH (same-host callers; the file is
  // made with grpc_socket_mode and removed at exit) or unix-abstract:NAME.
  std::string grpc_address = "0.0.0.0:50051";
  // Permissions of a unix:PATH socket file, octal: who may connect (a
  // connection needs write permission). Owner and group by default.
  std::string grpc_socket_mode = "0660";
  std::string metrics_address = "0.0.0.0:9464";  // "off" = no listener
  // The Open Inference Protocol over HTTP/REST (http_service.h); "off" = no
  // listener. 8000 is Triton's and KServe's HTTP port.
  std::string http_address = "0.0.0.0:8000";
  // Threads serving HTTP connections (each holds one while it is open).
  int http_threads = 64;
  // An HTTP request not received in this time is cut; idle keep-alive
  // connections are closed after it too.
  int http_timeout_s = 30;
  // Access-Control-Allow-Origin for browser callers; empty = no CORS.
  std::string http_cors_origin;
  size_t max_message_bytes = size_t{256} << 20;
  int keepalive_time_s = 60;
  int keepalive_timeout_s = 20;
  int max_connection_age_s = 0;  // 0 = off
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;  // set = mTLS: clients must present a cert
  int drain_timeout_s = 25;
  // The memory the server keeps within (resource_limits.h shares it out);
  // 0 = DefaultMemoryLimitBytes(): the cgroup's limit, else half the machine.
  size_t memory_limit_bytes = 0;
  // gzip/deflate requests. Off: gRPC 1.51 inflates a message whole before it
  // checks its size, so one small compressed request can take gigabytes.
  bool accept_compression = false;
  // Connections beyond this many are closed as they are accepted; 0 = as
  // many as the file-descriptor limit allows, less a reserve of 64.
  size_t max_connections = 0;
  // HTTP/2 streams a client may have open on one connection.
  int max_concurrent_streams = 100;
  // A response the client has not taken this many seconds after it was
  // ready is cancelled, and its memory freed; 0 = never.
  int send_timeout_s = 60;
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  // The request log (request_log.h): off | all | errors | sample:N; its
  // file ("" = stdout) and buffer (records waiting for the writer).
  std::string request_log = "errors";
  std::string request_log_file;
  size_t request_log_buffer_lines = 4096;
  int kernel_threads = 0;  // 0 = one per core
  // The kernel's code path: "auto" (the best this CPU supports), "scalar",
  // "avx2" or "avx512" (kernel::IsaName; must be supported).
  std::string kernel_isa = "auto";
  // Smaller kernel jobs run on the calling thread alone. Measured with
  // colocated load (bench/run_service_bench.py): on 2 cores, splitting a
  // 1 MiB call cost 19% more server CPU than running it on one thread, 4 MiB
  // 8% more; 64 MiB was 12% faster split.
  size_t kernel_parallel_min_bytes = size_t{8} << 20;
  batching::BatchSchedulerOptions batching = ServerBatchingDefaults();
};

// Declares every option on `app` as --flag-name, each also read from the
// environment variable RELU_FLAG_NAME, with its default from `options`.
// Values land in `options` when `app` parses; CLI11 checks ranges. The one
// boolean, --inline-when-idle, is a flag: alone it means true, and it takes
// --inline-when-idle=false (or 0, off, no) and RELU_INLINE_WHEN_IDLE=false /
// 0 / true / 1 as well.
void AddServerFlags(CLI::App& app, ServerOptions& options);

// Fills the defaults that depend on the machine (memory_limit_bytes 0).
void ResolveDefaults(ServerOptions& options);

// OK, or INVALID_ARGUMENT naming the first bad option by its flag: what
// AddServerFlags' checks refuse when `options` was filled another way (the
// batcher's limits, the kernel path, the socket mode). ReluServer::Start()
// checks it too.
absl::Status ValidateServerOptions(const ServerOptions& options);

// The file of a unix:PATH (or unix://PATH) address; empty for any other.
std::string UnixSocketPath(const std::string& address);

// --grpc-socket-mode's permission bits; nullopt unless it is octal, 0-0777.
std::optional<unsigned> ParseSocketMode(const std::string& mode);

// "grpc_address=0.0.0.0:50051 max_message_bytes=268435456 ...": the
// effective configuration, for the start-up log line.
std::string DescribeOptions(const ServerOptions& options);

}  // namespace relu::service
