#include "server/service/admission.h"

#include <string>
#include <utility>

#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

// The deadline `deadline` (system_clock) in `clock`'s time, INT64_MAX when
// there is none.
int64_t DeadlineMicros(std::chrono::system_clock::time_point deadline,
                       batching::Clock& clock) {
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return INT64_MAX;
  }
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      deadline - std::chrono::system_clock::now());
  return clock.NowMicros() + left.count();
}

}  // namespace

void Call::Done(absl::Status status) {
  // Metrics first, so a client that sees the response also sees it counted.
  if (!status.ok()) {
    trace_.EnsureIds();
    SPDLOG_DEBUG("{} failed (trace_id={} request_id={}): {}",
                 metrics::MethodName(method_), trace_.trace_id,
                 trace_.request_id, status.ToString());
  }
  const size_t bytes = decoded_ ? this->bytes : 0;
  if (status.ok() && decoded_ && segment.n > 0) {
    metrics_->OnElements(segment.dtype, segment.n);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start_;
  const std::chrono::duration<double> seconds = elapsed;
  const int code = static_cast<int>(status.code());
  metrics_->OnRequestFinished(method_, code, seconds.count(), bytes,
                              status.ok() ? bytes : 0);
  if (request_log_ != nullptr && request_log_->Wants(code)) {
    trace_.EnsureIds();
    RequestRecord record;
    record.time = std::chrono::system_clock::now();
    // Copies: Respond() may still send the ids.
    record.trace_id = trace_.trace_id;
    record.parent_id = trace_.parent_id;
    record.span_id = trace_.span_id;
    record.request_id = trace_.request_id;
    record.peer = Peer();
    record.door = front_door_;
    record.method = metrics::MethodName(method_);
    record.code = code;
    record.message = std::string(status.message());
    if (decoded_) {
      record.dtype = segment.dtype;
      record.elements = segment.n;
    }
    record.bytes_in = bytes;
    record.bytes_out = status.ok() ? bytes : 0;
    record.queue_us = queue_micros;
    record.kernel_us = kernel_micros;
    record.total_us =
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    record.batch_size = batch_requests;
    request_log_->Submit(std::move(record));
  }
  Respond(status);
}

absl::Status Call::ReserveResponse(size_t bytes, absl::string_view what) {
  if (calls_ == nullptr || tracked_ == nullptr) return absl::OkStatus();
  return calls_->ReserveResponse(tracked_, bytes, what);
}

Admission::Admission(batching::BatchScheduler* scheduler,
                     metrics::ServerMetrics* metrics, CallTracker* calls,
                     RequestLog* request_log)
    : scheduler_(scheduler),
      metrics_(metrics),
      calls_(calls),
      request_log_(request_log) {}

void Admission::Admit(std::unique_ptr<Call> call) {
  call->metrics_ = metrics_;
  call->calls_ = calls_;
  call->request_log_ = request_log_;
  call->start_ = std::chrono::steady_clock::now();
  metrics_->OnRequestStarted();
  if (calls_->draining()) {
    metrics_->OnRejected(batching::RejectReason::kDraining);
    call->Done(absl::UnavailableError("server is draining"));
    return;
  }
  // Reset by the client before it arrived: no work, and not invalid.
  if (call->IsCancelled()) {
    metrics_->OnRejected(batching::RejectReason::kCancelled);
    call->Done(absl::CancelledError("cancelled by the client"));
    return;
  }
  if (absl::Status decoded = call->Decode(); !decoded.ok()) {
    if (decoded.code() != absl::StatusCode::kResourceExhausted) {
      metrics_->OnInvalid();
    }
    call->Done(decoded);
    return;
  }
  call->decoded_ = true;
  if (call->segment.n == 0) {
    call->Done(absl::OkStatus());
    return;
  }
  call->deadline_micros = DeadlineMicros(call->deadline_, *scheduler_->clock());
  std::unique_ptr<batching::BatchTask> task = std::move(call);
  // Refused, the task is still ours: it answers with the refusal.
  if (absl::Status scheduled = scheduler_->Schedule(task); !scheduled.ok()) {
    task->Done(scheduled);
  }
}

}  // namespace relu::service
