#include "server/service/grpc_call.h"

#include <string>
#include <string_view>

namespace relu::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
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
  TraceContext trace = TraceContext::FromHeaders(value(kTraceparentHeader),
                                                 value(kTracestateHeader),
                                                 value(kRequestIdHeader));
  context->AddTrailingMetadata(kTraceparentHeader, trace.ResponseTraceparent());
  context->AddTrailingMetadata(kRequestIdHeader, trace.request_id);
  return trace;
}

}  // namespace relu::service
