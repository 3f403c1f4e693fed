// relu.v1.ReluService/ApplyReLU over gRPC's raw callback API (ByteBuffer in,
// ByteBuffer out), so the kernel's one pass writes the output straight into
// the response's wire bytes. Per call: protobuf copies the tensor out of the
// received slices once (parse), the kernel reads that copy and writes a
// response slice, and gRPC sends the slice as is. ReluServiceImpl copies
// twice (parse, serialize) around an in-place pass; this saves one copy.
//
// Same checks and answers as ReluServiceImpl (ValidateRequest), same batching
// (a BatchTask per call whose segment reads the request and writes the
// response slice). Not yet here: metrics, CallTracker draining. Not wired into
// server.cc; see bench/raw/raw_relu_server.cc for a server that uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/batching/batch_scheduler.h"

namespace relu::service {

class RawReluService final
    : public v1::ReluService::WithRawCallbackMethod_ApplyReLU<
          v1::ReluService::Service> {
 public:
  // `scheduler` must outlive the service. Thread-safe.
  explicit RawReluService(batching::BatchScheduler* scheduler);

  // Parses and validates the request, schedules its ReLU into a new response
  // slice and returns the reactor; the batch thread finishes the call. A
  // request protobuf cannot parse gets INTERNAL, an invalid one
  // INVALID_ARGUMENT (ValidateRequest's message), a full queue
  // RESOURCE_EXHAUSTED.
  grpc::ServerUnaryReactor* ApplyReLU(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;

 private:
  batching::BatchScheduler* const scheduler_;
};

// The wire bytes of an ApplyReLUResponse with the given tensor, up to but not
// including the `data_bytes` of tensor.data, which follow it on the wire.
// Matches protobuf's serialization of the same message (proto3: zero dtype,
// empty shape and empty data are omitted; shape is packed).
std::string EncodeResponsePrefix(int dtype, absl::Span<const int64_t> shape,
                                 size_t data_bytes);

}  // namespace relu::service
