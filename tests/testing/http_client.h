// A tiny blocking HTTP/1.0 client for tests: one GET to 127.0.0.1, read to
// EOF. Enough for /metrics, the probes and Prometheus' query API.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace relu::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;  // the status line and header lines, CRLF-separated
  std::string body;
};

// Sends `method` `target` (path and query) to 127.0.0.1:`port`. Errors are
// UNAVAILABLE (connect, I/O) or INTERNAL (unparseable response).
absl::StatusOr<HttpResponse> HttpRequest(int port, const std::string& target,
                                         const std::string& method = "GET");

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& text);

}  // namespace relu::testing
