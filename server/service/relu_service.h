// relu.v1.ReluService over gRPC's raw callback API (ByteBuffer in, ByteBuffer
// out), so that the kernel's one pass is the only time a call's tensor bytes
// are touched on the server: it reads tensor.data where gRPC received it and
// writes the response's data where gRPC sends it from. Parsing and the
// response's wire format are in request_wire.h; checks and
// messages are validation.h's, and admission (drain, metrics, deadline,
// batching) is admission.h's, as for any other call.
#pragma once

#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/service/admission.h"
#include "server/service/call_tracker.h"
#include "server/service/grpc_call.h"

namespace relu::service {

class ReluServiceImpl final
    : public v1::ReluService::WithRawCallbackMethod_ApplyReLU<
          v1::ReluService::Service> {
 public:
  // `admission` and `calls` must outlive the service. Each ApplyReLU call
  // counts in `calls` from the allocation of its messages until gRPC has
  // sent its status and released them; `admission` takes it from its decode
  // to its answer. A compressed request inflates to at most
  // `max_message_bytes`.
  ReluServiceImpl(Admission* admission, CallTracker* calls,
                  size_t max_message_bytes);

  // Answers: INVALID_ARGUMENT for bytes that are not an ApplyReLURequest
  // ("request is not a valid relu.v1.ApplyReLURequest ...") and for an
  // invalid one (ValidateRequest's message); Admission's answers
  // (UNAVAILABLE, RESOURCE_EXHAUSTED, deadline and cancel); else OK with the
  // response tensor: the request's dtype and shape, and the ReLU of its data.
  grpc::ServerUnaryReactor* ApplyReLU(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;

 private:
  Admission* const admission_;
  CallTracker* const calls_;
  const size_t max_message_bytes_;
  // Counts the calls. Not a reactor of our own with OnDone(): gRPC runs such
  // callbacks on its executor thread, one more thread hop per call.
  TrackedAllocator<grpc::ByteBuffer, grpc::ByteBuffer> allocator_{calls_};
};

}  // namespace relu::service
