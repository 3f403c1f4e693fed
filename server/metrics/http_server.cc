#include "server/metrics/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <utility>
#include <vector>

#include "prometheus/text_serializer.h"
#include "server/metrics/civetweb.h"
#include "server/metrics/process_collector.h"

namespace relu::metrics {
namespace {

constexpr char kMetricsContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// civetweb matches handlers by prefix and after removing dot segments; the
// listener answers only its exact paths (a query string is allowed).
bool IsExactPath(mg_connection* conn, const char* path) {
  const mg_request_info* info = mg_get_request_info(conn);
  const char* raw =
      info->local_uri_raw != nullptr ? info->local_uri_raw : info->local_uri;
  if (raw == nullptr || std::strcmp(raw, path) != 0) {
    mg_send_http_error(conn, 404, "%s", "not found\n");
    return false;
  }
  return true;
}

bool IsGetOrHead(mg_connection* conn, bool* head) {
  const char* method = mg_get_request_info(conn)->request_method;
  *head = std::strcmp(method, "HEAD") == 0;
  if (*head || std::strcmp(method, "GET") == 0) return true;
  mg_send_http_error(conn, 405, "%s", "method not allowed\n");
  return false;
}

// Answers with `status` and `body` (omitted for HEAD). Returns the HTTP
// status, which tells civetweb the request was handled.
int Reply(mg_connection* conn, int status, const char* content_type,
          const std::string& body, bool head) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, mg_get_response_code_text(conn, status), content_type,
            body.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return status;
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(
    std::string address, std::shared_ptr<prometheus::Collectable> registry,
    std::function<bool()> ready)
    : address_(std::move(address)),
      registry_(std::move(registry)),
      ready_(std::move(ready)),
      process_(std::make_unique<ProcessCollector>()) {}

MetricsHttpServer::~MetricsHttpServer() {
  if (context_ == nullptr) return;
  StopCivetweb(context_, address_, port_);
}

absl::Status MetricsHttpServer::Start() {
  if (context_ != nullptr) {
    return absl::FailedPreconditionError("metrics server already started");
  }
  if (!IsListenAddress(address_)) {
    return absl::InvalidArgumentError(
        "metrics address must be ip:port, got \"" + address_ + "\"");
  }
  InitCivetweb();

  // civetweb gives each connection a thread until its request is read: a
  // client that connects and sends nothing holds one for request_timeout_ms.
  // 128 threads and 2 s keep /healthz, /readyz and scrapes answering while
  // up to about a hundred such clients sit on the port (measured: 64 silent
  // clients held /healthz 4 s with 32 threads). An idle thread costs a
  // stack's address space, not memory.
  const char* options[] = {"listening_ports",
                           address_.c_str(),
                           "num_threads",
                           "128",
                           "enable_keep_alive",
                           "no",
                           "request_timeout_ms",
                           "2000",
                           nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = DropCivetwebLog;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = options;
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);

  context_ = mg_start2(&init, &error);
  if (context_ == nullptr) {
    return absl::UnavailableError("metrics server cannot listen on " +
                                  address_ + ": " + error_text);
  }
  mg_server_port ports[4] = {};
  const int count = mg_get_server_ports(context_, 4, ports);
  if (count < 1 || ports[0].port <= 0) {
    mg_stop(context_);
    context_ = nullptr;
    return absl::InternalError("metrics server on " + address_ +
                               " reports no listening port");
  }
  port_ = ports[0].port;
  mg_set_request_handler(context_, "/metrics", &HandleMetrics, this);
  mg_set_request_handler(context_, "/healthz", &HandleHealthz, this);
  mg_set_request_handler(context_, "/readyz", &HandleReadyz, this);
  return absl::OkStatus();
}

std::string MetricsHttpServer::Scrape() const {
  std::vector<prometheus::MetricFamily> families;
  if (registry_ != nullptr) families = registry_->Collect();
  for (auto& family : process_->Collect())
    families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

int MetricsHttpServer::HandleMetrics(mg_connection* conn, void* self) {
  bool head = false;
  if (!IsExactPath(conn, "/metrics")) return 404;
  if (!IsGetOrHead(conn, &head)) return 405;
  return Reply(conn, 200, kMetricsContentType,
               static_cast<MetricsHttpServer*>(self)->Scrape(), head);
}

int MetricsHttpServer::HandleHealthz(mg_connection* conn, void*) {
  bool head = false;
  if (!IsExactPath(conn, "/healthz")) return 404;
  if (!IsGetOrHead(conn, &head)) return 405;
  return Reply(conn, 200, "text/plain; charset=utf-8", "ok\n", head);
}

int MetricsHttpServer::HandleReadyz(mg_connection* conn, void* self) {
  bool head = false;
  if (!IsExactPath(conn, "/readyz")) return 404;
  if (!IsGetOrHead(conn, &head)) return 405;
  const auto& ready = static_cast<MetricsHttpServer*>(self)->ready_;
  if (ready && ready()) {
    return Reply(conn, 200, "text/plain; charset=utf-8", "ready\n", head);
  }
  return Reply(conn, 503, "text/plain; charset=utf-8", "not ready\n", head);
}

}  // namespace relu::metrics
