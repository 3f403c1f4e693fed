#include "server/service/relu_service.h"

#include <chrono>
#include <memory>

#include "server/service/validation.h"
#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

using Holder = grpc::MessageHolder<v1::ApplyReLURequest, v1::ApplyReLUResponse>;

class OwnedMessages final : public Holder {
 public:
  OwnedMessages() {
    set_request(&request_);
    set_response(&response_);
  }
  void Release() override { delete this; }

 private:
  v1::ApplyReLURequest request_;
  v1::ApplyReLUResponse response_;
};

// One call waiting for, or in, a batch. Finishing the reactor hands the call
// back to gRPC; the scheduler deletes the task right after Done().
class ApplyReluTask final : public batching::BatchTask {
 public:
  ApplyReluTask(grpc::CallbackServerContext* context,
                grpc::ServerUnaryReactor* reactor)
      : context_(context), reactor_(reactor) {}

  bool IsCancelled() const override { return context_->IsCancelled(); }
  void Done(absl::Status status) override {
    if (!status.ok()) {
      SPDLOG_DEBUG("ApplyReLU failed in the batcher: {}", status.ToString());
    }
    reactor_->Finish(ToGrpcStatus(status));
  }

 private:
  grpc::CallbackServerContext* const context_;
  grpc::ServerUnaryReactor* const reactor_;
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
  return new OwnedMessages();
}

ReluServiceImpl::ReluServiceImpl(batching::BatchScheduler* scheduler,
                                 batching::Clock* clock)
    : scheduler_(scheduler), clock_(clock) {
  SetMessageAllocatorFor_ApplyReLU(&allocator_);
}

grpc::ServerUnaryReactor* ReluServiceImpl::ApplyReLU(
    grpc::CallbackServerContext* context, const v1::ApplyReLURequest*,
    v1::ApplyReLUResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto finish = [reactor](const absl::Status& status) {
    if (!status.ok()) SPDLOG_DEBUG("ApplyReLU refused: {}", status.ToString());
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  };
  if (draining_.load(std::memory_order_relaxed)) {
    return finish(absl::UnavailableError("server is draining"));
  }
  // The allocator above made the messages, so the request is ours to change.
  v1::ApplyReLURequest* request =
      static_cast<Holder*>(context->GetRpcAllocatorState())->request();
  absl::StatusOr<ValidatedRequest> valid = ValidateRequest(*request);
  if (!valid.ok()) return finish(valid.status());

  v1::Tensor* out = response->mutable_tensor();
  out->set_dtype(request->tensor().dtype());
  out->mutable_shape()->Swap(request->mutable_tensor()->mutable_shape());
  out->mutable_data()->swap(*request->mutable_tensor()->mutable_data());
  if (valid->elements == 0) return finish(absl::OkStatus());

  auto task = std::make_unique<ApplyReluTask>(context, reactor);
  std::string& data = *out->mutable_data();
  task->segment = {valid->dtype, valid->params, data.data(), data.data(),
                   valid->elements};
  task->bytes = valid->bytes;
  task->deadline_micros = DeadlineMicros(*context, *clock_);
  absl::Status scheduled = scheduler_->Schedule(task);
  if (!scheduled.ok()) return finish(scheduled);
  return reactor;
}

}  // namespace relu::service
