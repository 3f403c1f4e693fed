// relu.v1.ReluService over gRPC's callback API. The handler validates the
// request, moves its tensor into the response, and schedules one BatchTask
// that computes in place there; the batch thread finishes the call. Tensor
// bytes are copied twice per call, both by gRPC/protobuf: parsing the request
// and serializing the response. The kernel's one pass is in place.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/message_allocator.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/metrics/server_metrics.h"
#include "server/service/call_tracker.h"

namespace relu::service {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

class ReluServiceImpl final : public v1::ReluService::CallbackService {
 public:
  // `scheduler`, `metrics` and `calls` must outlive the service. Each
  // ApplyReLU call counts in `calls` from the allocation of its messages
  // until gRPC has sent its status and released them; once
  // calls->draining(), new calls get UNAVAILABLE.
  ReluServiceImpl(batching::BatchScheduler* scheduler,
                  metrics::ServerMetrics* metrics, CallTracker* calls);

  grpc::ServerUnaryReactor* ApplyReLU(grpc::CallbackServerContext* context,
                                      const v1::ApplyReLURequest* request,
                                      v1::ApplyReLUResponse* response) override;

 private:
  // Gives the handler a mutable request, so its tensor bytes can be moved
  // into the response instead of copied.
  class Allocator final : public grpc::MessageAllocator<v1::ApplyReLURequest,
                                                        v1::ApplyReLUResponse> {
   public:
    explicit Allocator(ReluServiceImpl* service) : service_(service) {}
    grpc::MessageHolder<v1::ApplyReLURequest, v1::ApplyReLUResponse>*
    AllocateMessages() override;

   private:
    ReluServiceImpl* const service_;
  };
  batching::BatchScheduler* const scheduler_;
  metrics::ServerMetrics* const metrics_;
  CallTracker* const calls_;
  Allocator allocator_{this};
};

}  // namespace relu::service
