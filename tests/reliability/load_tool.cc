// relu-load: drives relu-server with ApplyReLU calls and checks every
// answer. Used by scripts/overload.sh, scripts/soak.sh and the overload test.
//
// Closed loop (--rate=0): --concurrency calls always in flight.
// Open loop (--rate=R): a call starts every 1/R s whatever the server does,
// up to --max-in-flight outstanding (calls beyond that are counted as
// "not_sent", never silently dropped).
//
// Requests come from --variants pre-built tensors (dtypes, sizes, params
// drawn at random with --seed); each one's expected output is computed once
// with the scalar kernel, and every OK answer is compared with it bit for
// bit (NaN matches NaN). --cancel-percent of the calls are cancelled by the
// client 0-5 ms after they start (soak). Prints one JSON object: calls, the
// count and latency percentiles per status code, mismatches.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "CLI/CLI.hpp"
#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/reliability/reference.h"

namespace relu::reliability {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  double duration_s = 10;
  int concurrency = 16;
  double rate = 0;
  int max_in_flight = 4096;
  int variants = 16;
  int64_t min_elements = 1;
  int64_t max_elements = 65536;
  std::string dtypes = "float32,float64,float16,bfloat16";
  double cancel_percent = 0;
  int deadline_ms = 30000;
  int channels = 4;
  uint64_t seed = 1;
};

struct Variant {
  v1::ApplyReLURequest request;
  std::string expected;
  kernel::DType dtype;
};

struct Call {
  grpc::ClientContext context;
  v1::ApplyReLUResponse response;
  const Variant* variant = nullptr;
  Clock::time_point start;
  uint64_t id = 0;
};

class Stats {
 public:
  void Record(grpc::StatusCode code, double ms, bool mismatch) {
    std::lock_guard<std::mutex> lock(mu_);
    latencies_ms_[code].push_back(ms);
    mismatches_ += mismatch;
  }
  void NotSent() {
    std::lock_guard<std::mutex> lock(mu_);
    ++not_sent_;
  }
  std::string Json(double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    static const std::map<int, const char*> kNames = {{0, "OK"},
                                                      {1, "CANCELLED"},
                                                      {2, "UNKNOWN"},
                                                      {3, "INVALID_ARGUMENT"},
                                                      {4, "DEADLINE_EXCEEDED"},
                                                      {8, "RESOURCE_EXHAUSTED"},
                                                      {13, "INTERNAL"},
                                                      {14, "UNAVAILABLE"}};
    int64_t calls = 0;
    std::string codes;
    for (auto& [code, v] : latencies_ms_) {
      std::sort(v.begin(), v.end());
      auto pct = [&](double p) {
        return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
      };
      auto it = kNames.find(code);
      char buf[256];
      std::snprintf(
          buf, sizeof buf,
          "%s\"%s\": {\"count\": %zu, \"p50_ms\": %.3f, "
          "\"p99_ms\": %.3f, \"max_ms\": %.3f}",
          codes.empty() ? "" : ", ",
          it != kNames.end() ? it->second : std::to_string(code).c_str(),
          v.size(), pct(0.5), pct(0.99), v.back());
      codes += buf;
      calls += static_cast<int64_t>(v.size());
    }
    const size_t ok = latencies_ms_.count(grpc::StatusCode::OK)
                          ? latencies_ms_[grpc::StatusCode::OK].size()
                          : 0;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"seconds\": %.2f, \"calls\": %lld, \"ok_per_s\": %.1f, "
                  "\"mismatches\": %lld, \"not_sent\": %lld, \"codes\": {",
                  seconds, static_cast<long long>(calls), ok / seconds,
                  static_cast<long long>(mismatches_),
                  static_cast<long long>(not_sent_));
    return buf + codes + "}}";
  }

 private:
  std::mutex mu_;
  std::map<int, std::vector<double>> latencies_ms_;
  int64_t mismatches_ = 0;
  int64_t not_sent_ = 0;
};

std::vector<Variant> MakeVariants(const Options& o) {
  std::vector<v1::DataType> dtypes;
  const std::map<std::string, v1::DataType> kByName = {
      {"float32", v1::DATA_TYPE_FLOAT32},
      {"float64", v1::DATA_TYPE_FLOAT64},
      {"float16", v1::DATA_TYPE_FLOAT16},
      {"bfloat16", v1::DATA_TYPE_BFLOAT16}};
  size_t pos = 0;
  while (pos <= o.dtypes.size()) {
    size_t comma = o.dtypes.find(',', pos);
    if (comma == std::string::npos) comma = o.dtypes.size();
    auto it = kByName.find(o.dtypes.substr(pos, comma - pos));
    if (it == kByName.end()) {
      std::fprintf(stderr, "unknown dtype in --dtypes=%s\n", o.dtypes.c_str());
      std::exit(2);
    }
    dtypes.push_back(it->second);
    pos = comma + 1;
  }
  std::mt19937_64 rng(o.seed);
  std::vector<Variant> variants(o.variants);
  const double lo = std::log(static_cast<double>(o.min_elements));
  const double hi = std::log(static_cast<double>(o.max_elements));
  for (int i = 0; i < o.variants; ++i) {
    // Sizes log-uniform in [min, max]; the first and last hit the ends.
    int64_t n = o.variants == 1 ? o.max_elements
                                : static_cast<int64_t>(std::llround(std::exp(
                                      lo + (hi - lo) * i / (o.variants - 1))));
    const v1::DataType dtype = dtypes[i % dtypes.size()];
    const bool scalar = n == 1 && (rng() & 1);
    variants[i].request = RandomRequest(rng, dtype, static_cast<size_t>(n),
                                        RandomParams(rng), scalar);
    variants[i].expected = ReferenceOutput(variants[i].request);
    variants[i].dtype = static_cast<kernel::DType>(dtype);
  }
  return variants;
}

int Run(const Options& o) {
  const std::vector<Variant> variants = MakeVariants(o);
  // Never destroyed (the process ends with _Exit, see main): in gRPC 1.51,
  // destroying the last channel shuts down the callback API's completion
  // queue while its threads may still poll it, a crash in about one run in
  // ten on 2 cores.
  auto& stubs = *new std::vector<std::unique_ptr<v1::ReluService::Stub>>;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Distinct channels get distinct connections.
    args.SetInt("relu.load.channel", i);
    stubs.push_back(v1::ReluService::NewStub(grpc::CreateCustomChannel(
        o.target, grpc::InsecureChannelCredentials(), args)));
  }

  Stats stats;
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<uint64_t, std::shared_ptr<Call>> in_flight;
  std::atomic<uint64_t> next_id{0};
  std::atomic<bool> stop{false};
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ull);
  std::mutex rng_mu;

  // Calls chosen for cancellation, by due time (client-side TryCancel).
  using Cancel = std::pair<Clock::time_point, std::shared_ptr<Call>>;
  struct Later {
    bool operator()(const Cancel& a, const Cancel& b) const {
      return a.first > b.first;
    }
  };
  std::mutex cancel_mu;
  std::condition_variable cancel_cv;
  std::priority_queue<Cancel, std::vector<Cancel>, Later> cancels;
  bool cancel_stop = false;

  std::function<void()> start_call;
  start_call = [&] {
    auto call = std::make_shared<Call>();
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      call->variant = &variants[rng() % variants.size()];
    }
    call->id = next_id++;
    call->start = Clock::now();
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(o.deadline_ms));
    {
      std::lock_guard<std::mutex> lock(mu);
      in_flight.emplace(call->id, call);
    }
    if (o.cancel_percent > 0) {
      bool cancel;
      std::chrono::microseconds delay;
      {
        std::lock_guard<std::mutex> lock(rng_mu);
        cancel =
            static_cast<double>(rng() % 1000000) < o.cancel_percent * 10000;
        delay = std::chrono::microseconds(rng() % 5000);
      }
      if (cancel) {
        std::lock_guard<std::mutex> lock(cancel_mu);
        cancels.emplace(call->start + delay, call);
        cancel_cv.notify_one();
      }
    }
    Call* raw = call.get();
    stubs[raw->id % stubs.size()]->async()->ApplyReLU(
        &raw->context, &raw->variant->request, &raw->response,
        [&, raw](grpc::Status status) {
          const double ms = std::chrono::duration<double, std::milli>(
                                Clock::now() - raw->start)
                                .count();
          bool mismatch = false;
          if (status.ok()) {
            const v1::Tensor& in = raw->variant->request.tensor();
            const v1::Tensor& out = raw->response.tensor();
            mismatch = out.dtype() != in.dtype() ||
                       out.shape_size() != in.shape_size() ||
                       !std::equal(in.shape().begin(), in.shape().end(),
                                   out.shape().begin()) ||
                       !SameElements(raw->variant->dtype,
                                     raw->variant->expected, out.data());
            if (mismatch) {
              std::fprintf(
                  stderr, "MISMATCH: %s %d elements, first at %lld\n",
                  kernel::DTypeName(raw->variant->dtype),
                  static_cast<int>(in.data().size() /
                                   kernel::ElementSize(raw->variant->dtype)),
                  static_cast<long long>(FirstDifference(raw->variant->dtype,
                                                         raw->variant->expected,
                                                         out.data())));
            }
          }
          stats.Record(status.error_code(), ms, mismatch);
          std::shared_ptr<Call> keep;
          {
            std::lock_guard<std::mutex> lock(mu);
            auto it = in_flight.find(raw->id);
            keep = std::move(it->second);
            in_flight.erase(it);
            cv.notify_all();
          }
          if (o.rate <= 0 && !stop.load()) start_call();
          // `keep` (and the call) is destroyed here, after the callback's
          // last use of `raw`.
        });
  };

  const auto begin = Clock::now();
  const auto end = begin + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  std::thread canceller;
  if (o.cancel_percent > 0) {
    canceller = std::thread([&] {
      for (;;) {
        std::vector<std::shared_ptr<Call>> due;
        {
          std::unique_lock<std::mutex> lock(cancel_mu);
          if (cancel_stop && cancels.empty()) return;
          const auto now = Clock::now();
          while (!cancels.empty() && cancels.top().first <= now) {
            due.push_back(cancels.top().second);
            cancels.pop();
          }
          if (due.empty()) {
            cancel_cv.wait_until(lock, cancels.empty()
                                           ? now + std::chrono::milliseconds(5)
                                           : cancels.top().first);
          }
        }
        // Outside the lock: TryCancel may run the completion inline. The
        // shared_ptr keeps the call alive even if it already completed.
        for (auto& call : due) call->context.TryCancel();
      }
    });
  }

  if (o.rate <= 0) {
    for (int i = 0; i < o.concurrency; ++i) start_call();
    std::this_thread::sleep_until(end);
    stop = true;
  } else {
    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / o.rate));
    auto next = begin;
    while (next < end) {
      std::this_thread::sleep_until(next);
      size_t n;
      {
        std::lock_guard<std::mutex> lock(mu);
        n = in_flight.size();
      }
      if (n >= static_cast<size_t>(o.max_in_flight)) {
        stats.NotSent();
      } else {
        start_call();
      }
      next += period;
    }
    stop = true;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight.empty(); });
  }
  if (canceller.joinable()) {
    {
      std::lock_guard<std::mutex> lock(cancel_mu);
      cancel_stop = true;
      cancel_cv.notify_one();
    }
    canceller.join();
  }
  const double seconds =
      std::chrono::duration<double>(Clock::now() - begin).count();
  std::printf("%s\n", stats.Json(seconds).c_str());
  return 0;
}

}  // namespace
}  // namespace relu::reliability

int main(int argc, char** argv) {
  relu::reliability::Options o;
  CLI::App app{"Load generator for relu-server that checks every answer"};
  app.add_option("--target", o.target, "host:port")->required();
  app.add_option("--duration-s", o.duration_s, "Seconds to send for");
  app.add_option("--concurrency", o.concurrency,
                 "Closed loop: calls in flight");
  app.add_option("--rate", o.rate, "Open loop: calls per second; 0 = closed");
  app.add_option("--max-in-flight", o.max_in_flight,
                 "Open loop: most outstanding calls");
  app.add_option("--variants", o.variants, "Distinct pre-built requests");
  app.add_option("--min-elements", o.min_elements, "Smallest tensor");
  app.add_option("--max-elements", o.max_elements, "Largest tensor");
  app.add_option("--dtypes", o.dtypes, "Comma-separated dtypes");
  app.add_option("--cancel-percent", o.cancel_percent,
                 "Cancel about this percent of calls client-side");
  app.add_option("--deadline-ms", o.deadline_ms, "Per-call deadline");
  app.add_option("--channels", o.channels, "gRPC channels (connections)");
  app.add_option("--seed", o.seed, "Random seed");
  CLI11_PARSE(app, argc, argv);
  const int code = relu::reliability::Run(o);
  // Leave without destructors: gRPC's callback threads still run (Run()).
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}
