#include "server/service/server_options.h"

#include <CLI/CLI.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "server/kernel/relu_kernel.h"
#include "server/service/request_log.h"
#include "server/service/resource_limits.h"

namespace relu::service {

void AddServerFlags(CLI::App& app, ServerOptions& o) {
  auto flag = [&app](const std::string& name, auto& value,
                     const std::string& help) {
    std::string env = "RELU_" + name;
    for (char& c : env) c = c == '-' ? '_' : static_cast<char>(toupper(c));
    return app.add_option("--" + name, value, help)
        ->envname(env)
        ->capture_default_str();
  };
  flag("grpc-address", o.grpc_address,
       "gRPC listen address: host:port (port 0 picks a free port), "
       "unix:PATH (a Unix socket for same-host callers, removed at exit) or "
       "unix-abstract:NAME");
  flag("grpc-socket-mode", o.grpc_socket_mode,
       "Permissions of a unix:PATH socket, octal (connecting needs write "
       "permission)");
  flag("metrics-address", o.metrics_address,
       "HTTP address for /metrics, /healthz and /readyz; \"off\" = none");
  flag("http-address", o.http_address,
       "HTTP address for the Open Inference Protocol's REST API (/v2/...); "
       "\"off\" = none");
  flag("http-threads", o.http_threads,
       "Threads serving HTTP connections; each open connection holds one")
      ->check(CLI::Range(1, 4096));
  flag("http-timeout-s", o.http_timeout_s,
       "Seconds an HTTP request (headers and body) may take to arrive, and an "
       "idle keep-alive connection may stay open")
      ->check(CLI::Range(1, 3600));
  flag("http-cors-origin", o.http_cors_origin,
       "Access-Control-Allow-Origin for browser callers of the HTTP API (an "
       "origin, or *); empty = no CORS headers, OPTIONS refused");
  flag("max-message-bytes", o.max_message_bytes,
       "Largest gRPC message accepted and sent, and largest HTTP request "
       "body, bytes")
      ->check(CLI::Range(size_t{1024}, size_t{INT32_MAX}));
  flag("keepalive-time-s", o.keepalive_time_s,
       "Seconds between keepalive pings on an idle connection")
      ->check(CLI::Range(1, 86400));
  flag("keepalive-timeout-s", o.keepalive_timeout_s,
       "Seconds to wait for a keepalive ack before closing the connection")
      ->check(CLI::Range(1, 86400));
  flag("max-connection-age-s", o.max_connection_age_s,
       "Close connections after this many seconds so clients re-resolve and "
       "re-spread; 0 = never")
      ->check(CLI::Range(0, 86400 * 365));
  flag("tls-cert", o.tls_cert, "PEM server certificate chain; enables TLS")
      ->check(CLI::ExistingFile);
  flag("tls-key", o.tls_key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  flag("tls-client-ca", o.tls_client_ca,
       "PEM CA bundle; when set, clients must present a certificate it signed")
      ->check(CLI::ExistingFile);
  flag(
      "drain-timeout-s", o.drain_timeout_s,
      "On SIGTERM/SIGINT, seconds to finish accepted calls before cutting them")
      ->check(CLI::Range(0, 3600));
  flag("memory-limit-bytes", o.memory_limit_bytes,
       "Memory the server keeps within: 3/8 for requests being received and "
       "held (gRPC's resource quota), 3/8 for responses, the rest for the "
       "process; past a share, new calls are refused. 0 = the cgroup's "
       "memory limit, else half of the machine's memory")
      ->check(CLI::Range(size_t{0}, size_t{1} << 50));
  flag("max-connections", o.max_connections,
       "gRPC connections kept open at once (roughly: counted as descriptors "
       "opened since the start); more are closed as they are accepted. 0 = "
       "as many as the file-descriptor limit allows, less a reserve of 64 "
       "(the soft limit is raised to the hard one at start)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 24));
  flag("max-concurrent-streams", o.max_concurrent_streams,
       "HTTP/2 streams (calls) a client may have open on one connection")
      ->check(CLI::Range(1, 1 << 20));
  flag("send-timeout-s", o.send_timeout_s,
       "Seconds a finished call's response may wait for the client to take "
       "it before the call is cancelled; 0 = no limit")
      ->check(CLI::Range(0, 86400));
  flag("log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  flag("log-format", o.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  flag("request-log", o.request_log,
       "Request log, one JSON line per call: off, all, errors (failed calls "
       "only) or sample:N (one call in N, whatever its status)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            RequestLogOptions parsed;
            const absl::Status s = ParseRequestLogMode(value, &parsed);
            return s.ok() ? "" : std::string(s.message());
          },
          "off|all|errors|sample:N", "request log mode"));
  flag("request-log-file", o.request_log_file,
       "File the request log is appended to; empty = stdout (the diagnostic "
       "log goes to stderr)");
  flag("request-log-buffer-lines", o.request_log_buffer_lines,
       "Request log records waiting for the writer thread; when full, new "
       "ones are dropped (relu_request_log_dropped_total), never waited for")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  flag("kernel-threads", o.kernel_threads,
       "Threads of the kernel's TBB arena; 0 = one per core")
      ->check(CLI::Range(0, 1024));
  flag("kernel-isa", o.kernel_isa,
       "Kernel code path: auto (the best this CPU supports), scalar, avx2 or "
       "avx512")
      ->check(CLI::IsMember({"auto", "scalar", "avx2", "avx512"}) &
              CLI::Validator(
                  [](std::string& name) -> std::string {
                    const std::optional<kernel::Isa> isa =
                        kernel::ParseIsa(name);
                    if (isa.has_value() && !kernel::IsaSupported(*isa)) {
                      return name + " is not supported by this CPU";
                    }
                    return "";
                  },
                  "", "supported"));
  flag("kernel-parallel-min-bytes", o.kernel_parallel_min_bytes,
       "Kernel jobs (a call, or a batch) smaller than this run on one thread; "
       "larger ones are split across the kernel's threads")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40));
  flag("max-batch-requests", o.batching.max_batch_requests,
       "Most requests coalesced into one kernel run")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  flag("max-batch-elements", o.batching.max_batch_elements,
       "Most elements in one kernel run (a larger request runs alone)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40));
  flag("max-batch-delay-us", o.batching.max_batch_delay_micros,
       "Microseconds a batch may wait to grow; 0 = never wait")
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  flag("max-queue-requests", o.batching.max_queue_requests,
       "Requests waiting for the kernel before new ones get RESOURCE_EXHAUSTED")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  flag("max-queue-bytes", o.batching.max_queue_bytes,
       "Tensor bytes waiting for the kernel before new requests get "
       "RESOURCE_EXHAUSTED")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40));
  flag("inline-max-elements", o.batching.inline_max_elements,
       "Calls of at most this many elements run at once on their gRPC "
       "thread, beside any batch (their kernel work costs less than the "
       "hand-off to the batch thread); 0 = off")
      ->check(CLI::Range(size_t{0}, size_t{1} << 30));
  // A flag, not an option, so that it also works without a value. CLI11
  // shows no default for flags: the help text says it.
  app.add_flag("--inline-when-idle", o.batching.run_inline_when_idle,
               std::string("Run a call on its gRPC thread when the kernel is "
                           "idle, without the hand-off to the batch thread "
                           "(default ") +
                   (o.batching.run_inline_when_idle ? "true" : "false") +
                   "; --inline-when-idle=false turns it off, and so does a "
                   "batch delay)")
      ->envname("RELU_INLINE_WHEN_IDLE");
  app.add_flag("--accept-compression", o.accept_compression,
               "Accept gzip and deflate compressed requests, inflated by the "
               "server to at most --max-message-bytes (default false: they "
               "get UNIMPLEMENTED)")
      ->envname("RELU_ACCEPT_COMPRESSION");
}

void ResolveDefaults(ServerOptions& o) {
  if (o.memory_limit_bytes == 0) {
    o.memory_limit_bytes = DefaultMemoryLimitBytes();
  }
}

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (absl::Status s = batching::ValidateOptions(o.batching); !s.ok()) {
    return s;
  }
  if (!ParseSocketMode(o.grpc_socket_mode).has_value()) {
    return absl::InvalidArgumentError(
        "--grpc-socket-mode=" + o.grpc_socket_mode +
        " is not an octal mode from 0 to 0777");
  }
  RequestLogOptions request_log;
  if (absl::Status s = ParseRequestLogMode(o.request_log, &request_log);
      !s.ok()) {
    return s;
  }
  if (o.request_log_buffer_lines < 1) {
    return absl::InvalidArgumentError(
        "--request-log-buffer-lines must be at least 1, got 0");
  }
  if (o.kernel_isa != "auto") {
    const std::optional<kernel::Isa> isa = kernel::ParseIsa(o.kernel_isa);
    if (!isa.has_value()) {
      return absl::InvalidArgumentError(
          "--kernel-isa=" + o.kernel_isa +
          " is not one of auto, scalar, avx2, avx512");
    }
    if (!kernel::IsaSupported(*isa)) {
      return absl::InvalidArgumentError("--kernel-isa=" + o.kernel_isa +
                                        " is not supported by this CPU");
    }
  }
  return absl::OkStatus();
}

std::string UnixSocketPath(const std::string& address) {
  constexpr std::string_view kScheme = "unix:";
  if (address.compare(0, kScheme.size(), kScheme) != 0) return "";
  std::string path = address.substr(kScheme.size());
  if (path.compare(0, 2, "//") == 0) path.erase(0, 2);  // unix:///abs/path
  return path;
}

std::optional<unsigned> ParseSocketMode(const std::string& mode) {
  if (mode.empty() || mode.size() > 4) return std::nullopt;
  unsigned value = 0;
  for (char c : mode) {
    if (c < '0' || c > '7') return std::nullopt;
    value = value * 8 + static_cast<unsigned>(c - '0');
  }
  if (value > 0777) return std::nullopt;
  return value;
}

std::string DescribeOptions(const ServerOptions& o) {
  std::ostringstream out;
  out << "grpc_address=" << o.grpc_address
      << " grpc_socket_mode=" << o.grpc_socket_mode
      << " metrics_address=" << o.metrics_address
      << " http_address=" << o.http_address
      << " http_threads=" << o.http_threads
      << " http_timeout_s=" << o.http_timeout_s
      << " http_cors_origin=" << o.http_cors_origin
      << " max_message_bytes=" << o.max_message_bytes
      << " keepalive_time_s=" << o.keepalive_time_s
      << " keepalive_timeout_s=" << o.keepalive_timeout_s
      << " max_connection_age_s=" << o.max_connection_age_s
      << " tls=" << (o.tls_cert.empty() ? "off" : "on")
      << " mtls=" << (o.tls_client_ca.empty() ? "off" : "on")
      << " drain_timeout_s=" << o.drain_timeout_s
      << " memory_limit_bytes=" << o.memory_limit_bytes
      << " accept_compression=" << (o.accept_compression ? "true" : "false")
      << " max_connections=" << o.max_connections
      << " max_concurrent_streams=" << o.max_concurrent_streams
      << " send_timeout_s=" << o.send_timeout_s
      << " request_log=" << o.request_log << " request_log_file="
      << (o.request_log_file.empty() ? "stdout" : o.request_log_file)
      << " request_log_buffer_lines=" << o.request_log_buffer_lines
      << " kernel_threads=" << o.kernel_threads
      << " kernel_parallel_min_bytes=" << o.kernel_parallel_min_bytes
      << " max_batch_requests=" << o.batching.max_batch_requests
      << " max_batch_elements=" << o.batching.max_batch_elements
      << " max_batch_delay_us=" << o.batching.max_batch_delay_micros
      << " max_queue_requests=" << o.batching.max_queue_requests
      << " max_queue_bytes=" << o.batching.max_queue_bytes
      << " inline_when_idle="
      << (o.batching.run_inline_when_idle ? "true" : "false")
      << " inline_max_elements=" << o.batching.inline_max_elements;
  return out.str();
}

}  // namespace relu::service
