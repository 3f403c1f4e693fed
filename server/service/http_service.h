// The Open Inference Protocol (KServe v2) over HTTP/REST: relu-serve's third
// front door, on civetweb, through the same Admission as the gRPC doors. It
// only decodes and encodes (oip_json.h); the checks are ValidateInferRequest's
// and the errors ModelInfer's messages, as JSON {"error": "..."}.
//
//   GET  /v2/health/live             200 {"live":true}
//   GET  /v2/health/ready            200 {"ready":true}, 503 when not ready
//   GET  /v2                         server metadata
//   GET  /v2/models/relu[/versions/1]         model metadata
//   GET  /v2/models/relu[/versions/1]/ready   200, 503 when not ready
//   POST /v2/models/relu[/versions/1]/infer   JSON, or the binary tensor
//        data extension (Inference-Header-Content-Length)
//   OPTIONS (any of them)            CORS preflight, when an origin is set
//
// Status codes: 400 invalid input, 404 unknown path, model or version, 405
// wrong method, 413 body over the limit (the rest of it is not read; the
// connection closes), 408 a body not received within the timeout, 429 with
// Retry-After when the queue or the response memory is full, 503 draining,
// 504 the request's "timeout" parameter passed.
//
// Civetweb serves each connection on one of `threads` threads; an infer
// holds its thread until the batch scheduler answers.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/service/admission.h"
#include "server/service/call_tracker.h"

struct mg_context;
struct mg_connection;

namespace relu::service {

struct HttpOptions {
  std::string address = "0.0.0.0:8000";  // ip:port, port 0 = any free one
  size_t max_body_bytes = size_t{256} << 20;
  // A request (headers or body) not received in this time is cut; idle
  // keep-alive connections are closed after it too.
  int timeout_ms = 30'000;
  int threads = 64;
  // Access-Control-Allow-Origin for browser callers; empty = no CORS.
  std::string cors_origin;
  std::string server_version;
};

class HttpFrontDoor {
 public:
  // `admission` and `calls` must outlive this. `ready` answers the ready
  // endpoints; it is called from civetweb's threads.
  HttpFrontDoor(HttpOptions options, Admission* admission, CallTracker* calls,
                std::function<bool()> ready);
  // Stop().
  ~HttpFrontDoor();
  HttpFrontDoor(const HttpFrontDoor&) = delete;
  HttpFrontDoor& operator=(const HttpFrontDoor&) = delete;

  // Binds and serves. INVALID_ARGUMENT for a malformed address, UNAVAILABLE
  // when it cannot listen. Call once.
  absl::Status Start();
  // Stops listening, closes the connections and waits for the requests in
  // progress (an infer in the batcher is answered first). Idempotent.
  void Stop();

  // The bound port after Start().
  int port() const { return port_; }

 private:
  static int Handle(mg_connection* conn, void* self);
  int Serve(mg_connection* conn);
  int Infer(mg_connection* conn, const std::string& model,
            const std::string& version);

  const HttpOptions options_;
  Admission* const admission_;
  CallTracker* const calls_;
  const std::function<bool()> ready_;
  // The CORS header lines every answer carries (empty without an origin).
  const std::string cors_headers_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace relu::service
