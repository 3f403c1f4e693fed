#include "server/service/relu_service.h"

#include <chrono>
#include <memory>

#include "server/service/validation.h"
#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

using Holder = grpc::MessageHolder<v1::ApplyReLURequest, v1::ApplyReLUResponse>;

// A call's messages; gRPC releases them once the call is over.
class OwnedMessages final : public Holder {
 public:
  explicit OwnedMessages(std::function<void()> on_release)
      : on_release_(std::move(on_release)) {
    set_request(&request_);
    set_response(&response_);
  }
  void Release() override {
    on_release_();
    delete this;
  }

 private:
  const std::function<void()> on_release_;
  v1::ApplyReLURequest request_;
  v1::ApplyReLUResponse response_;
};

// Answers one call and records it: metrics first, so a client that sees the
// response also sees it counted.
class CallFinisher {
 public:
  CallFinisher(grpc::ServerUnaryReactor* reactor,
               metrics::ServerMetrics* metrics)
      : reactor_(reactor),
        metrics_(metrics),
        start_(std::chrono::steady_clock::now()) {
    metrics_->OnRequestStarted();
  }

  // The request's tensor, known once the request is valid.
  void SetTensor(kernel::DType dtype, size_t elements, size_t bytes) {
    dtype_ = dtype;
    elements_ = elements;
    bytes_ = bytes;
  }

  grpc::ServerUnaryReactor* Finish(const absl::Status& status) {
    if (!status.ok()) SPDLOG_DEBUG("ApplyReLU failed: {}", status.ToString());
    if (status.ok() && elements_ > 0) metrics_->OnElements(dtype_, elements_);
    const std::chrono::duration<double> seconds =
        std::chrono::steady_clock::now() - start_;
    metrics_->OnRequestFinished(
        metrics::Method::kApplyReLU, static_cast<int>(status.code()),
        seconds.count(), bytes_, status.ok() ? bytes_ : 0);
    reactor_->Finish(ToGrpcStatus(status));
    return reactor_;
  }

 private:
  grpc::ServerUnaryReactor* const reactor_;
  metrics::ServerMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
  kernel::DType dtype_ = kernel::DType::kFloat32;
  size_t elements_ = 0;
  size_t bytes_ = 0;
};

// One call waiting for, or in, a batch. The scheduler deletes the task right
// after Done(), which hands the call back to gRPC.
class ApplyReluTask final : public batching::BatchTask {
 public:
  ApplyReluTask(grpc::CallbackServerContext* context, CallFinisher finisher)
      : context_(context), finisher_(finisher) {}

  bool IsCancelled() const override { return context_->IsCancelled(); }
  void Done(absl::Status status) override { finisher_.Finish(status); }

 private:
  grpc::CallbackServerContext* const context_;
  CallFinisher finisher_;
};

// The call's deadline in `clock`'s time, INT64_MAX when it has none.
int64_t DeadlineMicros(const grpc::CallbackServerContext& context,
                       batching::Clock& clock) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return INT64_MAX;
  }
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      deadline - std::chrono::system_clock::now());
  return clock.NowMicros() + left.count();
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

Holder* ReluServiceImpl::Allocator::AllocateMessages() {
  CallTracker* calls = service_->calls_;
  calls->CallStarted();
  return new OwnedMessages([calls] { calls->CallEnded(); });
}

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
  CallFinisher finisher(reactor, metrics_);
  if (calls_->draining()) {
    metrics_->OnRejected(batching::RejectReason::kDraining);
    return finisher.Finish(absl::UnavailableError("server is draining"));
  }
  // The allocator above made the messages, so the request is ours to change.
  v1::ApplyReLURequest* request =
      static_cast<Holder*>(context->GetRpcAllocatorState())->request();
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
      std::make_unique<ApplyReluTask>(context, finisher);
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
