#include "server/service/call.h"

#include <string>

#include "spdlog/spdlog.h"

namespace relu::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

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

CallFinisher::CallFinisher(grpc::ServerUnaryReactor* reactor,
                           metrics::ServerMetrics* metrics,
                           metrics::Method method, CallTracker::Call* call)
    : reactor_(reactor),
      metrics_(metrics),
      call_(call),
      method_(method),
      start_(std::chrono::steady_clock::now()) {
  metrics_->OnRequestStarted();
}

void CallFinisher::SetTensor(kernel::DType dtype, size_t elements,
                             size_t bytes) {
  dtype_ = dtype;
  elements_ = elements;
  bytes_ = bytes;
}

grpc::ServerUnaryReactor* CallFinisher::Finish(const absl::Status& status) {
  if (!status.ok()) {
    SPDLOG_DEBUG("{} failed: {}", metrics::MethodName(method_),
                 status.ToString());
  }
  if (status.ok() && elements_ > 0) metrics_->OnElements(dtype_, elements_);
  const std::chrono::duration<double> seconds =
      std::chrono::steady_clock::now() - start_;
  metrics_->OnRequestFinished(method_, static_cast<int>(status.code()),
                              seconds.count(), bytes_,
                              status.ok() ? bytes_ : 0);
  if (call_ != nullptr) call_->MarkAnswered();
  reactor_->Finish(ToGrpcStatus(status));
  return reactor_;
}

}  // namespace relu::service
