#include "server/service/server.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
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
#include "server/service/inference_service.h"
#include "server/service/relu_service.h"
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

}  // namespace

struct ReluServer::Impl {
  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        kernel(kernel::KernelOptions{options.kernel_threads,
                                     kernel::ParseIsa(options.kernel_isa),
                                     options.kernel_parallel_min_bytes}),
        metrics(metrics::MetricsOptions{RELU_VERSION,
                                        kernel::IsaName(kernel.isa())}),
        scheduler(
            options.batching,
            [this](const kernel::Segment* segments, size_t count) {
              kernel.ApplyBatch(segments, count);
            },
            batching::Clock::Real(), &metrics),
        admission(&scheduler, &metrics, &calls),
        service(&admission, &calls),
        inference(&admission, &calls, RELU_VERSION) {}

  ServerOptions options;
  kernel::Kernel kernel;
  metrics::ServerMetrics metrics;
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
  int port = 0;
};

ReluServer::ReluServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ReluServer::~ReluServer() {
  if (impl_->server) {
    // Not drained: answer what the batcher holds (UNAVAILABLE) while the
    // calls still exist, then cut the rest.
    impl_->calls.StartDraining();
    impl_->scheduler.Drain(0);
    impl_->server->Shutdown(std::chrono::system_clock::now());
  }
}

absl::Status ReluServer::Start() {
  const ServerOptions& o = impl_->options;
  if (absl::Status s = ValidateServerOptions(o); !s.ok()) return s;
  auto credentials = MakeCredentials(o);
  if (!credentials.ok()) return credentials.status();
  if (o.metrics_address != "off") {
    impl_->http = std::make_unique<metrics::MetricsHttpServer>(
        o.metrics_address, impl_->metrics.registry(),
        [impl = impl_.get()] { return impl->ready.load(); });
    if (absl::Status s = impl_->http->Start(); !s.ok()) {
      impl_->http.reset();
      return s;
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.grpc_address, *credentials, &impl_->port);
  builder.RegisterService(&impl_->service);
  builder.RegisterService(&impl_->inference);
  // A second server on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes));
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
    return absl::UnavailableError(
        absl::StrCat("cannot listen on --grpc-address=", o.grpc_address,
                     " (in use, or not a local address?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      impl_->server->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(kInferenceServiceName, true);
  health->SetServingStatus(true);
  impl_->ready = true;
  return absl::OkStatus();
}

std::string ReluServer::grpc_address() const {
  const std::string& address = impl_->options.grpc_address;
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", impl_->port);
}

int ReluServer::grpc_port() const { return impl_->port; }

std::string ReluServer::metrics_address() const {
  if (!impl_->http) return "";
  const std::string& address = impl_->options.metrics_address;
  return absl::StrCat(address.substr(0, address.rfind(':')), ":",
                      impl_->http->port());
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
  spdlog::debug("batch scheduler drained ({} calls cut); responses {}", cut,
                sent ? "sent" : "still in flight at the drain timeout");
  // gRPC's shutdown cuts (CANCELLED) the calls that reach it between its
  // start and its GOAWAY reaching the client. Keep refusing with UNAVAILABLE
  // (which clients retry elsewhere) until calls stop coming, so that window
  // is quiet.
  impl_->calls.WaitForQuiet(std::chrono::milliseconds(200), deadline);
  // Stop accepting streams (GOAWAY); give calls that raced it a second to be
  // refused, then close the connections that clients keep open.
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::seconds(1));
  impl_->server->Wait();
  impl_->server.reset();
  return cut;
}

}  // namespace relu::service
