#include "server/service/grpc_call.h"

#include <string>
#include <string_view>

#include "server/service/grpc_message.h"

namespace relu::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::StatusOr<const grpc::ByteBuffer*> GrpcCall::Received(
    const grpc::ByteBuffer* message, grpc::ByteBuffer* inflated) {
  if (!IsCompressed(*message)) return message;
  absl::Status status = InflateMessage(
      *message, max_message_bytes_,
      [this](size_t bytes) {
        return ReserveResponse(bytes, "a decompressed request");
      },
      inflated);
  if (!status.ok()) return status;
  return inflated;
}

TraceContext ReadTraceContext(grpc::ServerContextBase* context) {
  const auto& metadata = context->client_metadata();
  auto value = [&metadata](const char* name) -> std::string_view {
    // Several values of one header: none is taken (W3C: a traceparent
    // sent twice is invalid).
    const auto it = metadata.find(name);
    if (it == metadata.end() || metadata.count(name) > 1) return {};
    return std::string_view(it->second.data(), it->second.size());
  };
  return TraceContext::FromHeaders(value(kTraceparentHeader),
                                   value(kTracestateHeader),
                                   value(kRequestIdHeader));
}

void GrpcCall::Respond(const absl::Status& status) {
  MarkAnswered();
  if (trace().ReturnsIds(!status.ok())) {
    trace().EnsureIds();
    context_->AddTrailingMetadata(kTraceparentHeader,
                                  trace().ResponseTraceparent());
    if (trace().request_id_sent) {
      context_->AddTrailingMetadata(kRequestIdHeader, trace().request_id);
    }
  }
  reactor_->Finish(ToGrpcStatus(status));
}

}  // namespace relu::service
