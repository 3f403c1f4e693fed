// What the gRPC front doors (relu.v1 ApplyReLU, the Open Inference Protocol's
// ModelInfer) share: the status conversion, message allocation that counts
// calls for the drain, and the Call (admission.h) of a unary callback method.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/message_allocator.h"
#include "server/metrics/server_metrics.h"
#include "server/service/admission.h"
#include "server/service/call_tracker.h"
#include "server/service/trace_context.h"

namespace relu::service {

// absl and gRPC status codes share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The call's trace context from its `traceparent`, `tracestate` and
// `x-request-id` metadata (TraceContext::FromHeaders).
TraceContext ReadTraceContext(grpc::ServerContextBase* context);

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

// A Call on a gRPC unary callback method: its deadline and cancellation are
// the context's, and it answers through `reactor` (the context's default
// reactor). A front door adds Decode() and, to encode its response, extends
// Respond().
class GrpcCall : public Call {
 public:
  // `tracked` is the call's entry in the CallTracker (TrackedAllocator's
  // TrackedCall()): its response reservation, and its delivery timed.
  // `max_message_bytes` bounds a compressed request's inflated bytes.
  GrpcCall(metrics::Method method, grpc::CallbackServerContext* context,
           grpc::ServerUnaryReactor* reactor, CallTracker::Call* tracked,
           size_t max_message_bytes)
      : Call(method, context->deadline(), tracked),
        context_(context),
        reactor_(reactor),
        max_message_bytes_(max_message_bytes) {
    trace() = ReadTraceContext(context);
    set_front_door("grpc");
  }

  bool IsCancelled() const override { return context_->IsCancelled(); }
  std::string Peer() const override { return context_->peer(); }
  // Finishes the reactor with `status` (the response as the handler left
  // it). When the ids go back (TraceContext::ReturnsIds), they are in the
  // trailing metadata: `traceparent` (the call's own span) and, when the
  // caller sent one, `x-request-id` (without, the request id is the trace
  // id, which the traceparent carries). Trailing, not initial: trailers
  // reach the caller with every status, a refusal or an error included.
  void Respond(const absl::Status& status) override;

 protected:
  // For Decode(): the request's bytes. `message` itself, or, when it came
  // compressed (--accept-compression), its bytes inflated into `inflated`
  // (grpc_message.h: at most --max-message-bytes, each slice reserved from
  // the responses' memory budget first).
  absl::StatusOr<const grpc::ByteBuffer*> Received(
      const grpc::ByteBuffer* message, grpc::ByteBuffer* inflated);

  grpc::CallbackServerContext* const context_;

 private:
  grpc::ServerUnaryReactor* const reactor_;
  const size_t max_message_bytes_;
};

}  // namespace relu::service
