// The client library and relu-cli against the real relu-server binary.
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "client/cli/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "relu/client.h"
#include "tests/testing/free_port.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace relu {
namespace {

using ::relu::testing::PickFreePort;
using ::relu::testing::ProcessResult;
using ::relu::testing::RunProcess;
using ::relu::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// relu-cli with `args`, an environment holding only `env`, and `stdin_text`.
ProcessResult Cli(std::vector<std::string> args,
                  const std::string& stdin_text = "",
                  std::vector<std::string> env = {}) {
  args.insert(args.begin(), RELU_CLI_PATH);
  return RunProcess(args, stdin_text, env);
}

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = ServerProcess::Start();
    ASSERT_NE(server_, nullptr);
  }
  std::string target() const { return server_->target(); }

  std::unique_ptr<ServerProcess> server_;
};

// --- The tutorial's four examples (the "seed" cases of the golden file) ---

struct SeedCase {
  std::string name;
  std::vector<std::string> args;  // relu-cli apply arguments
  std::string expected;           // printed line
};

void PrintTo(const SeedCase& c, std::ostream* os) { *os << c.name; }

std::vector<SeedCase> LoadSeedCases() {
  std::ifstream in(RELU_TEST_DATA_DIR "/relu_golden_edges.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  std::vector<SeedCase> cases;
  for (const auto& c : golden.at("cases")) {
    if (c.at("kind") != "seed") continue;
    SeedCase s;
    s.name = c.at("name").get<std::string>();
    for (char& ch : s.name) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    s.args = {"apply", "--dtype", c.at("dtype").get<std::string>()};
    const auto& p = c.at("params");
    if (!p.at("max_value").is_null()) {
      s.args.push_back("--max-value=" +
                       std::to_string(p.at("max_value").get<double>()));
    }
    if (p.at("negative_slope").get<double>() != 0) {
      s.args.push_back("--negative-slope=" +
                       std::to_string(p.at("negative_slope").get<double>()));
    }
    if (p.at("threshold").get<double>() != 0) {
      s.args.push_back("--threshold=" +
                       std::to_string(p.at("threshold").get<double>()));
    }
    s.args.push_back("--");
    for (const auto& x : c.at("input")) s.args.push_back(x.get<std::string>());
    // The tutorial's printed output (bfloat16 cases, not in the tutorial,
    // carry only "output").
    const auto& expected =
        c.contains("seed_expected") ? c.at("seed_expected") : c.at("output");
    s.expected = "[";
    for (size_t i = 0; i < expected.size(); ++i) {
      if (i > 0) s.expected += ", ";
      s.expected += expected[i].get<std::string>();
    }
    s.expected += "]\n";
    cases.push_back(s);
  }
  return cases;
}

class SeedTest : public E2ETest,
                 public ::testing::WithParamInterface<SeedCase> {};

TEST_P(SeedTest, PrintsExactlyAsTheTutorial) {
  std::vector<std::string> args = GetParam().args;
  args.insert(args.begin() + 1, "--target=" + target());
  ProcessResult r = Cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, GetParam().expected);
  EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(Golden, SeedTest, ::testing::ValuesIn(LoadSeedCases()),
                         [](const auto& info) { return info.param.name; });

TEST(SeedCasesTest, AllFourExamplesInEveryDtype) {
  EXPECT_EQ(LoadSeedCases().size(), 16u);
}

TEST_F(E2ETest, DocumentedExamples) {
  const std::string t = "--target=" + target();
  EXPECT_EQ(Cli({"apply", t, "--", "-10", "-5", "0.0", "5", "10"}).out,
            "[0.0, 0.0, 0.0, 5.0, 10.0]\n");
  EXPECT_EQ(
      Cli({"apply", t, "--max-value", "5", "--", "-10", "-5", "0.0", "5", "10"})
          .out,
      "[0.0, 0.0, 0.0, 5.0, 5.0]\n");
  EXPECT_EQ(Cli({"apply", t, "--negative-slope", "1", "--", "-10", "-5", "0.0",
                 "5", "10"})
                .out,
            "[-10.0, -5.0, 0.0, 5.0, 10.0]\n");
  EXPECT_EQ(
      Cli({"apply", t, "--", "0.1", "-0.0", "nan", "inf", "-inf", "1e20"}).out,
      "[0.1, -0.0, nan, inf, 0.0, 1e+20]\n");
  EXPECT_EQ(Cli({"apply", t, "--dtype", "float64", "--", "0.1", "1e-5"}).out,
            "[0.1, 1e-05]\n");
  EXPECT_EQ(
      Cli({"apply", t, "--dtype", "float16", "--", "0.1", "70000", "65504"})
          .out,
      "[0.1, inf, 65500.0]\n");
  EXPECT_EQ(Cli({"apply", t, "--dtype", "bfloat16", "--", "0.1", "-3"}).out,
            "[0.1, 0.0]\n");
}

TEST_F(E2ETest, NumbersFromStdin) {
  ProcessResult r = Cli({"apply", "--target=" + target()}, "-5 -2\n0 3\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[0.0, 0.0, 0.0, 3.0]\n");
  // A printed list reads back.
  r = Cli({"apply", "--target=" + target(), "--max-value=2"}, r.out);
  EXPECT_EQ(r.out, "[0.0, 0.0, 0.0, 2.0]\n");
}

TEST_F(E2ETest, TargetFromRELU_TARGETOnly) {
  ProcessResult r =
      Cli({"apply", "--", "-1", "1"}, "", {"RELU_TARGET=" + target()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[0.0, 1.0]\n");
  // The flag wins over the environment.
  r = Cli({"apply", "--target=" + target(), "--", "2"}, "",
          {"RELU_TARGET=127.0.0.1:" + std::to_string(PickFreePort())});
  EXPECT_EQ(r.out, "[2.0]\n");
  // Other RELU_* variables (the server's settings) are ignored.
  r = Cli({"apply", "--", "3"}, "",
          {"RELU_TARGET=" + target(), "RELU_TIMEOUT=abc", "RELU_DTYPE=int8",
           "RELU_MAX_VALUE=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[3.0]\n");
}

TEST_F(E2ETest, BadParameterPrintsServerError) {
  ProcessResult r =
      Cli({"apply", "--target=" + target(), "--max-value=-1", "--", "1", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: max_value of a ReLU layer cannot be a "
            "negative value. Received: max_value=-1.0\n");
  r = Cli({"apply", "--target=" + target(), "--threshold", "nan", "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "error: INVALID_ARGUMENT: threshold of a ReLU layer cannot be NaN. "
            "Received: threshold=nan\n");
}

TEST_F(E2ETest, HealthExitCodes) {
  ProcessResult r = Cli({"health", "--target=" + target()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Cli({"health", "--target=" + target(), "--service=relu.v1.ReluService"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Cli({"health", "--target=" + target(), "--service=no.such.Service"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));
}

TEST(E2ENoServerTest, UnreachableServerFails) {
  const std::string t = "--target=127.0.0.1:" + std::to_string(PickFreePort());
  ProcessResult r = Cli({"health", t, "--timeout=5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
  r = Cli({"apply", t, "--timeout=5", "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
}

// --- .npy round trips ---

class NpyE2ETest : public E2ETest,
                   public ::testing::WithParamInterface<DataType> {};

template <typename T>
T PlainRelu(T x) {
  return x < T(0) ? T(0) : x;  // -0.0 and NaN pass through unchanged
}

TEST_P(NpyE2ETest, RoundTripsA3DTensor) {
  const DataType dtype = GetParam();
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> dist(-100, 100);
  std::vector<double> values(2 * 3 * 4);
  for (double& v : values) v = dist(rng);
  values[0] = -0.0;
  values[1] = 0.0;
  Tensor in;
  std::vector<double> expected;
  switch (dtype) {
    case DataType::kFloat16: {
      std::vector<Float16> h(values.begin(), values.end());
      in = Tensor::FromFloat16(h, {2, 3, 4});
      for (Float16 x : h) expected.push_back(PlainRelu(x.ToFloat()));
      break;
    }
    case DataType::kFloat32: {
      std::vector<float> f(values.begin(), values.end());
      in = Tensor::FromFloat32(f, {2, 3, 4});
      for (float x : f) expected.push_back(PlainRelu(x));
      break;
    }
    default:
      in = Tensor::FromFloat64(values, {2, 3, 4});
      for (double x : values) expected.push_back(PlainRelu(x));
  }
  char dir_template[] = "/tmp/relu_npy_e2e_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string in_path = dir + "/in.npy", out_path = dir + "/out.npy";
  ASSERT_TRUE(cli::WriteNpyFile(in_path, in).ok());
  ProcessResult r = Cli({"apply", "--target=" + target(), "--input", in_path,
                         "--output", out_path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  absl::StatusOr<Tensor> out = cli::ReadNpyFile(out_path);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->dtype, dtype);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{2, 3, 4}));
  ASSERT_EQ(out->data.size(), in.data.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    double got;
    if (dtype == DataType::kFloat16) {
      got = (*out->ToFloat16())[i].ToFloat();
    } else if (dtype == DataType::kFloat32) {
      got = (*out->ToFloat32())[i];
    } else {
      got = (*out->ToFloat64())[i];
    }
    EXPECT_EQ(got, expected[i]) << i;
    EXPECT_EQ(std::signbit(got), std::signbit(expected[i])) << i;
  }
  // Without --output the nested list is printed.
  r = Cli({"apply", "--target=" + target(), "--input", in_path});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, StartsWith("[[[-0.0, 0.0, "));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '['), 1 + 2 + 6);
  std::system(("rm -rf " + dir).c_str());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NpyE2ETest,
                         ::testing::Values(DataType::kFloat16,
                                           DataType::kFloat32,
                                           DataType::kFloat64),
                         [](const auto& info) {
                           return std::string(DataTypeName(info.param));
                         });

// --- bench ---

TEST_F(E2ETest, BenchForTwoSecondsReportsThroughputAndNoErrors) {
  ProcessResult r = Cli({"bench", "--target=" + target(), "--duration=2",
                         "--concurrency=4", "--elements=1000,20000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("requests").get<int64_t>(), 0);
  EXPECT_GE(j.at("seconds").get<double>(), 2.0);
  EXPECT_GT(j.at("calls_per_s").get<double>(), 0);
  EXPECT_GT(j.at("mb_per_s").get<double>(), 0);
  EXPECT_TRUE(j.at("errors").is_object());
  EXPECT_TRUE(j.at("errors").empty()) << j.at("errors");
  const auto& lat = j.at("latency_us");
  EXPECT_GT(lat.at("p50").get<double>(), 0);
  EXPECT_LE(lat.at("p50").get<double>(), lat.at("p90").get<double>());
  EXPECT_LE(lat.at("p90").get<double>(), lat.at("p99").get<double>());
  EXPECT_LE(lat.at("p99").get<double>(), lat.at("p999").get<double>());
  EXPECT_LE(lat.at("p999").get<double>(), lat.at("max").get<double>());
  // Consistency: calls/s and MB/s follow from the counts (request tensors of
  // 4000 and 80000 bytes, used in turn).
  const double calls = j.at("requests").get<double>();
  EXPECT_NEAR(j.at("calls_per_s").get<double>() * j.at("seconds").get<double>(),
              calls, calls * 1e-3 + 1);
  const double mb =
      j.at("mb_per_s").get<double>() * j.at("seconds").get<double>();
  EXPECT_NEAR(mb, calls * 42000 / 1e6, calls * 42000 / 1e6 * 0.01 + 0.1);
}

TEST_F(E2ETest, BenchRequestCountAndErrorsByCode) {
  ProcessResult r = Cli({"bench", "--target=" + target(), "--requests=50",
                         "--concurrency=3", "--dtype=float16"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("requests:   50 in"));
  EXPECT_THAT(r.out, HasSubstr("errors:     none"));
  EXPECT_EQ(r.out.find('\r'), std::string::npos);  // no progress off a tty
  // Every call refused: counted by status code, exit 1.
  r = Cli({"bench", "--target=" + target(), "--requests=20", "--json",
           "--negative-slope=-1"});
  EXPECT_EQ(r.exit_code, 1);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("requests").get<int64_t>(), 20);
  EXPECT_EQ(j.at("errors").at("INVALID_ARGUMENT").get<int64_t>(), 20);
}

// Open loop: a fixed number of calls at a rate, Poisson arrivals.
TEST_F(E2ETest, BenchOpenLoopSendsEveryCallDue) {
  ProcessResult r =
      Cli({"bench", "--target=" + target(), "--rate=400", "--requests=100",
           "--arrivals=poisson", "--concurrency=16", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("requests").get<int64_t>(), 100);
  EXPECT_EQ(j.at("offered_per_s").get<double>(), 400.0);
  EXPECT_EQ(j.at("unsent").get<int64_t>(), 0);
  EXPECT_TRUE(j.at("errors").empty()) << j.at("errors");
  const auto& lat = j.at("latency_us");
  EXPECT_LE(lat.at("p50").get<double>(), lat.at("p99").get<double>());
}

// Latency counts from when a call was due, not from when it could be sent:
// 200 calls all due within 2 ms, one in flight at a time, so the last one
// waits for all the others, and its latency is about the whole run's
// (a closed loop would report one call's time).
TEST_F(E2ETest, BenchOpenLoopCountsTheWaitOfCallsHeldBack) {
  ProcessResult r = Cli({"bench", "--target=" + target(), "--rate=100000",
                         "--requests=200", "--concurrency=1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("requests").get<int64_t>(), 200);
  EXPECT_GT(j.at("late").get<int64_t>(), 0);
  const double run_us = j.at("seconds").get<double>() * 1e6;
  EXPECT_GE(j.at("latency_us").at("max").get<double>(), 0.9 * run_us - 2000);
}

// --- The library ---

TEST_F(E2ETest, IssueSnippet) {
  relu::Client client(target());
  relu::ReluParams params;
  params.max_value = 2.0;
  absl::StatusOr<std::vector<float>> y =
      client.Apply(std::vector<float>{-5, -2, 0, 3}, params);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(*y, (std::vector<float>{0, 0, 0, 2}));
}

TEST_F(E2ETest, TypedHelpers) {
  Client client(target());
  ReluParams slope;
  slope.negative_slope = 2.0;
  absl::StatusOr<std::vector<double>> d =
      client.Apply(std::vector<double>{-5, -2, 0, 3}, slope);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, (std::vector<double>{-10, -4, 0, 3}));
  absl::StatusOr<std::vector<Float16>> h =
      client.Apply(std::vector<Float16>{Float16(-5.0f), Float16(3.0f)}, slope);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)[0].ToFloat(), -10.0f);
  EXPECT_EQ((*h)[1].ToFloat(), 3.0f);
  absl::StatusOr<std::vector<BFloat16>> b =
      client.Apply(std::vector<BFloat16>{BFloat16(-5.0f), BFloat16(0.5f)});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)[0].ToFloat(), 0.0f);
  EXPECT_EQ((*b)[1].ToFloat(), 0.5f);
  // Tensor form keeps the shape.
  absl::StatusOr<Tensor> t =
      client.Apply(Tensor::FromFloat32({-1, 2, -3, 4, -5, 6}, {3, 2}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(*t->ToFloat32(), (std::vector<float>{0, 2, 0, 4, 0, 6}));
}

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST_F(E2ETest, TraceHeadersGoOutAndComeBack) {
  Client client(target());
  CallTrace trace;
  trace.traceparent = kTraceparent;
  trace.request_id = "order-17";
  ASSERT_TRUE(client.Apply(Tensor::FromFloat32({1, -1}), {}, &trace).ok());
  ASSERT_EQ(trace.server_traceparent.size(), 55u) << trace.server_traceparent;
  EXPECT_EQ(trace.server_traceparent.substr(0, 36),
            std::string("00-") + kTraceId + "-");
  EXPECT_EQ(trace.server_request_id, "order-17");

  // On a refusal too.
  CallTrace refused;
  refused.traceparent = kTraceparent;
  ReluParams bad;
  bad.max_value = -1;
  EXPECT_EQ(
      client.Apply(Tensor::FromFloat32({1}), bad, &refused).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.server_traceparent.substr(3, 32), kTraceId);
  // No x-request-id sent: the server logs the call under the trace id and
  // sends no x-request-id back; the client reads the id from the
  // traceparent.
  EXPECT_EQ(refused.server_request_id, kTraceId);

  CallTrace unsendable;
  unsendable.request_id = "line\nbreak";
  EXPECT_EQ(
      client.Apply(Tensor::FromFloat32({1}), {}, &unsendable).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(E2ETest, CliSendsATraceparentAndTheServerLogsIt) {
  ProcessResult r = Cli({"apply", "--target=" + target(), "--traceparent",
                         kTraceparent, "--request-id", "cli-1", "--", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1.0]\n");
  EXPECT_THAT(
      r.err, ::testing::MatchesRegex(std::string("traceparent=00-") + kTraceId +
                                     "-[0-9a-f]{16}-01 x-request-id=cli-1\n"));
  // A failed call is in the default (errors) request log, on stdout.
  r = Cli({"apply", "--target=" + target(), "--traceparent", kTraceparent,
           "--request-id", "cli-2", "--max-value=-1", "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  const std::string wanted = "\"request_id\":\"cli-2\"";
  // Written by the server's log thread: wait for it (the test's timeout
  // bounds this).
  while (server_->log().find(wanted) == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string log = server_->log();
  const size_t start = log.rfind('\n', log.find(wanted)) + 1;
  const nlohmann::json line =
      nlohmann::json::parse(log.substr(start, log.find('\n', start) - start));
  EXPECT_EQ(line["trace_id"], kTraceId);
  EXPECT_EQ(line["status"], "INVALID_ARGUMENT");
  EXPECT_EQ(line["method"], "ApplyReLU");
}

TEST_F(E2ETest, ServerErrorsKeepCodeAndMessage) {
  Client client(target());
  ReluParams params;
  params.negative_slope = -0.1;
  absl::StatusOr<std::vector<float>> y =
      client.Apply(std::vector<float>{1}, params);
  EXPECT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(),
            "negative_slope of a ReLU layer cannot be a negative value. "
            "Received: negative_slope=-0.1");
  Tensor bad = Tensor::FromFloat32({1, 2});
  bad.data.pop_back();
  EXPECT_EQ(client.Apply(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(E2ETest, ManyAsyncCallsInFlight) {
  Client client(target());
  std::vector<std::future<absl::StatusOr<Tensor>>> futures;
  std::vector<std::vector<float>> inputs;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> x(static_cast<size_t>(1 + i * 37));
    for (size_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k % 7) - 3.0f;
    futures.push_back(client.ApplyAsync(Tensor::FromFloat32(x)));
    inputs.push_back(std::move(x));
  }
  for (size_t i = 0; i < futures.size(); ++i) {
    absl::StatusOr<Tensor> t = futures[i].get();
    ASSERT_TRUE(t.ok()) << t.status();
    std::vector<float> y = *t->ToFloat32();
    ASSERT_EQ(y.size(), inputs[i].size());
    for (size_t k = 0; k < y.size(); ++k)
      ASSERT_EQ(y[k], PlainRelu(inputs[i][k]));
  }

  // Callbacks.
  std::atomic<int> ok{0}, remaining{100};
  std::promise<void> all_done;
  for (int i = 0; i < 100; ++i) {
    client.ApplyAsync(Tensor::FromFloat64({-1.0, static_cast<double>(i)}), {},
                      [&](absl::StatusOr<Tensor> t) {
                        if (t.ok() && (*t->ToFloat64())[0] == 0.0) ++ok;
                        if (--remaining == 0) all_done.set_value();
                      });
  }
  all_done.get_future().wait();
  EXPECT_EQ(ok.load(), 100);
}

TEST_F(E2ETest, MessagesAboveGrpcDefaultLimit) {
  Client client(target());
  // 6 MiB each way: over gRPC's 4 MiB client default receive limit.
  std::vector<float> x(6 << 18, -1.0f);
  x.back() = 7.0f;
  absl::StatusOr<std::vector<float>> y = client.Apply(x);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->front(), 0.0f);
  EXPECT_EQ(y->back(), 7.0f);
}

TEST_F(E2ETest, HealthStatus) {
  Client client(target());
  EXPECT_EQ(client.Health().value_or(ServingStatus::kUnknown),
            ServingStatus::kServing);
  EXPECT_EQ(
      client.Health("relu.v1.ReluService").value_or(ServingStatus::kUnknown),
      ServingStatus::kServing);
  EXPECT_EQ(client.Health("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(E2ETest, RoundRobinSkipsADeadAddress) {
  std::unique_ptr<ServerProcess> second = ServerProcess::Start();
  ASSERT_NE(second, nullptr);
  // One dead address among two live ones: every call still succeeds.
  Client client("ipv4:127.0.0.1:" + std::to_string(PickFreePort()) + "," +
                target() + "," + second->target());
  for (int i = 0; i < 30; ++i) {
    absl::StatusOr<std::vector<float>> y =
        client.Apply(std::vector<float>{-1, 1});
    ASSERT_TRUE(y.ok()) << i << ": " << y.status();
    EXPECT_EQ(*y, (std::vector<float>{0, 1}));
  }
  // Calls keep working when one live server goes away.
  second->Signal(SIGKILL);
  second->Wait();
  for (int i = 0; i < 30; ++i) {
    absl::StatusOr<std::vector<float>> y = client.Apply(std::vector<float>{2});
    ASSERT_TRUE(y.ok()) << i << ": " << y.status();
  }
}

// --- TLS and mutual TLS ---

// A throwaway CA, a server certificate for 127.0.0.1 and a client
// certificate, made with the openssl tool.
class TlsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no openssl";
    char tmpl[] = "/tmp/relu_tls_e2e_XXXXXX";
    dir_ = mkdtemp(tmpl);
    {
      std::ofstream ext(dir_ + "/san.cnf");
      ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    }
    const std::vector<std::string> ec = {
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    auto openssl = [&](std::vector<std::string> args) {
      args.insert(args.begin(), "/usr/bin/openssl");
      ProcessResult r = RunProcess(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    };
    std::vector<std::string> ca = {
        "req",          "-x509", "-keyout", File("ca.key"), "-out",
        File("ca.pem"), "-days", "2",       "-subj",        "/CN=relu-test-ca"};
    ca.insert(ca.begin() + 2, ec.begin(), ec.end());
    openssl(ca);
    for (const std::string who : {"server", "client"}) {
      std::vector<std::string> req = {"req",
                                      "-keyout",
                                      File(who + ".key"),
                                      "-out",
                                      File(who + ".csr"),
                                      "-subj",
                                      "/CN=relu-test-" + who};
      req.insert(req.begin() + 1, ec.begin(), ec.end());
      openssl(req);
      openssl({"x509", "-req", "-in", File(who + ".csr"), "-CA", File("ca.pem"),
               "-CAkey", File("ca.key"), "-CAcreateserial", "-out",
               File(who + ".pem"), "-days", "2", "-extfile", File("san.cnf")});
    }
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(TlsE2ETest, MutualTls) {
  std::unique_ptr<ServerProcess> server = ServerProcess::Start(
      {"--tls-cert=" + File("server.pem"), "--tls-key=" + File("server.key"),
       "--tls-client-ca=" + File("ca.pem")});
  ASSERT_NE(server, nullptr);
  const std::string t = "--target=" + server->target();
  ProcessResult r = Cli({"apply", t, "--tls-ca=" + File("ca.pem"),
                         "--tls-cert=" + File("client.pem"),
                         "--tls-key=" + File("client.key"), "--", "-1", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[0.0, 1.0]\n");
  r = Cli({"health", t, "--tls-ca=" + File("ca.pem"),
           "--tls-cert=" + File("client.pem"),
           "--tls-key=" + File("client.key")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Without a client certificate, or in plaintext, the call fails.
  r = Cli({"apply", t, "--tls-ca=" + File("ca.pem"), "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
  r = Cli({"apply", t, "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: UNAVAILABLE: "));
  // A missing file is reported as such.
  r = Cli({"apply", t, "--tls-ca=" + File("nope.pem"), "--", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("nope.pem"));
}

TEST_F(TlsE2ETest, ServerTlsWithLibrary) {
  std::unique_ptr<ServerProcess> server = ServerProcess::Start(
      {"--tls-cert=" + File("server.pem"), "--tls-key=" + File("server.key")});
  ASSERT_NE(server, nullptr);
  ClientOptions options;
  options.tls_ca_file = File("ca.pem");
  Client client(server->target(), options);
  absl::StatusOr<std::vector<float>> y =
      client.Apply(std::vector<float>{-3, 3});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(*y, (std::vector<float>{0, 3}));
}

}  // namespace

// Readable test names for the dtype parameter.
void PrintTo(DataType dtype, std::ostream* os) { *os << DataTypeName(dtype); }

}  // namespace relu
