// A received gRPC message's bytes when it came compressed. gRPC 1.51 inflates
// a compressed message whole before it checks its size (a 1 GiB gzip bomb of
// 1 MiB was inflated to the end), so with --accept-compression the server
// turns gRPC's decompression off (GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION)
// and inflates here: never past the message limit, and each slice reserved
// from the server's memory budget before it is allocated.
#pragma once

#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"

namespace relu::service {

// True when `message` arrived compressed (gzip or deflate).
bool IsCompressed(const grpc::ByteBuffer& message);

// Inflates the compressed `message` into `out`. Before each slice of output
// is allocated, `reserve(bytes)` must return OK (its error is returned
// otherwise). Errors: RESOURCE_EXHAUSTED past `max_bytes` of output (as
// gRPC's own receive limit); INVALID_ARGUMENT for bytes that do not inflate,
// or that go on after the compressed stream ends.
absl::Status InflateMessage(const grpc::ByteBuffer& message, size_t max_bytes,
                            absl::FunctionRef<absl::Status(size_t)> reserve,
                            grpc::ByteBuffer* out);

}  // namespace relu::service
