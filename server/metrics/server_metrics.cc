#include "server/metrics/server_metrics.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "server/metrics/sharded_counts.h"

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

// A counter child and its cell in the shards.
struct ShardedCounter {
  prometheus::Counter* child = nullptr;
  size_t cell = 0;
};

// A histogram child and its cells in the shards: a count per bucket
// (bounds, then +Inf), then the sum.
struct ShardedHistogram {
  prometheus::Histogram* child = nullptr;
  std::vector<double> bounds;
  size_t first_cell = 0;
};

}  // namespace

struct ServerMetrics::State final : prometheus::Collectable {
  static constexpr int kNumDTypes = 4;         // kernel::DType 1..4
  static constexpr int kNumRejectReasons = 5;  // RejectReason + invalid
  static constexpr int kInvalidIndex = 4;
  static constexpr int kNumCloseReasons = 4;

  // Cells for a counter, a histogram: taken in order before `counts` is
  // made.
  ShardedCounter Counter(prometheus::Counter& child) {
    return {&child, cells++};
  }
  // The child of `family` with `labels` and bucket `bounds`, and its cells.
  ShardedHistogram Histogram(prometheus::Family<prometheus::Histogram>& family,
                             const prometheus::Labels& labels,
                             std::vector<double> bounds) {
    ShardedHistogram h{&family.Add(labels, bounds), std::move(bounds), cells};
    cells += h.bounds.size() + 2;
    return h;
  }
  // An unlabelled histogram family of its own.
  ShardedHistogram Histogram(const std::string& name, const std::string& help,
                             std::vector<double> bounds) {
    return Histogram(
        prometheus::BuildHistogram().Name(name).Help(help).Register(*registry),
        {}, std::move(bounds));
  }

  void Increment(const ShardedCounter& c, uint64_t n) {
    counts->Increment(c.cell, n);
  }
  // The bucket is the first whose bound is >= value, as prometheus-cpp's.
  void Observe(const ShardedHistogram& h, double value) {
    const size_t bucket = static_cast<size_t>(
        std::lower_bound(h.bounds.begin(), h.bounds.end(), value) -
        h.bounds.begin());
    counts->Increment(h.first_cell + bucket, 1);
    counts->IncrementDouble(h.first_cell + h.bounds.size() + 1, value);
  }

  void Fold(const ShardedCounter& c) const {
    if (const uint64_t n = counts->Take(c.cell); n != 0) {
      c.child->Increment(static_cast<double>(n));
    }
  }
  void Fold(const ShardedHistogram& h) const {
    std::vector<double> increments(h.bounds.size() + 1);
    bool any = false;
    for (size_t b = 0; b < increments.size(); ++b) {
      increments[b] = static_cast<double>(counts->Take(h.first_cell + b));
      any = any || increments[b] != 0;
    }
    const double sum = counts->TakeDouble(h.first_cell + increments.size());
    if (any || sum != 0) h.child->ObserveMultiple(increments, sum);
  }

  // prometheus::Collectable: the shards folded into the children, then the
  // registry's families.
  std::vector<prometheus::MetricFamily> Collect() const override {
    inflight->Set(static_cast<double>(counts->SumSigned(inflight_cell)));
    for (const auto& method : requests) {
      for (const ShardedCounter& c : method) Fold(c);
    }
    for (const ShardedHistogram& h : request_duration) Fold(h);
    Fold(request_bytes);
    Fold(response_bytes);
    for (const ShardedCounter& c : elements) Fold(c);
    for (const ShardedHistogram* h : {&queue_duration, &kernel_duration,
                                      &batch_requests, &batch_elements}) {
      Fold(*h);
    }
    for (const ShardedCounter& c : batch_close) Fold(c);
    return registry->Collect();
  }

  const std::shared_ptr<prometheus::Registry> registry =
      std::make_shared<prometheus::Registry>();
  size_t cells = 0;
  std::unique_ptr<ShardedCounts> counts;  // made once `cells` is known

  // Through the shards.
  prometheus::Gauge* inflight = nullptr;
  size_t inflight_cell = 0;  // ups and downs, summed at each scrape
  ShardedCounter requests[kNumMethods][kNumStatusCodes];
  ShardedHistogram request_duration[kNumMethods];
  ShardedCounter request_bytes;
  ShardedCounter response_bytes;
  ShardedCounter elements[kNumDTypes];
  ShardedHistogram queue_duration;
  ShardedHistogram kernel_duration;
  ShardedHistogram batch_requests;
  ShardedHistogram batch_elements;
  ShardedCounter batch_close[kNumCloseReasons];

  // Directly on the children: rare, or set rather than added.
  prometheus::Counter* rejected[kNumRejectReasons] = {};
  prometheus::Gauge* queue_requests = nullptr;
  prometheus::Gauge* queue_bytes = nullptr;
  prometheus::Counter* request_log_lines = nullptr;
  prometheus::Counter* request_log_dropped = nullptr;
};

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
    : state_(std::make_shared<State>()) {
  State& st = *state_;
  prometheus::Registry& registry = *st.registry;
  auto& requests = prometheus::BuildCounter()
                       .Name("relu_requests_total")
                       .Help(
                           "Finished calls by method and gRPC status code "
                           "(calls gRPC refuses before a handler runs are "
                           "not counted).")
                       .Register(registry);
  auto& request_duration =
      prometheus::BuildHistogram()
          .Name("relu_request_duration_seconds")
          .Help("Server time per call, from receipt to response.")
          .Register(registry);
  const std::vector<double> request_buckets = DecadeBuckets(1e-5, 10);
  for (int m = 0; m < kNumMethods; ++m) {
    const char* method = MethodName(static_cast<Method>(m));
    for (int code = 0; code < kNumStatusCodes; ++code) {
      st.requests[m][code] = st.Counter(
          requests.Add({{"method", method}, {"code", StatusCodeName(code)}}));
    }
    st.request_duration[m] =
        st.Histogram(request_duration, {{"method", method}}, request_buckets);
  }

  st.request_bytes =
      st.Counter(prometheus::BuildCounter()
                     .Name("relu_request_bytes_total")
                     .Help("Tensor payload bytes received in answered calls.")
                     .Register(registry)
                     .Add({}));
  st.response_bytes =
      st.Counter(prometheus::BuildCounter()
                     .Name("relu_response_bytes_total")
                     .Help("Tensor payload bytes sent in responses.")
                     .Register(registry)
                     .Add({}));
  st.inflight_cell = st.cells++;
  st.inflight = &prometheus::BuildGauge()
                     .Name("relu_inflight_requests")
                     .Help("Calls inside a handler, not yet answered.")
                     .Register(registry)
                     .Add({});

  auto& elements = prometheus::BuildCounter()
                       .Name("relu_elements_total")
                       .Help("Tensor elements computed, by dtype.")
                       .Register(registry);
  for (int d = 0; d < State::kNumDTypes; ++d) {
    st.elements[d] = st.Counter(elements.Add(
        {{"dtype", kernel::DTypeName(static_cast<kernel::DType>(d + 1))}}));
  }

  auto& rejected = prometheus::BuildCounter()
                       .Name("relu_rejected_total")
                       .Help("Calls refused or dropped, by reason.")
                       .Register(registry);
  for (int r = 0; r < State::kNumRejectReasons; ++r) {
    st.rejected[r] = &rejected.Add(
        {{"reason", r == State::kInvalidIndex
                        ? kInvalidReasonName
                        : batching::RejectReasonName(
                              static_cast<batching::RejectReason>(r))}});
  }

  st.queue_requests = &prometheus::BuildGauge()
                           .Name("relu_queue_requests")
                           .Help("Requests waiting for a batch.")
                           .Register(registry)
                           .Add({});
  st.queue_bytes = &prometheus::BuildGauge()
                        .Name("relu_queue_bytes")
                        .Help("Bytes of the requests waiting for a batch.")
                        .Register(registry)
                        .Add({});

  const std::vector<double> stage_buckets = DecadeBuckets(1e-6, 10);
  st.queue_duration =
      st.Histogram("relu_queue_duration_seconds",
                   "Time a request waited in the queue before its batch ran.",
                   stage_buckets);
  st.kernel_duration = st.Histogram("relu_kernel_duration_seconds",
                                    "Kernel time per batch.", stage_buckets);
  st.batch_requests =
      st.Histogram("relu_batch_requests", "Requests per batch.",
                   PowerOfTwoBuckets(kBatchRequestsMaxExponent));
  st.batch_elements =
      st.Histogram("relu_batch_elements", "Tensor elements per batch.",
                   PowerOfTwoBuckets(kBatchElementsMaxExponent));

  auto& batch_close = prometheus::BuildCounter()
                          .Name("relu_batch_close_total")
                          .Help("Batches by the reason they stopped growing.")
                          .Register(registry);
  for (int r = 0; r < State::kNumCloseReasons; ++r) {
    st.batch_close[r] = st.Counter(batch_close.Add(
        {{"reason",
          batching::CloseReasonName(static_cast<batching::CloseReason>(r))}}));
  }

  st.request_log_lines =
      &prometheus::BuildCounter()
           .Name("relu_request_log_lines_total")
           .Help("Request log lines written (--request-log).")
           .Register(registry)
           .Add({});
  st.request_log_dropped =
      &prometheus::BuildCounter()
           .Name("relu_request_log_dropped_total")
           .Help(
               "Request log lines dropped because the log's buffer was "
               "full (the writer could not keep up).")
           .Register(registry)
           .Add({});

  prometheus::BuildGauge()
      .Name("relu_build_info")
      .Help("Always 1; labels name the build and the kernel's code path.")
      .Register(registry)
      .Add({{"version", options.version}, {"kernel_isa", options.kernel_isa}})
      .Set(1);
  st.counts = std::make_unique<ShardedCounts>(st.cells);
}

std::shared_ptr<prometheus::Collectable> ServerMetrics::registry() const {
  return state_;
}

void ServerMetrics::OnRequestStarted() {
  state_->counts->Increment(state_->inflight_cell, 1);
}

void ServerMetrics::OnRequestFinished(Method method, int code, double seconds,
                                      size_t request_bytes,
                                      size_t response_bytes) {
  State& st = *state_;
  st.counts->Increment(st.inflight_cell, ~uint64_t{0});  // - 1
  const int m = static_cast<int>(method);
  if (m < 0 || m >= kNumMethods) return;
  if (code < 0 || code >= kNumStatusCodes) code = 2;  // UNKNOWN
  st.Increment(st.requests[m][code], 1);
  st.Observe(st.request_duration[m], seconds);
  if (request_bytes != 0) st.Increment(st.request_bytes, request_bytes);
  if (response_bytes != 0) st.Increment(st.response_bytes, response_bytes);
}

void ServerMetrics::OnElements(kernel::DType dtype, size_t elements) {
  const int d = static_cast<int>(dtype) - 1;
  if (d < 0 || d >= State::kNumDTypes) return;
  state_->Increment(state_->elements[d], elements);
}

void ServerMetrics::OnInvalid() {
  state_->rejected[State::kInvalidIndex]->Increment();
}

void ServerMetrics::OnRequestLogLines(size_t lines) {
  state_->request_log_lines->Increment(static_cast<double>(lines));
}

void ServerMetrics::OnRequestLogDropped() {
  state_->request_log_dropped->Increment();
}

void ServerMetrics::OnQueueChanged(size_t requests, size_t bytes) {
  state_->queue_requests->Set(static_cast<double>(requests));
  state_->queue_bytes->Set(static_cast<double>(bytes));
}

void ServerMetrics::OnRejected(batching::RejectReason reason) {
  const int r = static_cast<int>(reason);
  if (r < 0 || r >= State::kInvalidIndex) return;
  state_->rejected[r]->Increment();
}

void ServerMetrics::OnDequeued(int64_t queue_micros) {
  state_->Observe(state_->queue_duration,
                  static_cast<double>(queue_micros) / kMicrosPerSecond);
}

void ServerMetrics::OnBatch(size_t requests, size_t elements,
                            batching::CloseReason reason,
                            int64_t kernel_micros) {
  State& st = *state_;
  st.Observe(st.batch_requests, static_cast<double>(requests));
  st.Observe(st.batch_elements, static_cast<double>(elements));
  const int r = static_cast<int>(reason);
  if (r >= 0 && r < State::kNumCloseReasons) st.Increment(st.batch_close[r], 1);
  st.Observe(st.kernel_duration,
             static_cast<double>(kernel_micros) / kMicrosPerSecond);
}

}  // namespace relu::metrics
