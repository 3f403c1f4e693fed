// Pieces every computing RPC shares (relu.v1 ApplyReLU and the Open Inference
// Protocol's ModelInfer): message allocation that counts calls for the drain,
// the finish that records metrics, and the BatchTask that carries a call
// through the batcher.
#pragma once

#include <chrono>
#include <cstdint>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/message_allocator.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/relu_kernel.h"
#include "server/metrics/server_metrics.h"
#include "server/service/call_tracker.h"

namespace relu::service {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The call's deadline in `clock`'s time, INT64_MAX when it has none.
int64_t DeadlineMicros(const grpc::CallbackServerContext& context,
                       batching::Clock& clock);

// Allocates a call's messages (so the handler may change the request: its
// tensor bytes are moved into the response, not copied) and counts the call
// in `calls` until gRPC releases them. Thread-safe.
template <typename Request, typename Response>
class TrackedAllocator final
    : public grpc::MessageAllocator<Request, Response> {
 public:
  using Holder = grpc::MessageHolder<Request, Response>;

  explicit TrackedAllocator(CallTracker* calls) : calls_(calls) {}

  Holder* AllocateMessages() override {
    auto* messages = new Messages(calls_);
    calls_->CallStarted(messages);
    return messages;
  }

  // The handler's own request, mutable.
  static Request* MutableRequest(grpc::CallbackServerContext* context) {
    return static_cast<Holder*>(context->GetRpcAllocatorState())->request();
  }

  // The call's entry in the tracker, its context recorded.
  static CallTracker::Call* TrackedCall(grpc::CallbackServerContext* context) {
    auto* messages = static_cast<Messages*>(
        static_cast<Holder*>(context->GetRpcAllocatorState()));
    messages->set_context(context);
    return messages;
  }

 private:
  class Messages final : public Holder, public CallTracker::Call {
   public:
    explicit Messages(CallTracker* calls) : calls_(calls) {
      this->set_request(&request_);
      this->set_response(&response_);
    }
    void Release() override {
      calls_->CallEnded(this);
      delete this;
    }

   private:
    CallTracker* const calls_;
    Request request_;
    Response response_;
  };

  CallTracker* const calls_;
};

// Answers one call and records it: metrics first, so a client that sees the
// response also sees it counted. Copyable; exactly one copy may Finish().
class CallFinisher {
 public:
  // `call` (may be null) is marked answered when the call finishes OK, so
  // that the tracker times its delivery.
  CallFinisher(grpc::ServerUnaryReactor* reactor,
               metrics::ServerMetrics* metrics, metrics::Method method,
               CallTracker::Call* call = nullptr);

  // The request's tensor, known once the request is valid.
  void SetTensor(kernel::DType dtype, size_t elements, size_t bytes);

  grpc::ServerUnaryReactor* Finish(const absl::Status& status);

 private:
  grpc::ServerUnaryReactor* reactor_;
  metrics::ServerMetrics* metrics_;
  CallTracker::Call* call_;
  metrics::Method method_;
  std::chrono::steady_clock::time_point start_;
  kernel::DType dtype_ = kernel::DType::kFloat32;
  size_t elements_ = 0;
  size_t bytes_ = 0;
};

// One protobuf-typed call (ModelInfer) waiting for, or in, a batch. The
// scheduler deletes the task right after Done(), which hands the call back to
// gRPC. (ApplyReLU's raw calls have their own task, in relu_service.cc.)
class CallTask final : public batching::BatchTask {
 public:
  CallTask(grpc::CallbackServerContext* context, CallFinisher finisher)
      : context_(context), finisher_(finisher) {}

  bool IsCancelled() const override { return context_->IsCancelled(); }
  void Done(absl::Status status) override { finisher_.Finish(status); }

 private:
  grpc::CallbackServerContext* const context_;
  CallFinisher finisher_;
};

}  // namespace relu::service
