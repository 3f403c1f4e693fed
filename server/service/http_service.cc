#include "server/service/http_service.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/metrics/civetweb.h"
#include "server/service/infer_request.h"
#include "server/service/oip_json.h"
#include "server/service/trace_context.h"

namespace relu::service {
namespace {

constexpr char kJson[] = "application/json";

// HTTP status for a call's status.
int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kCancelled:
      return 499;  // client closed request (nginx's code)
    default:
      return 500;
  }
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 499:
      return "Client Closed Request";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Internal Server Error";
  }
}

// One answer: status line and headers, then `body` and `tail` (the binary
// tensor, when there is one), in two writes.
struct Answer {
  int status = 200;
  std::string content_type = kJson;
  std::string headers;  // extra "Name: value\r\n" lines
  std::string body;
  std::string_view tail;
  bool close = false;
};

std::string ErrorBody(const std::string& message) {
  std::string body = "{\"error\":";
  AppendJsonString(message, &body);
  body += "}";
  return body;
}

Answer ErrorAnswer(int status, const std::string& message) {
  Answer a;
  a.status = status;
  a.body = ErrorBody(message);
  if (status == 429) a.headers += "Retry-After: 1\r\n";
  return a;
}

// What the handler's thread and the call share: the request, and the answer
// once the batch scheduler (or the admission) gives it. Lives on the
// handler's stack until the answer is sent.
struct Exchange {
  std::string model;
  std::string version;
  std::string body;
  size_t json_bytes = 0;  // the JSON's part of the body
  HttpInferRequest decoded;
  kernel::DType dtype = kernel::DType::kFloat32;
  CallTracker::Call tracked;
  // The caller's trace context (traceparent, tracestate, x-request-id
  // headers), and its address.
  TraceContext trace;
  std::string peer;

  std::mutex mu;
  std::condition_variable cv;
  bool answered = false;
  absl::Status status;
};

// An infer over HTTP, as the admission drives it.
class HttpCall final : public Call {
 public:
  explicit HttpCall(Exchange* exchange)
      : Call(metrics::Method::kHttpInfer,
             std::chrono::system_clock::time_point::max(), &exchange->tracked),
        exchange_(exchange) {
    trace() = exchange->trace;
    set_front_door("http");
  }

  std::string Peer() const override { return exchange_->peer; }

  absl::Status Decode() override {
    Exchange& x = *exchange_;
    const std::string_view body(x.body);
    const bool binary = x.json_bytes < body.size();
    if (absl::Status st =
            DecodeHttpInferRequest(body.substr(0, x.json_bytes),
                                   body.substr(x.json_bytes), &x.decoded);
        !st.ok()) {
      return st;
    }
    inference::ModelInferRequest& request = x.decoded.request;
    request.set_model_name(x.model);
    request.set_model_version(x.version);
    // The body is in the request now; its memory goes.
    std::string().swap(x.body);
    if (x.decoded.timeout_micros.has_value()) {
      set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(*x.decoded.timeout_micros));
    }
    absl::StatusOr<ValidatedInfer> valid = ValidateInferRequest(
        request, binary ? "the binary data of inputs[0]" : "inputs[0].data");
    if (!valid.ok()) return valid.status();
    // The tensor, computed in place, and the JSON answer written from it
    // (at most this many characters a number, with its comma).
    size_t json_bytes = 0;
    if (!x.decoded.binary_output) {
      const size_t per_number =
          valid->dtype == kernel::DType::kFloat64
              ? 25
              : (valid->dtype == kernel::DType::kFloat32 ? 16 : 12);
      json_bytes = valid->elements * per_number;
    }
    if (absl::Status s = ReserveResponse(valid->bytes + json_bytes); !s.ok()) {
      return s;
    }
    x.dtype = valid->dtype;
    void* data = request.mutable_raw_input_contents(0)->data();
    segment = {valid->dtype, valid->params, data, data, valid->elements};
    bytes = valid->bytes;
    return absl::OkStatus();
  }

  void Respond(const absl::Status& status) override {
    MarkAnswered();
    Exchange& x = *exchange_;
    // The ids the answer returns, made if Done() did not need them.
    if (trace().ReturnsIds(!status.ok())) trace().EnsureIds();
    std::lock_guard<std::mutex> lock(x.mu);
    x.trace = trace();
    x.status = status;
    x.answered = true;
    x.cv.notify_one();
  }

 private:
  Exchange* const exchange_;
};

// The JSON (and binary) answer of a computed infer.
Answer InferAnswer(const Exchange& x) {
  const inference::ModelInferRequest& request = x.decoded.request;
  Answer a;
  std::string& json = a.body;
  json = "{\"model_name\":\"";
  json += kOipModelName;
  json += "\",\"model_version\":\"";
  json += kOipModelVersion;
  json += "\"";
  if (x.decoded.has_id) {
    json += ",\"id\":";
    AppendJsonString(request.id(), &json);
  }
  json += ",\"outputs\":[{\"name\":\"";
  json += kOipOutputName;
  json += "\",\"datatype\":\"";
  json += OipDatatype(x.dtype);
  json += "\",\"shape\":[";
  for (int i = 0; i < request.inputs(0).shape_size(); ++i) {
    if (i > 0) json += ",";
    json += std::to_string(request.inputs(0).shape(i));
  }
  json += "]";
  const std::string& data = request.raw_input_contents(0);
  if (x.decoded.binary_output) {
    absl::StrAppend(
        &json, ",\"parameters\":{\"binary_data_size\":", data.size(), "}}]}");
    a.headers +=
        absl::StrCat("Inference-Header-Content-Length: ", json.size(), "\r\n");
    a.content_type = "application/octet-stream";
    a.tail = data;
  } else {
    json += ",\"data\":[";
    AppendJsonNumbers(x.dtype, data.data(),
                      data.size() / kernel::ElementSize(x.dtype), &json);
    json += "]}]}";
  }
  return a;
}

enum class Route { kNone, kLive, kReady, kServer, kModel, kModelReady, kInfer };

// The route of `path`, with the model and version it names.
Route Parse(std::string_view path, std::string* model, std::string* version) {
  if (path == "/v2/health/live") return Route::kLive;
  if (path == "/v2/health/ready") return Route::kReady;
  if (path == "/v2" || path == "/v2/") return Route::kServer;
  constexpr std::string_view kModels = "/v2/models/";
  if (path.substr(0, kModels.size()) != kModels) return Route::kNone;
  const std::string_view rest = path.substr(kModels.size());
  std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(rest.data(), rest.size()), '/');
  if (parts.empty() || parts[0].empty()) return Route::kNone;
  *model = parts[0];
  size_t next = 1;
  if (parts.size() >= 3 && parts[1] == "versions" && !parts[2].empty()) {
    *version = parts[2];
    next = 3;
  }
  if (parts.size() == next) return Route::kModel;
  if (parts.size() == next + 1 && parts[next] == "ready") {
    return Route::kModelReady;
  }
  if (parts.size() == next + 1 && parts[next] == "infer") return Route::kInfer;
  return Route::kNone;
}

}  // namespace

HttpFrontDoor::HttpFrontDoor(HttpOptions options, Admission* admission,
                             CallTracker* calls, std::function<bool()> ready)
    : options_(std::move(options)),
      admission_(admission),
      calls_(calls),
      ready_(std::move(ready)),
      cors_headers_(options_.cors_origin.empty()
                        ? ""
                        : absl::StrCat("Access-Control-Allow-Origin: ",
                                       options_.cors_origin,
                                       "\r\nAccess-Control-Expose-Headers: "
                                       "Inference-Header-Content-Length, "
                                       "traceparent, x-request-id\r\n"
                                       "Vary: Origin\r\n")) {}

HttpFrontDoor::~HttpFrontDoor() { Stop(); }

void HttpFrontDoor::Stop() {
  if (context_ == nullptr) return;
  metrics::StopCivetweb(context_, options_.address, port_);
  context_ = nullptr;
}

absl::Status HttpFrontDoor::Start() {
  const std::string& address = options_.address;
  if (!metrics::IsListenAddress(address)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-address must be ip:port, got \"", address, "\""));
  }
  metrics::InitCivetweb();
  const std::string threads = std::to_string(options_.threads);
  const std::string timeout = std::to_string(options_.timeout_ms);
  const char* config[] = {
      "listening_ports", address.c_str(), "num_threads", threads.c_str(),
      "enable_keep_alive", "yes", "keep_alive_timeout_ms", timeout.c_str(),
      "request_timeout_ms", timeout.c_str(), "tcp_nodelay", "1",
      // civetweb answers CORS preflights itself, for any
      // origin, unless these are empty: Serve() does.
      "access_control_allow_origin", "", "access_control_allow_methods", "",
      "access_control_allow_headers", "", nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = metrics::DropCivetwebLog;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = config;
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  context_ = mg_start2(&init, &error);
  if (context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on --http-address=", address, ": ", error_text));
  }
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(context_, 4, ports) < 1 || ports[0].port <= 0) {
    Stop();
    return absl::InternalError(
        absl::StrCat("--http-address=", address, ": no listening port"));
  }
  port_ = ports[0].port;
  mg_set_request_handler(context_, "/", &HttpFrontDoor::Handle, this);
  return absl::OkStatus();
}

int HttpFrontDoor::Handle(mg_connection* conn, void* self) {
  return static_cast<HttpFrontDoor*>(self)->Serve(conn);
}

namespace {

// The port of a TCP socket address, or -1.
int PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return -1;
}

// Stops reading the request's connection: after a handler returns, civetweb
// reads and discards whatever is left of the body, so a refused body over
// the limit would be read to its end. civetweb does not expose the socket:
// it is found among the process's descriptors by its two ports, and its
// read side shut, so the discard ends and civetweb closes the connection.
void StopReading(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st {};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      continue;
    }
    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_size = sizeof local;
    socklen_t peer_size = sizeof peer;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local),
                    &local_size) != 0 ||
        getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer),
                    &peer_size) != 0) {
      continue;
    }
    if (PortOf(local) != info->server_port ||
        PortOf(peer) != info->remote_port) {
      continue;
    }
    char host[INET6_ADDRSTRLEN] = {};
    const void* raw =
        peer.ss_family == AF_INET
            ? static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in&>(peer).sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr);
    if (inet_ntop(peer.ss_family, raw, host, sizeof host) == nullptr ||
        std::strcmp(host, info->remote_addr) != 0) {
      continue;
    }
    shutdown(static_cast<int>(fd), SHUT_RD);
    break;
  }
  closedir(dir);
}

// Whether the request has a body (one that is not read when refused).
bool HasBody(mg_connection* conn) {
  return mg_get_request_info(conn)->content_length > 0 ||
         mg_get_header(conn, "Transfer-Encoding") != nullptr;
}

int Send(mg_connection* conn, const Answer& a, const std::string& cors) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", a.status, " ", Reason(a.status), "\r\n",
                   "Content-Type: ", a.content_type, "\r\n",
                   "Content-Length: ", a.body.size() + a.tail.size(), "\r\n",
                   "Cache-Control: no-store\r\n", a.headers, cors,
                   a.close ? "Connection: close\r\n" : "", "\r\n");
  head += a.body;
  if (mg_write(conn, head.data(), head.size()) > 0 && !a.tail.empty()) {
    mg_write(conn, a.tail.data(), a.tail.size());
  }
  // The rest of a refused body is not read.
  if (a.close) StopReading(conn);
  return a.status;
}

}  // namespace

int HttpFrontDoor::Serve(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string method = info->request_method;
  const char* raw =
      info->local_uri_raw != nullptr ? info->local_uri_raw : info->local_uri;
  const std::string path = raw != nullptr ? raw : "";
  const std::string& cors = cors_headers_;

  std::string model;
  std::string version;
  const Route route = Parse(path, &model, &version);
  if (route == Route::kNone) {
    Answer a = ErrorAnswer(404, absl::StrCat("no such path: ", path,
                                             " (the Open Inference "
                                             "Protocol's paths start /v2)"));
    a.close = HasBody(conn);  // not read
    return Send(conn, a, cors);
  }
  const bool post = route == Route::kInfer;
  const char* allowed = post ? "POST, OPTIONS" : "GET, OPTIONS";
  if (method == "OPTIONS" && !options_.cors_origin.empty()) {
    Answer a;
    a.status = 204;
    a.content_type = "text/plain";
    a.headers = absl::StrCat(
        "Access-Control-Allow-Methods: ", allowed,
        "\r\nAccess-Control-Allow-Headers: Content-Type, "
        "Inference-Header-Content-Length, traceparent, tracestate, "
        "x-request-id\r\nAccess-Control-Max-Age: 600\r\n");
    return Send(conn, a, cors);
  }
  if (method != (post ? "POST" : "GET")) {
    Answer a =
        ErrorAnswer(405, absl::StrCat(method, " is not allowed on ", path,
                                      "; use ", post ? "POST" : "GET"));
    a.headers += absl::StrCat("Allow: ", allowed, "\r\n");
    // A body sent with the wrong method is not read: close after.
    a.close = HasBody(conn);
    return Send(conn, a, cors);
  }
  if (route == Route::kModel || route == Route::kModelReady ||
      route == Route::kInfer) {
    if (absl::Status s = CheckModel(model, version); !s.ok()) {
      Answer a = ErrorAnswer(404, std::string(s.message()));
      a.close = post && HasBody(conn);
      return Send(conn, a, cors);
    }
  }
  Answer a;
  switch (route) {
    case Route::kLive:
      a.body = "{\"live\":true}";
      break;
    case Route::kReady: {
      const bool ready = ready_ ? ready_() : true;
      a.status = ready ? 200 : 503;
      a.body = ready ? "{\"ready\":true}" : "{\"ready\":false}";
      break;
    }
    case Route::kServer:
      a.body = "{\"name\":";
      AppendJsonString(kOipServerName, &a.body);
      a.body += ",\"version\":";
      AppendJsonString(options_.server_version, &a.body);
      a.body += ",\"extensions\":[\"binary_tensor_data\"]}";
      break;
    case Route::kModel:
      // As ModelMetadata: FP32 listed; FP64, FP16 and BF16 taken too.
      a.body = absl::StrCat(
          "{\"name\":\"", kOipModelName, "\",\"versions\":[\"",
          kOipModelVersion, "\"],\"platform\":\"", kOipPlatform,
          "\",\"inputs\":[{\"name\":\"", kOipInputName,
          "\",\"datatype\":\"FP32\",\"shape\":[-1]}],\"outputs\":[{\"name\":\"",
          kOipOutputName, "\",\"datatype\":\"FP32\",\"shape\":[-1]}]}");
      break;
    case Route::kModelReady: {
      const bool ready = ready_ ? ready_() : true;
      a.status = ready ? 200 : 503;
      a.body = absl::StrCat("{\"name\":\"", kOipModelName,
                            "\",\"ready\":", ready ? "true" : "false", "}");
      break;
    }
    case Route::kInfer:
      return Infer(conn, model, version);
    case Route::kNone:
      break;
  }
  return Send(conn, a, cors);
}

int HttpFrontDoor::Infer(mg_connection* conn, const std::string& model,
                         const std::string& version) {
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string& cors = cors_headers_;
  const size_t limit = options_.max_body_bytes;
  auto too_large = [&](const std::string& size) {
    Answer a = ErrorAnswer(
        413, absl::StrCat("request body is ", size,
                          " bytes; the limit is --max-message-bytes=", limit));
    a.close = true;  // the rest of the body is not read
    return Send(conn, a, cors);
  };
  if (info->content_length > 0 &&
      static_cast<uint64_t>(info->content_length) > limit) {
    return too_large(std::to_string(info->content_length));
  }

  Exchange x;
  x.model = model;
  x.version = version;
  // Read the body, never past the limit: a known length at once, a chunked
  // one in steps.
  const bool known = info->content_length >= 0;
  const size_t step = 64 << 10;
  size_t got = 0;
  x.body.resize(known ? static_cast<size_t>(info->content_length) : step);
  while (true) {
    if (got == x.body.size()) {
      if (known) break;
      if (x.body.size() > limit) return too_large(absl::StrCat("over ", limit));
      x.body.resize(std::min(x.body.size() * 2, limit + 1));
    }
    const int n = mg_read(conn, x.body.data() + got, x.body.size() - got);
    if (n <= 0) {
      if (!known && n == 0) break;  // the last chunk
      Answer a = ErrorAnswer(
          408,
          absl::StrCat("request body incomplete: ", got, " of ",
                       known ? std::to_string(info->content_length)
                             : std::string("(chunked)"),
                       " bytes received within ", options_.timeout_ms, " ms"));
      a.close = true;
      return Send(conn, a, cors);
    }
    got += static_cast<size_t>(n);
  }
  x.body.resize(got);
  if (got > limit) return too_large(absl::StrCat("over ", limit));

  x.json_bytes = got;
  if (const char* header =
          mg_get_header(conn, "Inference-Header-Content-Length")) {
    size_t json_bytes = 0;
    if (!absl::SimpleAtoi(header, &json_bytes)) {
      return Send(conn,
                  ErrorAnswer(400, absl::StrCat("Inference-Header-Content-"
                                                "Length is \"",
                                                header, "\"; send a number")),
                  cors);
    }
    if (json_bytes > got) {
      return Send(
          conn,
          ErrorAnswer(400, absl::StrCat("Inference-Header-Content-Length is ",
                                        json_bytes, "; the body has only ", got,
                                        " bytes")),
          cors);
    }
    x.json_bytes = json_bytes;
  }

  // The trace context, as the gRPC doors read it from metadata; a header
  // sent twice counts as absent (civetweb gives the first: checked here).
  auto header = [info](const char* name) -> std::string_view {
    int seen = 0;
    const char* value = nullptr;
    for (int i = 0; i < info->num_headers; ++i) {
      if (strcasecmp(info->http_headers[i].name, name) == 0) {
        ++seen;
        value = info->http_headers[i].value;
      }
    }
    return seen == 1 ? std::string_view(value) : std::string_view();
  };
  x.trace = TraceContext::FromHeaders(header(kTraceparentHeader),
                                      header(kTracestateHeader),
                                      header(kRequestIdHeader));
  // As gRPC names peers.
  x.peer =
      std::strchr(info->remote_addr, ':') == nullptr
          ? absl::StrCat("ipv4:", info->remote_addr, ":", info->remote_port)
          : absl::StrCat("ipv6:[", info->remote_addr, "]:", info->remote_port);

  // From here the call counts for the drain, until its answer is sent.
  calls_->CallStarted(&x.tracked);
  admission_->Admit(std::make_unique<HttpCall>(&x));
  {
    std::unique_lock<std::mutex> lock(x.mu);
    x.cv.wait(lock, [&x] { return x.answered; });
  }
  Answer a = x.status.ok() ? InferAnswer(x)
                           : ErrorAnswer(HttpStatus(x.status.code()),
                                         std::string(x.status.message()));
  // The ids go back as the gRPC doors send them in trailers.
  if (x.trace.ReturnsIds(!x.status.ok())) {
    absl::StrAppend(&a.headers, kTraceparentHeader, ": ",
                    x.trace.ResponseTraceparent(), "\r\n");
    if (x.trace.request_id_sent) {
      absl::StrAppend(&a.headers, kRequestIdHeader, ": ", x.trace.request_id,
                      "\r\n");
    }
  }
  const int status = Send(conn, a, cors);
  calls_->CallEnded(&x.tracked);
  return status;
}

}  // namespace relu::service
