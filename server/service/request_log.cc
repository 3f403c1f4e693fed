#include "server/service/request_log.h"

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/service/logging.h"
#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

// Appends `value` as a JSON string. Printable ASCII without '"' or '\\'
// (ids, most peers) is copied; anything else goes through nlohmann::json,
// which escapes control characters and replaces bytes that are not UTF-8
// (a peer, an id, a message quoting a request) with U+FFFD rather than
// throwing.
void AppendJsonString(std::string_view value, std::string* out) {
  bool plain = true;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->push_back('"');
    out->append(value);
    out->push_back('"');
    return;
  }
  *out += nlohmann::json(std::string(value))
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

absl::Status ParseRequestLogMode(const std::string& value,
                                 RequestLogOptions* options) {
  if (value == "off") {
    options->mode = RequestLogMode::kOff;
  } else if (value == "all") {
    options->mode = RequestLogMode::kAll;
  } else if (value == "errors") {
    options->mode = RequestLogMode::kErrors;
  } else if (uint64_t n = 0; value.rfind("sample:", 0) == 0 &&
                             absl::SimpleAtoi(value.substr(7), &n) && n >= 1) {
    options->mode = RequestLogMode::kSample;
    options->sample_every = n;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--request-log=", value,
                     " is not one of off, all, errors, sample:N (N >= 1)"));
  }
  return absl::OkStatus();
}

std::string FormatRequestRecord(const RequestRecord& r) {
  // Built by hand, not as a json object: this runs for every logged call,
  // and a json object of 20 members costs several times more.
  std::string line;
  line.reserve(400);
  auto key = [&line](const char* name) {
    line += line.empty() ? "{\"" : ",\"";
    line += name;
    line += "\":";
  };
  auto string = [&](const char* name, std::string_view value) {
    key(name);
    AppendJsonString(value, &line);
  };
  auto number = [&](const char* name, auto value) {
    key(name);
    absl::StrAppend(&line, value);
  };
  string("time", Rfc3339Micros(r.time));
  string("trace_id", r.trace_id);
  if (!r.parent_id.empty()) string("parent_id", r.parent_id);
  string("span_id", r.span_id);
  string("request_id", r.request_id);
  string("peer", r.peer);
  string("door", r.door);
  string("method", r.method);
  number("code", r.code);
  string("status", metrics::StatusCodeName(r.code));
  if (!r.message.empty()) string("message", r.message);
  if (r.dtype != kernel::DType{}) {
    string("dtype", kernel::DTypeName(r.dtype));
  } else {
    key("dtype");
    line += "null";
  }
  number("elements", r.elements);
  number("bytes_in", r.bytes_in);
  number("bytes_out", r.bytes_out);
  number("queue_us", r.queue_us);
  number("kernel_us", r.kernel_us);
  number("total_us", r.total_us);
  number("batch_size", r.batch_size);
  line += "}\n";
  return line;
}

struct RequestLog::State {
  State(const RequestLogOptions& options, metrics::ServerMetrics* metrics)
      : buffer_lines(options.buffer_lines), metrics(metrics) {
    buffer.reserve(buffer_lines);
  }
  ~State() {
    if (file != nullptr && file != stdout) std::fclose(file);
  }

  // The buffer's fill at which the writer stops gathering and writes.
  size_t WakeLines() const { return (buffer_lines + 1) / 2; }
  // The writer thread's loop.
  void Run();

  // How long the writer lets lines gather after the first one arrives
  // before it writes them: a line reaches its file this late at most.
  static constexpr int64_t kGatherMicros = 50'000;

  const size_t buffer_lines;
  Sink sink;
  std::FILE* file = nullptr;         // owned unless stdout
  std::atomic<uint64_t> dropped{0};  // for the writer's warning

  std::mutex mu;
  std::condition_variable cv;  // a record arrived, stopping, or finished
  std::vector<RequestRecord> buffer ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;  // the writer returned
  // Null once the log is gone: a writer left behind counts nothing.
  metrics::ServerMetrics* metrics ABSL_GUARDED_BY(mu);
};

void RequestLog::State::Run() {
  std::vector<RequestRecord> writing;
  writing.reserve(buffer_lines);
  std::string lines;
  uint64_t reported = 0;  // dropped lines already warned about
  // When it last warned (a minute back at first, so it may warn at once).
  auto warned = std::chrono::steady_clock::now() - std::chrono::minutes(1);
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    cv.wait(lock, [this] { return stopping || !buffer.empty(); });
    if (buffer.empty()) break;  // stopping, and all written
    // Let lines gather, so that a busy server costs one wake-up and one
    // write() per batch of lines, not per line.
    cv.wait_for(lock, std::chrono::microseconds(kGatherMicros),
                [this] { return stopping || buffer.size() >= WakeLines(); });
    writing.swap(buffer);
    lock.unlock();
    lines.clear();
    for (const RequestRecord& record : writing) {
      lines += FormatRequestRecord(record);
    }
    sink(lines);
    const uint64_t now_dropped = dropped.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (now_dropped != reported && now - warned >= std::chrono::minutes(1)) {
      spdlog::warn(
          "request log: {} lines dropped so far, its buffer full "
          "(--request-log-buffer-lines={}); log fewer calls or write faster",
          now_dropped, buffer_lines);
      reported = now_dropped;
      warned = now;
    }
    lock.lock();
    if (metrics != nullptr) metrics->OnRequestLogLines(writing.size());
    writing.clear();
  }
  finished = true;
  cv.notify_all();
}

RequestLog::RequestLog(RequestLogOptions options,
                       metrics::ServerMetrics* metrics, Sink sink)
    : options_(std::move(options)),
      metrics_(metrics),
      state_(std::make_shared<State>(options_, metrics)) {
  state_->sink = std::move(sink);
}

RequestLog::~RequestLog() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stopping = true;
  state_->cv.notify_all();
  if (!started_) return;
  if (state_->cv.wait_for(lock, options_.stop_timeout,
                          [this] { return state_->finished; })) {
    lock.unlock();
    writer_.join();
    return;
  }
  // Stuck in its sink: leave it the state (its own reference) and go.
  state_->metrics = nullptr;
  const size_t lost = state_->buffer.size();
  lock.unlock();
  spdlog::warn(
      "request log: its writer has been blocked for {} ms at exit (stdout or "
      "--request-log-file not taking lines); {} buffered lines are lost",
      options_.stop_timeout.count(), lost);
  writer_.detach();
}

absl::Status RequestLog::Start() {
  State& state = *state_;
  if (!state.sink) {
    if (options_.path.empty()) {
      state.file = stdout;
    } else {
      state.file = std::fopen(options_.path.c_str(), "ae");
      if (state.file == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "--request-log-file=", options_.path,
            ": cannot open for appending: ", std::strerror(errno)));
      }
    }
    state.sink = [file = state.file](const std::string& lines) {
      std::fwrite(lines.data(), 1, lines.size(), file);
      std::fflush(file);
    };
  }
  writer_ = std::thread([state = state_] { state->Run(); });
  started_ = true;
  return absl::OkStatus();
}

bool RequestLog::Wants(int code) {
  switch (options_.mode) {
    case RequestLogMode::kOff:
      return false;
    case RequestLogMode::kAll:
      return true;
    case RequestLogMode::kErrors:
      return code != 0;
    case RequestLogMode::kSample:
      return sampled_.fetch_add(1, std::memory_order_relaxed) %
                 options_.sample_every ==
             0;
  }
  return false;
}

void RequestLog::Submit(RequestRecord&& record) {
  State& state = *state_;
  bool dropped = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    if (state.buffer.size() >= state.buffer_lines) {
      dropped = true;
    } else {
      // The writer waits for a first record, then for half a buffer (or
      // kGatherMicros): wake it at either.
      wake =
          state.buffer.empty() || state.buffer.size() + 1 == state.WakeLines();
      state.buffer.push_back(std::move(record));
    }
  }
  if (dropped) {
    state.dropped.fetch_add(1, std::memory_order_relaxed);
    if (metrics_ != nullptr) metrics_->OnRequestLogDropped();
  } else if (wake) {
    state.cv.notify_one();
  }
}

}  // namespace relu::service
