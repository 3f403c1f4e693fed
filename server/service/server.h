// relu-server assembled: the kernel, the batch scheduler, the metrics and
// their HTTP listener, the admission path with its two gRPC front doors
// (relu.v1.ReluService and the Open Inference Protocol's
// inference.GRPCInferenceService) and the standard health and reflection
// services on one gRPC listener, and its HTTP front door (the Open Inference
// Protocol's REST API) on another.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/service/server_options.h"

namespace relu::service {

class ReluServer {
 public:
  explicit ReluServer(ServerOptions options);
  ~ReluServer();
  ReluServer(const ReluServer&) = delete;
  ReluServer& operator=(const ReluServer&) = delete;

  // Binds and starts serving. FAILED_PRECONDITION for unreadable or invalid
  // TLS files (naming the file and what is wrong: no PEM certificate, no
  // private key, a key that is not the certificate's), UNAVAILABLE when the
  // address cannot be bound. Call once.
  absl::Status Start();

  // "host:port" actually bound (port 0 resolved), or the unix: or
  // unix-abstract: address as given. Valid after Start().
  std::string grpc_address() const;
  int grpc_port() const;
  // "host:port" of the metrics HTTP listener; empty when it is off.
  std::string metrics_address() const;
  // "host:port" of the Open Inference Protocol's HTTP listener (port 0
  // resolved); empty when it is off.
  std::string http_address() const;
  // The kernel path in use: "avx512", "avx2" or "scalar".
  std::string kernel_isa() const;

  // Graceful drain: health turns NOT_SERVING for Check and Watch (and /readyz
  // answers 503), new calls
  // get UNAVAILABLE, every accepted call is answered, then the listener stops.
  // Returns how many accepted calls were cut because drain_timeout_s passed
  // first (0 = complete). Call once, after Start().
  size_t Drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relu::service
