// The request log (--request-log): one JSON object per line for each call it
// is asked to record, e.g.
//   {"time":"2026-12-03T11:00:00.123456Z","trace_id":"4bf9...","span_id":
//    "00f0...","request_id":"abc","peer":"ipv4:10.0.0.7:51234","door":"grpc",
//    "method":"ApplyReLU","code":0,"status":"OK","dtype":"float32",
//    "elements":1024,"bytes_in":4096,"bytes_out":4096,"queue_us":0,
//    "kernel_us":3,"total_us":41,"batch_size":1}
// plus "parent_id" when the caller sent a traceparent and "message" when the
// call failed. A string with anything but printable ASCII, '"' or '\\' is
// escaped by nlohmann::json (invalid UTF-8 replaced), so every line parses
// whatever a peer, id or message holds.
//
// Calls never wait for the log: Submit() takes a short lock to append a
// record to a bounded buffer (or, when it is full, drops the record and
// counts it in relu_request_log_dropped_total); a writer thread formats and
// writes the records in batches (what gathered within 50 ms of the first, or
// half a buffer), flushing after each batch, and warns in the
// diagnostic log (at most once a minute) when lines were dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/kernel/types.h"
#include "server/metrics/server_metrics.h"

namespace relu::service {

// Which calls are logged.
enum class RequestLogMode { kOff, kAll, kErrors, kSample };

struct RequestLogOptions {
  RequestLogMode mode = RequestLogMode::kErrors;
  uint64_t sample_every = 1;  // kSample: one call in this many, any status
  // Where lines go: "" = stdout (the diagnostic log is on stderr), else a
  // file, appended to (created if missing).
  std::string path;
  // Records waiting for the writer; past this, new ones are dropped.
  size_t buffer_lines = 4096;
  // How long the destructor waits for the writer to write what is left.
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
};

// Parses --request-log's value: off, all, errors, or sample:N (N >= 1) into
// `options` (mode and sample_every). INVALID_ARGUMENT otherwise.
absl::Status ParseRequestLogMode(const std::string& value,
                                 RequestLogOptions* options);

// One call, as the admission path saw it. Strings are the call's own
// (moved in), so the writer thread may format them after the call is gone.
struct RequestRecord {
  std::chrono::system_clock::time_point time;  // when it was answered
  std::string trace_id, parent_id, span_id, request_id;
  std::string peer;
  const char* door = "";    // front door: "grpc", "http"
  const char* method = "";  // "ApplyReLU", "ModelInfer"
  int code = 0;             // gRPC status code
  std::string message;      // the status message (empty when OK)
  kernel::DType dtype{};    // kernel::DType{} (0) = not decoded
  uint64_t elements = 0;
  uint64_t bytes_in = 0;   // tensor payload bytes, as relu_request_bytes_total
  uint64_t bytes_out = 0;  // as relu_response_bytes_total
  int64_t queue_us = 0;
  int64_t kernel_us = 0;
  int64_t total_us = 0;
  uint64_t batch_size = 0;  // 0 = never reached the kernel
};

// The record as one JSON line, '\n' included.
std::string FormatRequestRecord(const RequestRecord& record);

// Thread-safe. `metrics` (nullable) must outlive it.
class RequestLog {
 public:
  // Receives formatted lines (several at once, each ending in '\n') on the
  // writer thread; for tests. Null = the file or stdout of the options.
  using Sink = std::function<void(const std::string& lines)>;

  RequestLog(RequestLogOptions options, metrics::ServerMetrics* metrics,
             Sink sink = nullptr);
  // Writes what is buffered, then stops the writer. A writer that has not
  // finished within options.stop_timeout (its sink blocked: a pipe or
  // terminal nobody reads) is left behind, detached, so that the process
  // can exit; what it held is lost.
  ~RequestLog();
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // Opens the file (FAILED_PRECONDITION naming it when it cannot) and starts
  // the writer. Nothing is written before. Call once; not needed when off.
  absl::Status Start();

  const RequestLogOptions& options() const { return options_; }

  // Whether a call that ended with `code` is to be logged (kSample counts
  // the calls it is asked about). Cheap; call once per call.
  bool Wants(int code);

  // Queues `record` for the writer, or drops it (counted) when the buffer is
  // full. Never waits for the writer.
  void Submit(RequestRecord&& record);

 private:
  // What the writer thread uses, shared with it: a writer stuck in a write
  // at exit is left behind with it (see ~RequestLog).
  struct State;

  const RequestLogOptions options_;
  metrics::ServerMetrics* const metrics_;
  std::atomic<uint64_t> sampled_{0};
  std::shared_ptr<State> state_;
  std::thread writer_;
  bool started_ = false;
};

}  // namespace relu::service
