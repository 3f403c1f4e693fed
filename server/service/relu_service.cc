#include "server/service/relu_service.h"

#include <chrono>
#include <memory>

#include "server/service/validation.h"
#include "spdlog/spdlog.h"

namespace relu::service {

ReluServiceImpl::ReluServiceImpl(batching::BatchScheduler* scheduler,
                                 metrics::ServerMetrics* metrics,
                                 CallTracker* calls)
    : scheduler_(scheduler), metrics_(metrics), calls_(calls) {
  SetMessageAllocatorFor_ApplyReLU(&allocator_);
}

grpc::ServerUnaryReactor* ReluServiceImpl::ApplyReLU(
    grpc::CallbackServerContext* context, const v1::ApplyReLURequest*,
    v1::ApplyReLUResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallFinisher finisher(reactor, metrics_, metrics::Method::kApplyReLU);
  if (calls_->draining()) {
    metrics_->OnRejected(batching::RejectReason::kDraining);
    return finisher.Finish(absl::UnavailableError("server is draining"));
  }
  // The allocator above made the messages, so the request is ours to change.
  v1::ApplyReLURequest* request = decltype(allocator_)::MutableRequest(context);
  absl::StatusOr<ValidatedRequest> valid = ValidateRequest(*request);
  if (!valid.ok()) {
    metrics_->OnInvalid();
    return finisher.Finish(valid.status());
  }
  finisher.SetTensor(valid->dtype, valid->elements, valid->bytes);

  v1::Tensor* out = response->mutable_tensor();
  out->set_dtype(request->tensor().dtype());
  out->mutable_shape()->Swap(request->mutable_tensor()->mutable_shape());
  out->mutable_data()->swap(*request->mutable_tensor()->mutable_data());
  if (valid->elements == 0) return finisher.Finish(absl::OkStatus());

  std::unique_ptr<batching::BatchTask> task =
      std::make_unique<CallTask>(context, finisher);
  std::string& data = *out->mutable_data();
  task->segment = {valid->dtype, valid->params, data.data(), data.data(),
                   valid->elements};
  task->bytes = valid->bytes;
  task->deadline_micros = DeadlineMicros(*context, *batching::Clock::Real());
  absl::Status scheduled = scheduler_->Schedule(task);
  if (!scheduled.ok()) return finisher.Finish(scheduled);
  return reactor;
}

}  // namespace relu::service
