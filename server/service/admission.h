// The one admission path every front door shares (relu.v1 ApplyReLU and the
// Open Inference Protocol's ModelInfer over gRPC, and any other protocol):
// the drain check, the accounting of every call (started, invalid, refused,
// cancelled, expired, finished), the deadline on the batch scheduler's clock,
// scheduling, and the answer to a refused call. A front door supplies a
// Call: it turns its protocol's request into a checked task with its output
// laid out (Decode), and turns the task's result into its protocol's answer
// (Respond). No gRPC in here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/batching/batch_scheduler.h"
#include "server/metrics/server_metrics.h"
#include "server/service/call_tracker.h"
#include "server/service/request_log.h"
#include "server/service/trace_context.h"

namespace relu::service {

class Admission;

// One computing call of a front door, from its arrival to its answer. The
// front door derives from it; Admission::Admit() drives it.
class Call : public batching::BatchTask {
 public:
  // `deadline` is when the client stops waiting (system_clock, as protocols
  // carry it); time_point::max() = none.
  // `tracked` (may be null) is the call's entry in the CallTracker: its
  // response reservation, and the timing of its delivery.
  Call(metrics::Method method, std::chrono::system_clock::time_point deadline,
       CallTracker::Call* tracked = nullptr)
      : method_(method), deadline_(deadline), tracked_(tracked) {}

  // Reads and checks the request and lays out the response. On OK, `segment`
  // (or `pieces`, see BatchTask) is the kernel's work, segment.dtype and
  // segment.n the tensor's dtype and element count, and `bytes` its size.
  // Otherwise the status the client gets (INVALID_ARGUMENT, NOT_FOUND, ...).
  // Called at most once, on the thread that calls Admit().
  virtual absl::Status Decode() = 0;

  // Sends the answer: on OK the response the kernel wrote (an empty tensor's
  // too), else `status`. Called exactly once, after the call is counted; the
  // call is destroyed right after.
  virtual void Respond(const absl::Status& status) = 0;

  // The batch scheduler's answer (see BatchTask::Done): records the call
  // (metrics, and the request log when it wants the call), then Respond().
  void Done(absl::Status status) final;

  // Who called, as the front door names it ("ipv4:10.0.0.7:51234"), for the
  // request log; asked only for calls that are logged.
  virtual std::string Peer() const { return ""; }

 protected:
  // The call's trace context and request id, for its log lines. The front
  // door fills it from its protocol's headers (TraceContext::FromHeaders)
  // before Admit() (a call left without gets ids of its own), and returns
  // the ids in its answer when TraceContext::ReturnsIds() says so, after
  // TraceContext::EnsureIds() (Done() has made them already when it logged
  // the call).
  TraceContext& trace() { return trace_; }
  const TraceContext& trace() const { return trace_; }
  // The request log's "door": "grpc", "http". A string literal.
  void set_front_door(const char* door) { front_door_ = door; }

  // For Decode(): reserves `bytes` of the responses' memory budget until the
  // call ends, before the response is allocated. RESOURCE_EXHAUSTED when
  // they do not fit.
  // `what` names them in the message ("a response").
  absl::Status ReserveResponse(size_t bytes,
                               absl::string_view what = "a response");
  // For Respond(): the answer is on its way; its delivery is timed
  // (--send-timeout-s).
  void MarkAnswered() {
    if (tracked_ != nullptr) tracked_->MarkAnswered();
  }
  // For Decode(): the deadline the request itself carries (an HTTP request's
  // "timeout" parameter), when the protocol has none outside it.
  void set_deadline(std::chrono::system_clock::time_point deadline) {
    deadline_ = deadline;
  }

 private:
  friend class Admission;

  const metrics::Method method_;
  std::chrono::system_clock::time_point deadline_;
  CallTracker::Call* const tracked_;
  TraceContext trace_;
  const char* front_door_ = "";
  // Set by Admit().
  CallTracker* calls_ = nullptr;
  metrics::ServerMetrics* metrics_ = nullptr;
  RequestLog* request_log_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  bool decoded_ = false;  // the tensor counts in the metrics
};

// Thread-safe; `scheduler`, `metrics`, `calls` and `request_log` must
// outlive it.
class Admission {
 public:
  // Deadlines are converted to `scheduler`'s clock. Once calls->draining(),
  // new calls are refused with UNAVAILABLE. `request_log` (nullable: no
  // request log) gets a record of every answered call it wants.
  Admission(batching::BatchScheduler* scheduler,
            metrics::ServerMetrics* metrics, CallTracker* calls,
            RequestLog* request_log = nullptr);

  // Takes `call` to its answer: UNAVAILABLE while draining; CANCELLED when
  // the client cancelled it before it arrived (no work); Decode()'s error
  // (counted as invalid unless RESOURCE_EXHAUSTED); OK at once for an empty
  // tensor; else scheduled with its deadline, answered by the scheduler (OK,
  // DEADLINE_EXCEEDED, CANCELLED), or answered here with the scheduler's
  // refusal (RESOURCE_EXHAUSTED, UNAVAILABLE). The call may be answered and
  // destroyed before Admit() returns.
  void Admit(std::unique_ptr<Call> call);

 private:
  batching::BatchScheduler* const scheduler_;
  metrics::ServerMetrics* const metrics_;
  CallTracker* const calls_;
  RequestLog* const request_log_;
};

}  // namespace relu::service
