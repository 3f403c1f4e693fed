// The metrics and probe HTTP listener (civetweb). prometheus-cpp's
// pull::Exposer serves only /metrics, so civetweb is used directly for:
//   GET /metrics  200, Prometheus text format 0.0.4: the registry's families
//                 followed by the process metrics (ProcessCollector).
//   GET /healthz  200 "ok" while the process serves HTTP at all.
//   GET /readyz   200 "ready" when ready() returns true, else 503 "not ready".
// HEAD is answered like GET without a body; other methods get 405, other
// paths 404.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "prometheus/collectable.h"

struct mg_context;
struct mg_connection;

namespace relu::metrics {

class ProcessCollector;

class MetricsHttpServer {
 public:
  // `address` is "ip:port" (IPv4, or "[ip6]:port"); port 0 picks a free port.
  // `registry` is shared with the caller. `ready` is called once per /readyz
  // request from civetweb's worker threads, so it must be thread-safe; it is
  // never called after the destructor returns.
  MetricsHttpServer(std::string address,
                    std::shared_ptr<prometheus::Collectable> registry,
                    std::function<bool()> ready);
  // Stops listening and waits for requests in progress.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds and starts serving. INVALID_ARGUMENT for a malformed address,
  // UNAVAILABLE when civetweb cannot listen (address in use, not local), with
  // civetweb's message; FAILED_PRECONDITION when already started. Call once.
  absl::Status Start();

  // The bound port after a successful Start(); 0 before.
  int port() const { return port_; }

  // The body /metrics serves now. Thread-safe.
  std::string Scrape() const;

 private:
  static int HandleMetrics(mg_connection* conn, void* self);
  static int HandleHealthz(mg_connection* conn, void* self);
  static int HandleReadyz(mg_connection* conn, void* self);

  const std::string address_;
  const std::shared_ptr<prometheus::Collectable> registry_;
  const std::function<bool()> ready_;
  const std::unique_ptr<ProcessCollector> process_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace relu::metrics
