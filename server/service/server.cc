#include "server/service/server.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "openssl/bio.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/x509.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/relu_kernel.h"
#include "server/metrics/http_server.h"
#include "server/metrics/server_metrics.h"
#include "server/service/admission.h"
#include "server/service/call_tracker.h"
#include "server/service/http_service.h"
#include "server/service/inference_service.h"
#include "server/service/listener.h"
#include "server/service/relu_service.h"
#include "server/service/request_log.h"
#include "server/service/resource_limits.h"
#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

using UniqueX509 = std::unique_ptr<X509, decltype(&X509_free)>;

constexpr char kServiceName[] = "relu.v1.ReluService";
constexpr char kInferenceServiceName[] = "inference.GRPCInferenceService";

absl::Status ReadFile(const std::string& path, const std::string& flag,
                      std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in || buffer.str().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, "=", path, ": cannot read the file"));
  }
  *contents = buffer.str();
  return absl::OkStatus();
}

// OpenSSL's reason for its last failure ("no start line", ...), and clears
// its error queue.
std::string OpenSslReason() {
  const unsigned long error = ERR_peek_last_error();
  const char* reason = ERR_reason_error_string(error);
  ERR_clear_error();
  return reason != nullptr ? absl::StrCat(" (OpenSSL: ", reason, ")") : "";
}

// The PEM certificates in `pem` (read from --`flag`=`path`); an error naming
// the file when there is none or one does not parse.
absl::StatusOr<std::vector<UniqueX509>> ReadCertificates(
    const std::string& pem, const std::string& flag, const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::vector<UniqueX509> certificates;
  while (X509* certificate =
             PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate, X509_free);
  }
  // Reading stops at the end of the input ("no start line") or at a bad one.
  const unsigned long error = ERR_peek_last_error();
  const bool at_end = ERR_GET_LIB(error) == ERR_LIB_PEM &&
                      ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (certificates.empty() || !at_end) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, "=", path, ": ",
                     certificates.empty()
                         ? "holds no PEM certificate"
                         : absl::StrCat("certificate ", certificates.size() + 1,
                                        " is not a valid PEM certificate"),
                     OpenSslReason()));
  }
  ERR_clear_error();
  return certificates;
}

// Checks what gRPC would reject later with only "cannot listen": that
// `pair`'s certificate chain and key parse, and that the key is the first
// certificate's.
absl::Status CheckKeyPair(
    const grpc::SslServerCredentialsOptions::PemKeyCertPair& pair,
    const ServerOptions& options) {
  absl::StatusOr<std::vector<UniqueX509>> chain =
      ReadCertificates(pair.cert_chain, "tls-cert", options.tls_cert);
  if (!chain.ok()) return chain.status();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pair.private_key.data(),
                      static_cast<int>(pair.private_key.size())),
      BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
      EVP_PKEY_free);
  if (key == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("--tls-key=", options.tls_key,
                     ": holds no PEM private key (or one with a passphrase)",
                     OpenSslReason()));
  }
  if (X509_check_private_key(chain->front().get(), key.get()) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-key=", options.tls_key,
        ": is not the private key of the certificate in --tls-cert=",
        options.tls_cert, OpenSslReason()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::FailedPreconditionError(
          "--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::FailedPreconditionError(
        "--tls-cert and --tls-key must be given together");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if (auto s = ReadFile(options.tls_key, "tls-key", &pair.private_key);
      !s.ok()) {
    return s;
  }
  if (auto s = ReadFile(options.tls_cert, "tls-cert", &pair.cert_chain);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckKeyPair(pair, options); !s.ok()) return s;
  ssl.pem_key_cert_pairs.push_back(pair);
  if (!options.tls_client_ca.empty()) {
    if (auto s = ReadFile(options.tls_client_ca, "tls-client-ca",
                          &ssl.pem_root_certs);
        !s.ok()) {
      return s;
    }
    if (auto cas = ReadCertificates(ssl.pem_root_certs, "tls-client-ca",
                                    options.tls_client_ca);
        !cas.ok()) {
      return cas.status();
    }
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// gperftools' tcmalloc, when the binary links it (relu-server does, see
// RELU_ALLOCATOR in CMakeLists.txt): its free pages, and their release to
// the system.
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));
extern "C" int MallocExtension_GetNumericProperty(const char* property,
                                                  size_t* value)
    __attribute__((weak));

// Gives the heap's free pages back to the system once the server is quiet:
// after a burst of large calls, the allocator keeps their freed memory
// (glibc in its arenas, tcmalloc in its page heap), and the resident size
// would stay at the burst's peak. Checks every second; quiet means no call
// in flight and none arrived since the last check. Not between calls of a
// busy server: each release would be paid again as page faults by the next
// large call (64 MiB calls one at a time: p99 288 ms with a release at
// every check that found no call in flight, 94 ms with this rule).
// - tcmalloc: releases whenever its page heap holds a MiB or more of free
//   pages. Memory a cancelled call's transport frees after the calls ended
//   is released at a later check, not kept until the next call.
// - glibc: malloc_trim, once per quiet spell (it walks every arena).
class MemoryTrimmer {
 public:
  explicit MemoryTrimmer(const CallTracker* calls)
      : calls_(calls), thread_([this] { Run(); }) {}
  ~MemoryTrimmer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    CallTracker::Clock::rep seen = 0;           // last arrival, last check
    CallTracker::Clock::rep trimmed_after = 0;  // last arrival before a trim
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1),
                         [this] { return stopping_; })) {
      const CallTracker::Clock::rep arrival = calls_->last_call_arrival();
      const bool quiet = arrival == seen && calls_->calls() == 0;
      seen = arrival;
      if (!quiet) continue;
      if (MallocExtension_ReleaseFreeMemory != nullptr &&
          MallocExtension_GetNumericProperty != nullptr) {
        size_t free_bytes = 0;
        if (MallocExtension_GetNumericProperty("tcmalloc.pageheap_free_bytes",
                                               &free_bytes) &&
            free_bytes >= kReleaseFloorBytes) {
          MallocExtension_ReleaseFreeMemory();
        }
        continue;
      }
      if (arrival != trimmed_after) {
        malloc_trim(0);
        trimmed_after = arrival;
      }
    }
  }

  static constexpr size_t kReleaseFloorBytes = size_t{1} << 20;

  const CallTracker* const calls_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

absl::Status CannotListen(const std::string& address) {
  return absl::UnavailableError(
      absl::StrCat("cannot listen on --grpc-address=", address,
                   " (in use, or not a local address?)"));
}

// The request log's options from the server's (checked by
// ValidateServerOptions; an unparsed mode stays the default).
RequestLogOptions RequestLogFrom(const ServerOptions& options) {
  RequestLogOptions log;
  ParseRequestLogMode(options.request_log, &log).IgnoreError();
  log.path = options.request_log_file;
  log.buffer_lines = std::max<size_t>(options.request_log_buffer_lines, 1);
  return log;
}

ServerOptions Resolved(ServerOptions options) {
  ResolveDefaults(options);
  return options;
}

}  // namespace

struct ReluServer::Impl {
  explicit Impl(ServerOptions o)
      : options(Resolved(std::move(o))),
        shares(ShareMemory(options.memory_limit_bytes)),
        kernel(kernel::KernelOptions{options.kernel_threads,
                                     kernel::ParseIsa(options.kernel_isa),
                                     options.kernel_parallel_min_bytes}),
        metrics(metrics::MetricsOptions{RELU_VERSION,
                                        kernel::IsaName(kernel.isa())}),
        request_log(RequestLogFrom(options), &metrics),
        scheduler(
            options.batching,
            [this](const kernel::Segment* segments, size_t count) {
              kernel.ApplyBatch(segments, count);
            },
            batching::Clock::Real(), &metrics),
        calls(shares.responses_bytes,
              std::chrono::seconds(options.send_timeout_s)),
        admission(&scheduler, &metrics, &calls,
                  request_log.options().mode == RequestLogMode::kOff
                      ? nullptr
                      : &request_log),
        service(&admission, &calls, options.max_message_bytes),
        inference(&admission, &calls, RELU_VERSION, options.max_message_bytes) {
  }

  ServerOptions options;
  MemoryShares shares;
  kernel::Kernel kernel;
  metrics::ServerMetrics metrics;
  // Before the scheduler: calls it answers as it is destroyed are logged.
  RequestLog request_log;
  batching::BatchScheduler scheduler;
  // ApplyReLU and ModelInfer calls in flight, for the drain.
  CallTracker calls;
  // The front doors' one way to the batcher.
  Admission admission;
  ReluServiceImpl service;
  InferenceServiceImpl inference;
  std::atomic<bool> ready{false};
  std::unique_ptr<metrics::MetricsHttpServer> http;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<TcpListener> listener;  // null for non-TCP addresses
  int port = 0;
  // The soft descriptor limit. /readyz turns 503 when fewer than
  // kFileReserve descriptors are left (connections are then refused at
  // accept), and back to 200 once they free up.
  size_t file_limit = 0;
  // Gives freed heap pages back to the system once the server is idle.
  std::unique_ptr<MemoryTrimmer> trimmer;
  // The HTTP front door (null when off). Last, so that it stops first.
  std::unique_ptr<HttpFrontDoor> http_door;

  bool Ready() const {
    return ready.load() && (!listener || listener->accepting()) &&
           (file_limit == 0 ||
            OpenFileDescriptors() + kFileReserve < file_limit);
  }
  // Descriptors kept for the process itself (logs, metrics, /proc reads).
  static constexpr size_t kFileReserve = 64;
};

ReluServer::ReluServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ReluServer::~ReluServer() {
  if (impl_->server) {
    // Not drained: answer what the batcher holds (UNAVAILABLE) while the
    // calls still exist, then cut the rest.
    impl_->calls.StartDraining();
    impl_->scheduler.Drain(0);
    if (impl_->http_door) impl_->http_door->Stop();
    if (impl_->listener) impl_->listener->Stop();
    impl_->server->Shutdown(std::chrono::system_clock::now());
  }
}

absl::Status ReluServer::Start() {
  const ServerOptions& o = impl_->options;
  if (absl::Status s = ValidateServerOptions(o); !s.ok()) return s;
  auto credentials = MakeCredentials(o);
  if (!credentials.ok()) return credentials.status();
  if (RequestLogFrom(o).mode != RequestLogMode::kOff) {
    if (absl::Status s = impl_->request_log.Start(); !s.ok()) return s;
  }
  if (o.metrics_address != "off") {
    impl_->http = std::make_unique<metrics::MetricsHttpServer>(
        o.metrics_address, impl_->metrics.registry(),
        [impl = impl_.get()] { return impl->Ready(); });
    if (absl::Status s = impl_->http->Start(); !s.ok()) {
      impl_->http.reset();
      return s;
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  impl_->file_limit = RaiseFileLimit();
  grpc::ServerBuilder builder;
  // TCP addresses get our own listener (listener.h); other forms (unix:...)
  // gRPC's.
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor;
  absl::StatusOr<std::unique_ptr<TcpListener>> listener =
      TcpListener::Listen(o.grpc_address);
  if (listener.ok()) {
    impl_->listener = std::move(*listener);
    impl_->port = impl_->listener->port();
    acceptor = builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        *credentials);
  } else if (listener.status().code() == absl::StatusCode::kInvalidArgument) {
    builder.AddListeningPort(o.grpc_address, *credentials, &impl_->port);
  } else {
    spdlog::debug("{}", listener.status().ToString());
    return CannotListen(o.grpc_address);
  }
  builder.RegisterService(&impl_->service);
  builder.RegisterService(&impl_->inference);
  // A second server on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes));
  // What clients can make gRPC hold: bytes received and being received,
  // per-call and per-stream state. Past the quota gRPC refuses new streams
  // and resets growing ones.
  grpc::ResourceQuota quota("relu-server");
  quota.Resize(impl_->shares.requests_bytes);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             o.max_concurrent_streams);
  if (o.accept_compression) {
    // gRPC 1.51 inflates a message whole before checking its size; the
    // front doors inflate it themselves, bounded (grpc_message.h).
    builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
  } else {
    builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
    builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  }
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             o.keepalive_time_s * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             o.keepalive_timeout_s * 1000);
  // Let clients keep idle connections alive with pings this often.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (o.max_connection_age_s > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               o.max_connection_age_s * 1000);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               o.drain_timeout_s * 1000);
  }
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0) {
    impl_->server.reset();
    impl_->listener.reset();
    return CannotListen(o.grpc_address);
  }
  // gRPC made the socket file with the umask's permissions (and removes it
  // at shutdown).
  if (const std::string path = UnixSocketPath(o.grpc_address);
      !path.empty() &&
      chmod(path.c_str(), *ParseSocketMode(o.grpc_socket_mode)) != 0) {
    const int error = errno;
    impl_->server->Shutdown();
    impl_->server.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot set --grpc-socket-mode=", o.grpc_socket_mode,
                     " on ", path, ": ", std::strerror(error)));
  }
  if (impl_->listener) {
    // Connections past the cap are closed at accept; the reserve keeps
    // descriptors for the process itself.
    size_t cap = impl_->file_limit > Impl::kFileReserve
                     ? impl_->file_limit - Impl::kFileReserve
                     : impl_->file_limit;
    if (o.max_connections > 0) {
      cap = std::min(cap, OpenFileDescriptors() + o.max_connections);
    }
    impl_->listener->Start(std::move(acceptor), cap);
  }
  grpc::HealthCheckServiceInterface* health =
      impl_->server->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(kInferenceServiceName, true);
  health->SetServingStatus(true);
  if (o.http_address != "off") {
    HttpOptions http;
    http.address = o.http_address;
    http.max_body_bytes = o.max_message_bytes;
    http.timeout_ms = o.http_timeout_s * 1000;
    http.threads = o.http_threads;
    http.cors_origin = o.http_cors_origin;
    http.server_version = RELU_VERSION;
    impl_->http_door = std::make_unique<HttpFrontDoor>(
        std::move(http), &impl_->admission, &impl_->calls,
        [impl = impl_.get()] { return impl->Ready(); });
    if (absl::Status s = impl_->http_door->Start(); !s.ok()) {
      impl_->http_door.reset();
      return s;
    }
  }
  impl_->trimmer = std::make_unique<MemoryTrimmer>(&impl_->calls);
  impl_->ready = true;
  return absl::OkStatus();
}

std::string ReluServer::grpc_address() const {
  const std::string& address = impl_->options.grpc_address;
  if (!impl_->listener) return address;  // unix:, unix-abstract:
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", impl_->port);
}

int ReluServer::grpc_port() const { return impl_->port; }

std::string ReluServer::metrics_address() const {
  if (!impl_->http) return "";
  const std::string& address = impl_->options.metrics_address;
  return absl::StrCat(address.substr(0, address.rfind(':')), ":",
                      impl_->http->port());
}

std::string ReluServer::http_address() const {
  if (!impl_->http_door) return "";
  const std::string& address = impl_->options.http_address;
  return absl::StrCat(address.substr(0, address.rfind(':')), ":",
                      impl_->http_door->port());
}

std::string ReluServer::kernel_isa() const {
  return kernel::IsaName(impl_->kernel.isa());
}

size_t ReluServer::Drain() {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::seconds(impl_->options.drain_timeout_s);
  impl_->ready = false;
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->calls.StartDraining();
  const size_t cut = impl_->scheduler.Drain(
      int64_t{impl_->options.drain_timeout_s} * 1'000'000);
  // Every accepted call has been answered; wait (within the drain timeout)
  // until gRPC has sent their responses.
  const bool sent = impl_->calls.WaitForNoCalls(deadline);
  // Responses still undelivered now are cut by the shutdown below.
  const size_t unsent = sent ? 0 : impl_->calls.calls_with_responses();
  spdlog::debug("batch scheduler drained ({} calls cut); responses {}", cut,
                sent ? "sent"
                     : absl::StrCat("still in flight at the drain timeout (",
                                    unsent, " undelivered)"));
  // gRPC's shutdown cuts (CANCELLED) the calls that reach it between its
  // start and its GOAWAY reaching the client. Keep refusing with UNAVAILABLE
  // (which clients retry elsewhere) until calls stop coming, so that window
  // is quiet.
  impl_->calls.WaitForQuiet(std::chrono::milliseconds(200), deadline);
  // Stop accepting streams (GOAWAY); give calls that raced it a second to be
  // refused, then close the connections that clients keep open.
  // HTTP: close the connections once the calls in progress are answered.
  if (impl_->http_door) impl_->http_door->Stop();
  if (impl_->listener) impl_->listener->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::seconds(1));
  impl_->server->Wait();
  impl_->server.reset();
  return cut + unsent;
}

}  // namespace relu::service
