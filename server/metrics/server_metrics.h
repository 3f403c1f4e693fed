// The server's Prometheus metrics: one registry, every family and labelled
// child built once in the constructor. What every call touches (the request
// counts, durations and sizes, the batches, the gauge of calls in flight) is
// added to per-thread shards (sharded_counts.h: no lock, no cache line every
// thread writes) and folded into the registry's children at each scrape;
// prometheus-cpp's Histogram takes a mutex per observation. The rest goes to
// the children directly. The service calls the On*Request* methods; the
// batch scheduler calls the BatchObserver hooks.
//
// Families (names final, see issue 5):
//   relu_requests_total{method,code}         counter, all 2 x 17 children
//   relu_request_duration_seconds{method}    histogram, 10 us .. 10 s
//   relu_request_bytes_total, relu_response_bytes_total   counters
//   relu_inflight_requests                   gauge
//   relu_elements_total{dtype}               counter
//   relu_rejected_total{reason}              counter: queue_full, deadline,
//                                            cancelled, invalid, draining
//   relu_queue_requests, relu_queue_bytes    gauges
//   relu_queue_duration_seconds              histogram, 1 us .. 10 s
//   relu_kernel_duration_seconds             histogram per batch, 1 us .. 10 s
//   relu_batch_requests, relu_batch_elements histograms, powers of two
//   relu_batch_close_total{reason}           counter: idle, max_requests,
//                                            max_elements, delay
//   relu_build_info{version,kernel_isa}      gauge = 1
//   relu_request_log_lines_total             counter: request log lines
//                                            written
//   relu_request_log_dropped_total           counter: lines dropped because
//                                            the log's buffer was full
// Process metrics are not in the registry: see ProcessCollector, which
// MetricsHttpServer serves beside it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/types.h"

namespace relu::metrics {

// The front door and call a request came in on (label `method`): the gRPC
// methods, and the Open Inference Protocol's REST infer over HTTP.
enum class Method { kApplyReLU, kModelInfer, kHttpInfer };
inline constexpr int kNumMethods = 3;
// gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED).
inline constexpr int kNumStatusCodes = 17;

// "ApplyReLU", "ModelInfer", "HttpInfer".
const char* MethodName(Method method);
// The status code's name as gRPC spells it ("OK", "INVALID_ARGUMENT", ...)
// for 0..16; "UNKNOWN" for any other value (as gRPC maps unknown codes).
const char* StatusCodeName(int code);

// Bucket upper bounds (seconds) in a 1-2-5 series from `min_seconds` to
// `max_seconds`, both powers of ten, e.g. 1e-5, 2e-5, 5e-5, ..., 10.
std::vector<double> DecadeBuckets(double min_seconds, double max_seconds);
// 1, 2, 4, ..., 2^max_exponent.
std::vector<double> PowerOfTwoBuckets(int max_exponent);

struct MetricsOptions {
  std::string version;     // relu_build_info{version}
  std::string kernel_isa;  // relu_build_info{kernel_isa}: "scalar", "avx2", ...
};

// Thread-safe: every method may be called from any thread at any time. The
// object must outlive every scheduler and service it observes. The registry
// may outlive the object (the HTTP server holds it) and be scraped after it:
// the figures simply stop changing.
class ServerMetrics final : public batching::BatchObserver {
 public:
  explicit ServerMetrics(const MetricsOptions& options);
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Every family above, the shards' counts folded in at each Collect();
  // hand it to MetricsHttpServer.
  std::shared_ptr<prometheus::Collectable> registry() const;

  // A call entered a handler: relu_inflight_requests + 1.
  void OnRequestStarted();
  // A call was answered: relu_inflight_requests - 1, relu_requests_total
  // {method, code} + 1, relu_request_duration_seconds{method} observes
  // `seconds` (receipt to response), and the byte totals grow by the tensor
  // payload sizes. `code` is a grpc::StatusCode as int (see StatusCodeName).
  void OnRequestFinished(Method method, int code, double seconds,
                         size_t request_bytes, size_t response_bytes);
  // `elements` of `dtype` were computed: relu_elements_total{dtype}.
  void OnElements(kernel::DType dtype, size_t elements);
  // A request failed validation: relu_rejected_total{reason="invalid"}.
  void OnInvalid();
  // The request log wrote `lines` lines / dropped one (its buffer was full).
  void OnRequestLogLines(size_t lines);
  void OnRequestLogDropped();

  // batching::BatchObserver.
  void OnQueueChanged(size_t requests, size_t bytes) override;
  void OnRejected(batching::RejectReason reason) override;
  void OnDequeued(int64_t queue_micros) override;
  void OnBatch(size_t requests, size_t elements, batching::CloseReason reason,
               int64_t kernel_micros) override;

 private:
  struct State;  // the registry, its children and the shards
  const std::shared_ptr<State> state_;
};

}  // namespace relu::metrics
