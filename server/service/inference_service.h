// The Open Inference Protocol (KServe v2 gRPC, inference.GRPCInferenceService)
// for one model, `relu` version `1`: tf.keras.layers.ReLU over one tensor.
//
// ModelInfer shares everything with relu.v1's ApplyReLU: the same checks and
// messages (infer_request.h, on validation.h's), and the same admission
// (admission.h: drain, metrics with method="ModelInfer", deadline, the batch
// scheduler and kernel). Like ApplyReLU it computes in place: its Call's
// Decode() moves the input's bytes (raw_input_contents[0], or the fp32/fp64
// contents) into the response, where the kernel writes the result.
//
// The model:
//   input  `input`:  FP32, FP64, FP16 or BF16, any shape (any rank);
//                    data in raw_input_contents (all four) or in
//                    contents.fp32_contents / contents.fp64_contents.
//   output `output`: the input's datatype and shape; in raw_output_contents
//                    when the request used raw_input_contents (or the
//                    datatype has no typed field), else in the typed field.
//   request parameters (all optional): `max_value` (absent = unlimited),
//                    `negative_slope`, `threshold` (default 0), each a
//                    double_param or an int64_param (converted to double).
// Anything else in the request (other parameters, tensor parameters such as
// shared memory regions, other outputs) is refused with INVALID_ARGUMENT
// rather than ignored.
#pragma once

#include <string>

#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/service/admission.h"
#include "server/service/call_tracker.h"
#include "server/service/grpc_call.h"
#include "server/service/infer_request.h"

namespace relu::service {

// ModelInfer is a raw method (ByteBuffer in and out): its request's shapes are
// counted on the wire before protobuf parses it (request_wire.h), so a huge
// shape is refused before it takes memory.
class InferenceServiceImpl final
    : public inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
          inference::GRPCInferenceService::CallbackService> {
 public:
  // `admission` and `calls` must outlive the service. ModelInfer calls count
  // in `calls` (see ReluServiceImpl) and go through `admission`; once
  // calls->draining(), ModelInfer answers UNAVAILABLE and ServerReady /
  // ModelReady say false. `version` is the server's, for ServerMetadata. A
  // compressed request inflates to at most `max_message_bytes`.
  InferenceServiceImpl(Admission* admission, CallTracker* calls,
                       std::string version, size_t max_message_bytes);

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* context,
      const inference::ServerLiveRequest* request,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* context,
      const inference::ServerReadyRequest* request,
      inference::ServerReadyResponse* response) override;
  // NOT_FOUND for another model or version.
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* context,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context,
      const inference::ServerMetadataRequest* request,
      inference::ServerMetadataResponse* response) override;
  // NOT_FOUND for another model or version.
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

 private:
  Admission* const admission_;
  CallTracker* const calls_;
  const std::string version_;
  const size_t max_message_bytes_;
  TrackedAllocator<grpc::ByteBuffer, grpc::ByteBuffer> allocator_{calls_};
};

}  // namespace relu::service
