#include "server/service/grpc_call.h"

#include <string>

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

}  // namespace relu::service
