// relu::Client over a gRPC channel: the generated relu.v1 and grpc.health.v1
// stubs stay in this file.
#include "relu/client.h"

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"

namespace relu {

static_assert(sizeof(Float16) == 2 && std::is_trivially_copyable_v<Float16>);
static_assert(sizeof(BFloat16) == 2 && std::is_trivially_copyable_v<BFloat16>);

namespace {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Duration in the service config's JSON form ("0.1s").
std::string JsonDuration(std::chrono::milliseconds d) {
  return absl::StrCat(d.count() / 1000, ".", (d.count() % 1000) / 100,
                      (d.count() % 100) / 10, d.count() % 10, "s");
}

std::string ServiceConfigJson(const ClientOptions& o) {
  std::string config =
      absl::StrCat("{\"loadBalancingConfig\":[{\"", o.lb_policy, "\":{}}]");
  if (!o.health_check_service.empty()) {
    absl::StrAppend(&config, ",\"healthCheckConfig\":{\"serviceName\":\"",
                    o.health_check_service, "\"}");
  }
  if (o.max_attempts >= 2) {
    absl::StrAppend(
        &config,
        ",\"methodConfig\":[{\"name\":[{\"service\":\"relu.v1.ReluService\"},"
        "{\"service\":\"grpc.health.v1.Health\",\"method\":\"Check\"}],"
        "\"retryPolicy\":{\"maxAttempts\":",
        o.max_attempts, ",\"initialBackoff\":\"",
        JsonDuration(o.initial_backoff), "\",\"maxBackoff\":\"",
        JsonDuration(o.max_backoff),
        "\",\"backoffMultiplier\":", o.backoff_multiplier,
        ",\"retryableStatusCodes\":[\"UNAVAILABLE\"]}}]");
  }
  config += "}";
  return config;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ClientOptions& o) {
  if (o.tls_ca_file.empty() && o.tls_cert_file.empty() &&
      o.tls_key_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS client certificate and key must be given together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(o.tls_ca_file, "TLS CA file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!o.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadFile(o.tls_cert_file, "TLS certificate file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(o.tls_key_file, "TLS key file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

void ToProto(const ReluParams& params, v1::ReluParams* out) {
  if (params.max_value.has_value()) out->set_max_value(*params.max_value);
  out->set_negative_slope(params.negative_slope);
  out->set_threshold(params.threshold);
}

void ToProto(Tensor tensor, v1::Tensor* out) {
  out->set_dtype(static_cast<v1::DataType>(tensor.dtype));
  for (int64_t d : tensor.shape) out->add_shape(d);
  out->set_data(std::move(tensor.data));
}

// The response tensor, checked so that callers can index it by its shape:
// INTERNAL if the server's answer is not a well-formed tensor.
absl::StatusOr<Tensor> FromProto(v1::Tensor* in) {
  Tensor t;
  t.dtype = static_cast<DataType>(in->dtype());
  t.shape.assign(in->shape().begin(), in->shape().end());
  t.data = std::move(*in->mutable_data());
  const size_t size = ElementSize(t.dtype);
  uint64_t count = 1;
  bool ok = size != 0;
  for (int64_t d : t.shape) {
    if (d < 0 ||
        (d != 0 && count > (uint64_t{1} << 62) / static_cast<uint64_t>(d))) {
      ok = false;
      break;
    }
    count *= static_cast<uint64_t>(d);
  }
  if (!ok || t.data.size() != count * size) {
    return absl::InternalError("server answered with a malformed tensor");
  }
  return t;
}

// The decoded 1-D result of a typed Apply.
template <typename T>
absl::StatusOr<std::vector<T>> Decode(absl::StatusOr<Tensor> result,
                                      DataType dtype) {
  if (!result.ok()) return result.status();
  if (result->dtype != dtype) {
    return absl::InternalError("server answered with another dtype");
  }
  std::vector<T> values(result->data.size() / sizeof(T));
  if (!values.empty()) {
    std::memcpy(values.data(), result->data.data(), result->data.size());
  }
  return values;
}

template <typename T>
Tensor Encode(const std::vector<T>& values, DataType dtype) {
  Tensor t;
  t.dtype = dtype;
  t.shape = {static_cast<int64_t>(values.size())};
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

}  // namespace

struct Client::Impl {
  absl::Status init_status;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ReluService::Stub> relu_stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub;
  std::chrono::milliseconds deadline;

  void SetDeadline(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  }

  // Asynchronous calls whose callback has not returned yet.
  std::mutex mu;
  std::condition_variable idle;
  int async_calls = 0;  // guarded by mu

  void AsyncCallStarted() {
    std::lock_guard<std::mutex> lock(mu);
    ++async_calls;
  }
  void AsyncCallEnded() {
    std::lock_guard<std::mutex> lock(mu);
    if (--async_calls == 0) idle.notify_all();
  }
};

Client::Client(std::string target, ClientOptions options)
    : target_(std::move(target)),
      options_(std::move(options)),
      impl_(std::make_shared<Impl>()) {
  impl_->deadline = options_.deadline;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      MakeCredentials(options_);
  if (!creds.ok()) {
    impl_->init_status = creds.status();
    return;
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options_.max_send_message_bytes);
  args.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  args.SetServiceConfigJSON(ServiceConfigJson(options_));
  // The service config above is the one in force, even if DNS offers one.
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, options_.max_attempts >= 2 ? 1 : 0);
  args.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, options_.retry_buffer_bytes);
  if (options_.keepalive_time.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                static_cast<int>(options_.keepalive_time.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                static_cast<int>(options_.keepalive_timeout.count()));
  }
  impl_->channel = grpc::CreateCustomChannel(target_, *creds, args);
  impl_->relu_stub = v1::ReluService::NewStub(impl_->channel);
  impl_->health_stub = grpc::health::v1::Health::NewStub(impl_->channel);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(std::string target,
                                                       ClientOptions options) {
  auto client = std::make_unique<Client>(std::move(target), std::move(options));
  if (!client->init_status().ok()) return client->init_status();
  return client;
}

Client::~Client() {
  if (impl_ == nullptr) return;  // moved from
  // gRPC runs callbacks on its own threads: wait until each has returned and
  // its call's state is gone, so nothing outlives the client (or, at exit,
  // the process's static objects).
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->async_calls == 0; });
}

absl::Status Client::init_status() const { return impl_->init_status; }

absl::StatusOr<Tensor> Client::Apply(Tensor tensor, const ReluParams& params) {
  return Apply(std::move(tensor), params, nullptr);
}

namespace {

// Adds `trace`'s headers that are set to `ctx`'s metadata; INVALID_ARGUMENT
// for a value gRPC would not send (a byte outside printable ASCII).
absl::Status AddTraceMetadata(const CallTrace& trace,
                              grpc::ClientContext* ctx) {
  const std::pair<const char*, const std::string*> headers[] = {
      {"traceparent", &trace.traceparent},
      {"tracestate", &trace.tracestate},
      {"x-request-id", &trace.request_id}};
  for (const auto& [name, value] : headers) {
    if (value->empty()) continue;
    for (char c : *value) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " holds a byte outside printable ASCII"));
      }
    }
    ctx->AddMetadata(name, *value);
  }
  return absl::OkStatus();
}

// The server's trailing `name`, "" when absent.
std::string Trailer(const grpc::ClientContext& ctx, const char* name) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  const auto it = trailers.find(name);
  return it == trailers.end()
             ? std::string()
             : std::string(it->second.data(), it->second.size());
}

// The request id the server logged the call under: its x-request-id
// trailer, sent when the caller gave one; otherwise the trace id of its
// traceparent ("00-<32 hex>-<16 hex>-<2 hex>").
std::string ServerRequestId(const grpc::ClientContext& ctx,
                            const std::string& traceparent) {
  std::string id = Trailer(ctx, "x-request-id");
  if (id.empty() && traceparent.size() == 55) id = traceparent.substr(3, 32);
  return id;
}

}  // namespace

absl::StatusOr<Tensor> Client::Apply(Tensor tensor, const ReluParams& params,
                                     CallTrace* trace) {
  if (!impl_->init_status.ok()) return impl_->init_status;
  grpc::ClientContext ctx;
  if (trace != nullptr) {
    if (absl::Status s = AddTraceMetadata(*trace, &ctx); !s.ok()) return s;
  }
  v1::ApplyReLURequest request;
  ToProto(std::move(tensor), request.mutable_tensor());
  ToProto(params, request.mutable_params());
  v1::ApplyReLUResponse response;
  impl_->SetDeadline(&ctx);
  grpc::Status status = impl_->relu_stub->ApplyReLU(&ctx, request, &response);
  if (trace != nullptr) {
    trace->server_traceparent = Trailer(ctx, "traceparent");
    trace->server_request_id = ServerRequestId(ctx, trace->server_traceparent);
  }
  if (!status.ok()) return FromGrpcStatus(status);
  return FromProto(response.mutable_tensor());
}

absl::StatusOr<std::vector<float>> Client::Apply(
    const std::vector<float>& values, const ReluParams& params) {
  return Decode<float>(Apply(Encode(values, DataType::kFloat32), params),
                       DataType::kFloat32);
}
absl::StatusOr<std::vector<double>> Client::Apply(
    const std::vector<double>& values, const ReluParams& params) {
  return Decode<double>(Apply(Encode(values, DataType::kFloat64), params),
                        DataType::kFloat64);
}
absl::StatusOr<std::vector<Float16>> Client::Apply(
    const std::vector<Float16>& values, const ReluParams& params) {
  return Decode<Float16>(Apply(Encode(values, DataType::kFloat16), params),
                         DataType::kFloat16);
}
absl::StatusOr<std::vector<BFloat16>> Client::Apply(
    const std::vector<BFloat16>& values, const ReluParams& params) {
  return Decode<BFloat16>(Apply(Encode(values, DataType::kBFloat16), params),
                          DataType::kBFloat16);
}

namespace {

// Everything one asynchronous call needs until its completion runs; owns
// itself and deletes itself there. Holds the Impl so the channel outlives it.
struct AsyncCall {
  grpc::ClientContext ctx;
  v1::ApplyReLURequest request;
  v1::ApplyReLUResponse response;
  Client::ApplyCallback done;
};

}  // namespace

void Client::ApplyAsync(Tensor tensor, const ReluParams& params,
                        ApplyCallback done) {
  if (!impl_->init_status.ok()) {
    done(impl_->init_status);
    return;
  }
  auto* call = new AsyncCall{{}, {}, {}, std::move(done)};
  ToProto(std::move(tensor), call->request.mutable_tensor());
  ToProto(params, call->request.mutable_params());
  impl_->SetDeadline(&call->ctx);
  impl_->AsyncCallStarted();
  impl_->relu_stub->async()->ApplyReLU(
      &call->ctx, &call->request, &call->response,
      [call, impl = impl_.get()](grpc::Status status) {
        {
          std::unique_ptr<AsyncCall> owned(call);
          if (status.ok()) {
            owned->done(FromProto(owned->response.mutable_tensor()));
          } else {
            owned->done(FromGrpcStatus(status));
          }
        }
        impl->AsyncCallEnded();  // last: the client may be destroyed now
      });
}

std::future<absl::StatusOr<Tensor>> Client::ApplyAsync(
    Tensor tensor, const ReluParams& params) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Tensor>>>();
  std::future<absl::StatusOr<Tensor>> future = promise->get_future();
  ApplyAsync(std::move(tensor), params,
             [promise](absl::StatusOr<Tensor> result) {
               promise->set_value(std::move(result));
             });
  return future;
}

absl::StatusOr<ServingStatus> Client::Health(std::string_view service) {
  if (!impl_->init_status.ok()) return impl_->init_status;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::string(service));
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext ctx;
  impl_->SetDeadline(&ctx);
  grpc::Status status = impl_->health_stub->Check(&ctx, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return static_cast<ServingStatus>(response.status());
}

}  // namespace relu
