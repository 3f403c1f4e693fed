// The admission path's trace context and request log with a front door of no
// protocol at all (as an HTTP door would be): what the door puts in the Call
// is what the log says, and a call the door left without ids gets its own.
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/service/admission.h"

namespace relu::service {
namespace {

constexpr char kTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// What a Call saw when it answered.
struct Answer {
  absl::Status status;
  TraceContext trace;
};

// A call of a made-up front door: `elements` float32 values, answered into
// `answer`.
class FakeCall final : public Call {
 public:
  FakeCall(size_t elements, bool valid, Answer* answer)
      : Call(metrics::Method::kModelInfer,
             std::chrono::system_clock::time_point::max()),
        data_(elements, 1.0f),
        valid_(valid),
        answer_(answer) {}

  // What a door does with its headers.
  void SetHeaders(const std::string& traceparent,
                  const std::string& request_id) {
    trace() = TraceContext::FromHeaders(traceparent, "", request_id);
    set_front_door("test-door");
  }

  absl::Status Decode() override {
    if (!valid_) return absl::InvalidArgumentError("bad \"tensor\"\n");
    segment = {
        kernel::DType::kFloat32, {}, data_.data(), data_.data(), data_.size()};
    bytes = data_.size() * sizeof(float);
    return absl::OkStatus();
  }
  void Respond(const absl::Status& status) override {
    answer_->status = status;
    answer_->trace = trace();
  }
  std::string Peer() const override { return "door:peer \"x\""; }

 private:
  std::vector<float> data_;
  const bool valid_;
  Answer* const answer_;
};

class AdmissionTraceTest : public ::testing::Test {
 protected:
  // Admits `call`, then stops the log and returns its lines.
  std::vector<nlohmann::json> AdmitAll(
      std::vector<std::unique_ptr<FakeCall>> calls) {
    std::string text;
    std::mutex mu;
    {
      RequestLogOptions options;
      options.mode = RequestLogMode::kAll;
      RequestLog log(options, &metrics_, [&](const std::string& lines) {
        std::lock_guard<std::mutex> lock(mu);
        text += lines;
      });
      EXPECT_TRUE(log.Start().ok());
      batching::BatchSchedulerOptions batching;
      batching.run_inline_when_idle = true;
      batching::BatchScheduler scheduler(
          batching, [](const kernel::Segment*, size_t) {},
          batching::Clock::Real(), &metrics_);
      CallTracker tracker;
      Admission admission(&scheduler, &metrics_, &tracker, &log);
      for (auto& call : calls) admission.Admit(std::move(call));
      scheduler.Drain(INT64_MAX);
    }
    std::vector<nlohmann::json> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(nlohmann::json::parse(line));
    }
    return lines;
  }

  metrics::ServerMetrics metrics_{{"test", "scalar"}};
};

TEST_F(AdmissionTraceTest, TheDoorsIdsAndPeerAreLogged) {
  Answer answer;
  auto call = std::make_unique<FakeCall>(8, true, &answer);
  call->SetHeaders(kTraceparent, "from-a-header");
  std::vector<std::unique_ptr<FakeCall>> calls;
  calls.push_back(std::move(call));
  const std::vector<nlohmann::json> lines = AdmitAll(std::move(calls));
  ASSERT_TRUE(answer.status.ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(lines[0]["span_id"], answer.trace.span_id);
  EXPECT_EQ(lines[0]["request_id"], "from-a-header");
  EXPECT_EQ(lines[0]["door"], "test-door");
  EXPECT_EQ(lines[0]["peer"], "door:peer \"x\"");
  EXPECT_EQ(lines[0]["method"], "ModelInfer");
  EXPECT_EQ(lines[0]["elements"], 8);
  EXPECT_EQ(lines[0]["bytes_in"], 32);
  EXPECT_EQ(lines[0]["batch_size"], 1);
}

TEST_F(AdmissionTraceTest, ACallWithoutIdsGetsItsOwnBeforeItAnswers) {
  Answer ok, refused;
  std::vector<std::unique_ptr<FakeCall>> calls;
  calls.push_back(std::make_unique<FakeCall>(4, true, &ok));
  calls.push_back(std::make_unique<FakeCall>(4, false, &refused));
  const std::vector<nlohmann::json> lines = AdmitAll(std::move(calls));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(ok.trace.trace_id.size(), 32u);
  EXPECT_NE(ok.trace.trace_id, refused.trace.trace_id);
  EXPECT_EQ(lines[0]["trace_id"], ok.trace.trace_id);
  EXPECT_EQ(lines[0]["request_id"], ok.trace.trace_id);
  EXPECT_EQ(lines[1]["trace_id"], refused.trace.trace_id);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lines[1]["message"], "bad \"tensor\"\n");
  EXPECT_TRUE(lines[1]["dtype"].is_null());
}

}  // namespace
}  // namespace relu::service
