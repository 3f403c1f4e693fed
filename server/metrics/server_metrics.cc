#include "server/metrics/server_metrics.h"

#include <cmath>
#include <string>

namespace relu::metrics {
namespace {

constexpr const char* kStatusCodeNames[kNumStatusCodes] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

// relu_rejected_total's reason for a request refused as invalid (after the
// batcher's RejectReasons, at kInvalidIndex).
constexpr char kInvalidReasonName[] = "invalid";

// Dividing (not multiplying by 1e-6) rounds once, so a whole number of
// microseconds lands exactly on the decimal bucket bounds: 10 us is le="1e-05".
constexpr double kMicrosPerSecond = 1e6;

// Batch sizes: max_batch_requests defaults to 64, max_batch_elements to 2^24.
constexpr int kBatchRequestsMaxExponent = 12;
constexpr int kBatchElementsMaxExponent = 24;

}  // namespace

const char* MethodName(Method method) {
  switch (method) {
    case Method::kApplyReLU:
      return "ApplyReLU";
    case Method::kModelInfer:
      return "ModelInfer";
    case Method::kHttpInfer:
      return "HttpInfer";
  }
  return "unknown";
}

const char* StatusCodeName(int code) {
  if (code < 0 || code >= kNumStatusCodes) return "UNKNOWN";
  return kStatusCodeNames[code];
}

std::vector<double> DecadeBuckets(double min_seconds, double max_seconds) {
  std::vector<double> bounds;
  const int first = static_cast<int>(std::lround(std::log10(min_seconds)));
  const int last = static_cast<int>(std::lround(std::log10(max_seconds)));
  for (int exponent = first; exponent <= last; ++exponent) {
    // Built from the decimal literal so 2e-5 is the double nearest 2e-5, not
    // 2 * (nearest 1e-5): the exposition then prints the short form.
    for (const char* mantissa : {"1", "2", "5"}) {
      bounds.push_back(
          std::stod(std::string(mantissa) + "e" + std::to_string(exponent)));
      if (exponent == last) break;
    }
  }
  return bounds;
}

std::vector<double> PowerOfTwoBuckets(int max_exponent) {
  std::vector<double> bounds;
  for (int exponent = 0; exponent <= max_exponent; ++exponent) {
    bounds.push_back(std::ldexp(1.0, exponent));
  }
  return bounds;
}

ServerMetrics::ServerMetrics(const MetricsOptions& options)
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& requests = prometheus::BuildCounter()
                       .Name("relu_requests_total")
                       .Help(
                           "Finished calls by method and gRPC status code "
                           "(calls gRPC refuses before a handler runs are "
                           "not counted).")
                       .Register(*registry_);
  auto& request_duration =
      prometheus::BuildHistogram()
          .Name("relu_request_duration_seconds")
          .Help("Server time per call, from receipt to response.")
          .Register(*registry_);
  const std::vector<double> request_buckets = DecadeBuckets(1e-5, 10);
  for (int m = 0; m < kNumMethods; ++m) {
    const char* method = MethodName(static_cast<Method>(m));
    for (int code = 0; code < kNumStatusCodes; ++code) {
      requests_[m][code] =
          &requests.Add({{"method", method}, {"code", StatusCodeName(code)}});
    }
    request_duration_[m] =
        &request_duration.Add({{"method", method}}, request_buckets);
  }

  request_bytes_ =
      &prometheus::BuildCounter()
           .Name("relu_request_bytes_total")
           .Help("Tensor payload bytes received in answered calls.")
           .Register(*registry_)
           .Add({});
  response_bytes_ = &prometheus::BuildCounter()
                         .Name("relu_response_bytes_total")
                         .Help("Tensor payload bytes sent in responses.")
                         .Register(*registry_)
                         .Add({});
  inflight_ = &prometheus::BuildGauge()
                   .Name("relu_inflight_requests")
                   .Help("Calls inside a handler, not yet answered.")
                   .Register(*registry_)
                   .Add({});

  auto& elements = prometheus::BuildCounter()
                       .Name("relu_elements_total")
                       .Help("Tensor elements computed, by dtype.")
                       .Register(*registry_);
  for (int d = 0; d < kNumDTypes; ++d) {
    elements_[d] = &elements.Add(
        {{"dtype", kernel::DTypeName(static_cast<kernel::DType>(d + 1))}});
  }

  auto& rejected = prometheus::BuildCounter()
                       .Name("relu_rejected_total")
                       .Help("Calls refused or dropped, by reason.")
                       .Register(*registry_);
  for (int r = 0; r < kNumRejectReasons; ++r) {
    rejected_[r] = &rejected.Add(
        {{"reason", r == kInvalidIndex
                        ? kInvalidReasonName
                        : batching::RejectReasonName(
                              static_cast<batching::RejectReason>(r))}});
  }

  queue_requests_ = &prometheus::BuildGauge()
                         .Name("relu_queue_requests")
                         .Help("Requests waiting for a batch.")
                         .Register(*registry_)
                         .Add({});
  queue_bytes_ = &prometheus::BuildGauge()
                      .Name("relu_queue_bytes")
                      .Help("Bytes of the requests waiting for a batch.")
                      .Register(*registry_)
                      .Add({});

  const std::vector<double> stage_buckets = DecadeBuckets(1e-6, 10);
  queue_duration_ =
      &prometheus::BuildHistogram()
           .Name("relu_queue_duration_seconds")
           .Help("Time a request waited in the queue before its batch ran.")
           .Register(*registry_)
           .Add({}, stage_buckets);
  kernel_duration_ = &prometheus::BuildHistogram()
                          .Name("relu_kernel_duration_seconds")
                          .Help("Kernel time per batch.")
                          .Register(*registry_)
                          .Add({}, stage_buckets);
  batch_requests_ = &prometheus::BuildHistogram()
                         .Name("relu_batch_requests")
                         .Help("Requests per batch.")
                         .Register(*registry_)
                         .Add({}, PowerOfTwoBuckets(kBatchRequestsMaxExponent));
  batch_elements_ = &prometheus::BuildHistogram()
                         .Name("relu_batch_elements")
                         .Help("Tensor elements per batch.")
                         .Register(*registry_)
                         .Add({}, PowerOfTwoBuckets(kBatchElementsMaxExponent));

  auto& batch_close = prometheus::BuildCounter()
                          .Name("relu_batch_close_total")
                          .Help("Batches by the reason they stopped growing.")
                          .Register(*registry_);
  for (int r = 0; r < kNumCloseReasons; ++r) {
    batch_close_[r] = &batch_close.Add(
        {{"reason",
          batching::CloseReasonName(static_cast<batching::CloseReason>(r))}});
  }

  request_log_lines_ = &prometheus::BuildCounter()
                            .Name("relu_request_log_lines_total")
                            .Help("Request log lines written (--request-log).")
                            .Register(*registry_)
                            .Add({});
  request_log_dropped_ =
      &prometheus::BuildCounter()
           .Name("relu_request_log_dropped_total")
           .Help(
               "Request log lines dropped because the log's buffer was "
               "full (the writer could not keep up).")
           .Register(*registry_)
           .Add({});

  prometheus::BuildGauge()
      .Name("relu_build_info")
      .Help("Always 1; labels name the build and the kernel's code path.")
      .Register(*registry_)
      .Add({{"version", options.version}, {"kernel_isa", options.kernel_isa}})
      .Set(1);
}

void ServerMetrics::OnRequestStarted() { inflight_->Increment(); }

void ServerMetrics::OnRequestFinished(Method method, int code, double seconds,
                                      size_t request_bytes,
                                      size_t response_bytes) {
  inflight_->Decrement();
  const int m = static_cast<int>(method);
  if (m < 0 || m >= kNumMethods) return;
  if (code < 0 || code >= kNumStatusCodes) code = 2;  // UNKNOWN
  requests_[m][code]->Increment();
  request_duration_[m]->Observe(seconds);
  if (request_bytes != 0) {
    request_bytes_->Increment(static_cast<double>(request_bytes));
  }
  if (response_bytes != 0) {
    response_bytes_->Increment(static_cast<double>(response_bytes));
  }
}

void ServerMetrics::OnElements(kernel::DType dtype, size_t elements) {
  const int d = static_cast<int>(dtype) - 1;
  if (d < 0 || d >= kNumDTypes) return;
  elements_[d]->Increment(static_cast<double>(elements));
}

void ServerMetrics::OnInvalid() { rejected_[kInvalidIndex]->Increment(); }

void ServerMetrics::OnRequestLogLines(size_t lines) {
  request_log_lines_->Increment(static_cast<double>(lines));
}

void ServerMetrics::OnRequestLogDropped() { request_log_dropped_->Increment(); }

void ServerMetrics::OnQueueChanged(size_t requests, size_t bytes) {
  queue_requests_->Set(static_cast<double>(requests));
  queue_bytes_->Set(static_cast<double>(bytes));
}

void ServerMetrics::OnRejected(batching::RejectReason reason) {
  const int r = static_cast<int>(reason);
  if (r < 0 || r >= kInvalidIndex) return;
  rejected_[r]->Increment();
}

void ServerMetrics::OnDequeued(int64_t queue_micros) {
  queue_duration_->Observe(static_cast<double>(queue_micros) /
                           kMicrosPerSecond);
}

void ServerMetrics::OnBatch(size_t requests, size_t elements,
                            batching::CloseReason reason,
                            int64_t kernel_micros) {
  batch_requests_->Observe(static_cast<double>(requests));
  batch_elements_->Observe(static_cast<double>(elements));
  const int r = static_cast<int>(reason);
  if (r >= 0 && r < kNumCloseReasons) batch_close_[r]->Increment();
  kernel_duration_->Observe(static_cast<double>(kernel_micros) /
                            kMicrosPerSecond);
}

}  // namespace relu::metrics
