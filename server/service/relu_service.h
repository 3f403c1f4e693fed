// relu.v1.ReluService over gRPC's callback API. The handler validates the
// request, moves its tensor into the response, and schedules one BatchTask
// that computes in place there; the batch thread finishes the call. Tensor
// bytes are copied twice per call, both by gRPC/protobuf: parsing the request
// and serializing the response. The kernel's one pass is in place.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/message_allocator.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/metrics/server_metrics.h"

namespace relu::service {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

class ReluServiceImpl final : public v1::ReluService::CallbackService {
 public:
  // `scheduler` and `metrics` must outlive the service.
  ReluServiceImpl(batching::BatchScheduler* scheduler,
                  metrics::ServerMetrics* metrics);

  // From now on, new calls get UNAVAILABLE. Thread-safe.
  void StartDraining() { draining_.store(true); }

  // Waits until no ApplyReLU call is in progress (each call counts from the
  // allocation of its messages until gRPC has sent its status and released
  // them) or `deadline` passes. Returns whether none is. Thread-safe.
  bool WaitForNoCalls(std::chrono::steady_clock::time_point deadline);

  // Waits until no call has arrived for `quiet`, or `deadline` passes.
  void WaitForQuiet(std::chrono::steady_clock::duration quiet,
                    std::chrono::steady_clock::time_point deadline);

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
  // Called as each call's messages are released.
  void CallReleased();

  batching::BatchScheduler* const scheduler_;
  metrics::ServerMetrics* const metrics_;
  Allocator allocator_{this};
  std::atomic<bool> draining_{false};
  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  int calls_ = 0;  // guarded by calls_mu_
  // steady_clock time of the last call's arrival.
  std::atomic<std::chrono::steady_clock::rep> last_call_{0};
};

}  // namespace relu::service
