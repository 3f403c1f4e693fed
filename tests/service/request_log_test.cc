// The request log on its own (request_log.h): its modes, its lines as JSON
// whatever the strings hold, and the bounded buffer that drops and counts
// instead of waiting.
#include "server/service/request_log.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace relu::service {
namespace {

double CounterValue(metrics::ServerMetrics& metrics, const std::string& name) {
  for (const auto& family : metrics.registry()->Collect()) {
    if (family.name == name && family.metric.size() == 1) {
      return family.metric[0].counter.value;
    }
  }
  ADD_FAILURE() << "no counter " << name;
  return -1;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RequestLogModeTest, ParsesEachMode) {
  RequestLogOptions o;
  ASSERT_TRUE(ParseRequestLogMode("off", &o).ok());
  EXPECT_EQ(o.mode, RequestLogMode::kOff);
  ASSERT_TRUE(ParseRequestLogMode("all", &o).ok());
  EXPECT_EQ(o.mode, RequestLogMode::kAll);
  ASSERT_TRUE(ParseRequestLogMode("errors", &o).ok());
  EXPECT_EQ(o.mode, RequestLogMode::kErrors);
  ASSERT_TRUE(ParseRequestLogMode("sample:25", &o).ok());
  EXPECT_EQ(o.mode, RequestLogMode::kSample);
  EXPECT_EQ(o.sample_every, 25u);
  for (const char* bad :
       {"", "some", "sample:", "sample:0", "sample:-1", "sample:x", "ALL"}) {
    EXPECT_FALSE(ParseRequestLogMode(bad, &o).ok()) << bad;
  }
}

TEST(RequestLogModeTest, WantsWhatTheModeSays) {
  auto wanted = [](const std::string& mode, const std::vector<int>& codes) {
    RequestLogOptions o;
    EXPECT_TRUE(ParseRequestLogMode(mode, &o).ok());
    RequestLog log(o, nullptr);
    std::vector<bool> wants;
    for (int code : codes) wants.push_back(log.Wants(code));
    return wants;
  };
  const std::vector<int> codes = {0, 3, 0, 0, 8, 0, 0};
  EXPECT_EQ(wanted("off", codes), std::vector<bool>(7, false));
  EXPECT_EQ(wanted("all", codes), std::vector<bool>(7, true));
  EXPECT_EQ(wanted("errors", codes),
            (std::vector<bool>{false, true, false, false, true, false, false}));
  // One call in three, whatever its status: the 1st, 4th, 7th.
  EXPECT_EQ(wanted("sample:3", codes),
            (std::vector<bool>{true, false, false, true, false, false, true}));
}

TEST(RequestLogFormatTest, EveryFieldAndAnyBytesMakeOneJsonLine) {
  RequestRecord r;
  r.time = std::chrono::system_clock::time_point(
      std::chrono::microseconds(1'764'758'400'123'456));
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.parent_id = "00f067aa0ba902b7";
  r.span_id = "1111111111111111";
  r.request_id = "id \"with\" \\quotes\\";
  r.peer = "unix:/tmp/a \"b\"\\c\nd\te\x01";
  r.door = "grpc";
  r.method = "ApplyReLU";
  r.code = 3;
  r.message = "line one\nline \"two\" \\ \xff\xfe not UTF-8";
  r.dtype = kernel::DType::kFloat16;
  r.elements = 7;
  r.bytes_in = 14;
  r.queue_us = 5;
  r.kernel_us = 6;
  r.total_us = 70;
  r.batch_size = 2;
  const std::string text = FormatRequestRecord(r);
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line
  const nlohmann::json line = nlohmann::json::parse(text);
  EXPECT_EQ(line["time"], "2025-12-03T10:40:00.123456Z");
  EXPECT_EQ(line["trace_id"], r.trace_id);
  EXPECT_EQ(line["parent_id"], r.parent_id);
  EXPECT_EQ(line["span_id"], r.span_id);
  EXPECT_EQ(line["request_id"], r.request_id);
  EXPECT_EQ(line["peer"], r.peer);
  EXPECT_EQ(line["door"], "grpc");
  EXPECT_EQ(line["method"], "ApplyReLU");
  EXPECT_EQ(line["code"], 3);
  EXPECT_EQ(line["status"], "INVALID_ARGUMENT");
  EXPECT_EQ(line["message"],
            "line one\nline \"two\" \\ \xEF\xBF\xBD\xEF\xBF\xBD not UTF-8");
  EXPECT_EQ(line["dtype"], "float16");
  EXPECT_EQ(line["elements"], 7);
  EXPECT_EQ(line["bytes_in"], 14);
  EXPECT_EQ(line["bytes_out"], 0);
  EXPECT_EQ(line["queue_us"], 5);
  EXPECT_EQ(line["kernel_us"], 6);
  EXPECT_EQ(line["total_us"], 70);
  EXPECT_EQ(line["batch_size"], 2);
}

TEST(RequestLogFormatTest, RandomBytesAlwaysMakeOneParsableLine) {
  std::mt19937 random(17);
  const std::string special = "\"\\\n\r\t\b\f\x01\x1f\x7f/ a{}:,";
  for (int i = 0; i < 2000; ++i) {
    std::string peer;
    bool ascii = true;
    const int length = static_cast<int>(random() % 24);
    for (int j = 0; j < length; ++j) {
      const unsigned pick = random() % 4;
      char c;
      if (pick == 0) {
        c = static_cast<char>(random() % 256);  // any byte
      } else {
        c = special[random() % special.size()];
      }
      ascii = ascii && static_cast<unsigned char>(c) < 0x80;
      peer.push_back(c);
    }
    RequestRecord r;
    r.peer = peer;
    r.message = peer;
    const std::string text = FormatRequestRecord(r);
    ASSERT_EQ(text.find('\n'), text.size() - 1) << peer;
    nlohmann::json line;
    ASSERT_NO_THROW(line = nlohmann::json::parse(text)) << text;
    if (ascii) {
      EXPECT_EQ(line["peer"], peer);
      if (!peer.empty()) {
        EXPECT_EQ(line["message"], peer);
      }
    }
  }
}

TEST(RequestLogFormatTest, UndecodedCallsHaveNoDtypeAndOkCallsNoMessage) {
  RequestRecord r;
  const nlohmann::json line = nlohmann::json::parse(FormatRequestRecord(r));
  EXPECT_TRUE(line["dtype"].is_null());
  EXPECT_FALSE(line.contains("message"));
  EXPECT_FALSE(line.contains("parent_id"));
  EXPECT_EQ(line["status"], "OK");
}

// A sink that holds the writer thread inside its first write until released.
class GatedSink {
 public:
  void Write(const std::string& lines) {
    std::unique_lock<std::mutex> lock(mu_);
    written_ += lines;
    ++writes_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void WaitForWrites(int writes) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return writes_ >= writes; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  std::string written() {
    std::lock_guard<std::mutex> lock(mu_);
    return written_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string written_;
  int writes_ = 0;
  bool open_ = false;
};

TEST(RequestLogTest, AFullBufferDropsAndCountsWithoutWaiting) {
  metrics::ServerMetrics metrics({"test", "scalar"});
  GatedSink sink;
  RequestLogOptions options;
  options.mode = RequestLogMode::kAll;
  options.buffer_lines = 8;
  {
    RequestLog log(options, &metrics,
                   [&sink](const std::string& lines) { sink.Write(lines); });
    ASSERT_TRUE(log.Start().ok());
    auto record = [](int i) {
      RequestRecord r;
      r.request_id = "r" + std::to_string(i);
      return r;
    };
    // The writer takes the first record and is held in the sink.
    log.Submit(record(0));
    sink.WaitForWrites(1);
    // Eight fit in the buffer; the writer is stuck, so the next 20 are
    // dropped, and Submit() returns for every one of them.
    for (int i = 1; i <= 28; ++i) log.Submit(record(i));
    EXPECT_EQ(CounterValue(metrics, "relu_request_log_dropped_total"), 20);
    EXPECT_EQ(CounterValue(metrics, "relu_request_log_lines_total"), 0);
    sink.Open();
  }  // the destructor writes what is buffered
  EXPECT_EQ(CounterValue(metrics, "relu_request_log_lines_total"), 9);
  const std::vector<std::string> lines = Lines(sink.written());
  ASSERT_EQ(lines.size(), 9u);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(nlohmann::json::parse(lines[i])["request_id"],
              "r" + std::to_string(i));
  }
}

TEST(RequestLogTest, AWriterStuckAtExitIsLeftBehind) {
  metrics::ServerMetrics metrics({"test", "scalar"});
  // Shared with the writer, which may outlive the test's scope.
  auto sink = std::make_shared<GatedSink>();
  RequestLogOptions options;
  options.mode = RequestLogMode::kAll;
  options.stop_timeout = std::chrono::milliseconds(0);
  {
    RequestLog log(options, &metrics,
                   [sink](const std::string& lines) { sink->Write(lines); });
    ASSERT_TRUE(log.Start().ok());
    log.Submit(RequestRecord{});
    sink->WaitForWrites(1);
    log.Submit(RequestRecord{});
  }  // returns, though the writer is held in its sink
  EXPECT_EQ(CounterValue(metrics, "relu_request_log_lines_total"), 0);
  sink->Open();  // the writer ends on its own, counting nothing
}

TEST(RequestLogTest, CannotOpenItsFile) {
  RequestLogOptions options;
  options.path = "/nonexistent-dir/requests.log";
  RequestLog log(options, nullptr);
  const absl::Status s = log.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("--request-log-file=/nonexistent-dir"),
            std::string::npos);
}

}  // namespace
}  // namespace relu::service
