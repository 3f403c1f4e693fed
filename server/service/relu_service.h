// relu.v1.ReluService over gRPC's callback API. The handler validates the
// request, moves its tensor into the response, and schedules one BatchTask
// that computes in place there; the batch thread finishes the call. Tensor
// bytes are copied twice per call, both by gRPC/protobuf: parsing the request
// and serializing the response. The kernel's one pass is in place.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/metrics/server_metrics.h"
#include "server/service/call.h"
#include "server/service/call_tracker.h"

namespace relu::service {

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
  batching::BatchScheduler* const scheduler_;
  metrics::ServerMetrics* const metrics_;
  CallTracker* const calls_;
  TrackedAllocator<v1::ApplyReLURequest, v1::ApplyReLUResponse> allocator_{
      calls_};
};

}  // namespace relu::service
