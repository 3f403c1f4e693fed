// relu.v1.ReluService over gRPC's callback API. The handler validates the
// request, moves its tensor into the response, and schedules one BatchTask
// that computes in place there; the batch thread finishes the call. Tensor
// bytes are copied twice per call, both by gRPC/protobuf: parsing the request
// and serializing the response. The kernel's one pass is in place.
#pragma once

#include <atomic>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/message_allocator.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/batching/batch_scheduler.h"

namespace relu::service {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

class ReluServiceImpl final : public v1::ReluService::CallbackService {
 public:
  // `scheduler` and `clock` must outlive the service.
  ReluServiceImpl(batching::BatchScheduler* scheduler, batching::Clock* clock);

  // From now on, new calls get UNAVAILABLE. Thread-safe.
  void StartDraining() { draining_.store(true); }

  grpc::ServerUnaryReactor* ApplyReLU(grpc::CallbackServerContext* context,
                                      const v1::ApplyReLURequest* request,
                                      v1::ApplyReLUResponse* response) override;

 private:
  // Gives the handler a mutable request, so its tensor bytes can be moved
  // into the response instead of copied.
  class Allocator final : public grpc::MessageAllocator<v1::ApplyReLURequest,
                                                        v1::ApplyReLUResponse> {
   public:
    grpc::MessageHolder<v1::ApplyReLURequest, v1::ApplyReLUResponse>*
    AllocateMessages() override;
  };

  batching::BatchScheduler* const scheduler_;
  batching::Clock* const clock_;
  Allocator allocator_;
  std::atomic<bool> draining_{false};
};

}  // namespace relu::service
