#include "client/cli/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace relu::cli {
namespace {

using Clock = std::chrono::steady_clock;

Tensor RandomTensor(DataType dtype, int64_t n, std::mt19937* rng) {
  std::uniform_real_distribution<double> dist(-10.0, 10.0);
  std::vector<double> values(static_cast<size_t>(n));
  for (double& v : values) v = dist(*rng);
  switch (dtype) {
    case DataType::kFloat64:
      return Tensor::FromFloat64(values);
    case DataType::kFloat16: {
      std::vector<Float16> h(values.begin(), values.end());
      return Tensor::FromFloat16(h);
    }
    case DataType::kBFloat16: {
      std::vector<BFloat16> b(values.begin(), values.end());
      return Tensor::FromBFloat16(b);
    }
    default: {
      std::vector<float> f(values.begin(), values.end());
      return Tensor::FromFloat32(f);
    }
  }
}

// Per-slot records: a slot's calls run one after another, each started from
// the previous one's completion, so a slot's fields need no lock.
struct Slot {
  std::vector<uint32_t> latencies_us;
  std::map<std::string, int64_t> errors;
  int64_t bytes = 0;
  Clock::time_point last_done;
};

class Runner {
 public:
  Runner(Client& client, const BenchOptions& options)
      : client_(client), options_(options), slots_(options.concurrency) {
    std::mt19937 rng(12345);
    for (int64_t n : options.elements) {
      inputs_.push_back(RandomTensor(options.dtype, n, &rng));
    }
  }

  BenchResult Run() {
    if (options_.rate > 0) return RunOpenLoop();
    start_ = Clock::now();
    end_ =
        start_ + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(options_.duration_seconds));
    active_ = static_cast<int>(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) Next(i);
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(500),
                           [&] { return active_ == 0; })) {
        if (options_.progress != nullptr) PrintProgress();
      }
    }
    if (options_.progress != nullptr) {
      PrintProgress();
      *options_.progress << "\n" << std::flush;
    }
    return Collect();
  }

 private:
  // Open loop: this thread sends each call when it is due (waiting while
  // `concurrency` calls are in flight); completions record under mu_.
  BenchResult RunOpenLoop() {
    std::mt19937_64 rng(777);
    std::exponential_distribution<double> gap(options_.rate);
    Slot& record = slots_[0];
    start_ = Clock::now();
    Clock::time_point last_progress = start_;
    double due_s = 0;  // seconds after start_
    auto next_due = [&] {
      due_s += options_.arrivals == Arrivals::kPoisson ? gap(rng)
                                                       : 1.0 / options_.rate;
    };
    const Clock::time_point end =
        start_ + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(options_.duration_seconds));
    for (int64_t seq = 0;; ++seq) {
      if (options_.requests > 0 ? seq >= options_.requests
                                : due_s >= options_.duration_seconds) {
        break;
      }
      const Clock::time_point due =
          start_ + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(due_s));
      std::this_thread::sleep_until(due);
      if (options_.requests == 0 && Clock::now() >= end) {
        // The time is up with calls still due: they are not sent, and
        // counted.
        for (; due_s < options_.duration_seconds; next_due()) ++unsent_;
        break;
      }
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return active_ < options_.concurrency; });
        ++active_;
      }
      const Clock::time_point sent = Clock::now();
      if (sent - due > std::chrono::milliseconds(1)) ++late_;
      const Tensor& input = inputs_[static_cast<size_t>(seq) % inputs_.size()];
      const int64_t bytes = static_cast<int64_t>(input.data.size());
      client_.ApplyAsync(
          input, options_.params,
          [this, &record, bytes, due](absl::StatusOr<Tensor> result) {
            const Clock::time_point done = Clock::now();
            std::lock_guard<std::mutex> lock(mu_);
            record.latencies_us.push_back(static_cast<uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(done -
                                                                      due)
                    .count()));
            if (result.ok()) {
              record.bytes += bytes;
            } else {
              ++record.errors[absl::StatusCodeToString(result.status().code())];
            }
            record.last_done = std::max(record.last_done, done);
            completed_.fetch_add(1);
            --active_;
            cv_.notify_all();
          });
      next_due();
      if (options_.progress != nullptr &&
          sent - last_progress > std::chrono::milliseconds(500)) {
        PrintProgress();
        last_progress = sent;
      }
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return active_ == 0; });
    }
    if (options_.progress != nullptr) {
      PrintProgress();
      *options_.progress << "\n" << std::flush;
    }
    BenchResult r = Collect();
    r.offered_per_s = options_.rate;
    r.late = late_;
    r.unsent = unsent_;
    return r;
  }

  void Next(size_t slot) {
    const int64_t seq = issued_.fetch_add(1);
    const bool stop =
        options_.requests > 0 ? seq >= options_.requests : Clock::now() >= end_;
    if (stop) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    const Tensor& input = inputs_[static_cast<size_t>(seq) % inputs_.size()];
    const int64_t bytes = static_cast<int64_t>(input.data.size());
    const Clock::time_point t0 = Clock::now();
    client_.ApplyAsync(
        input, options_.params,
        [this, slot, bytes, t0](absl::StatusOr<Tensor> result) {
          const Clock::time_point t1 = Clock::now();
          Slot& s = slots_[slot];
          s.latencies_us.push_back(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0)
                  .count()));
          if (result.ok()) {
            s.bytes += bytes;
          } else {
            ++s.errors[absl::StatusCodeToString(result.status().code())];
          }
          s.last_done = t1;
          completed_.fetch_add(1);
          Next(slot);
        });
  }

  void PrintProgress() {
    const double elapsed =
        std::chrono::duration<double>(Clock::now() - start_).count();
    const int64_t done = completed_.load();
    *options_.progress << absl::StrFormat("\r[%6.1fs] %lld calls, %.1f calls/s",
                                          elapsed, static_cast<long long>(done),
                                          elapsed > 0 ? done / elapsed : 0.0)
                       << std::flush;
  }

  BenchResult Collect() {
    BenchResult r;
    std::vector<uint32_t> all;
    int64_t bytes = 0;
    Clock::time_point last = start_;
    for (const Slot& s : slots_) {
      all.insert(all.end(), s.latencies_us.begin(), s.latencies_us.end());
      for (const auto& [code, count] : s.errors) r.errors[code] += count;
      bytes += s.bytes;
      if (!s.latencies_us.empty()) last = std::max(last, s.last_done);
    }
    r.requests = static_cast<int64_t>(all.size());
    r.seconds = std::chrono::duration<double>(last - start_).count();
    if (r.seconds > 0) {
      r.calls_per_s = r.requests / r.seconds;
      r.mb_per_s = bytes / 1e6 / r.seconds;
    }
    std::sort(all.begin(), all.end());
    auto rank = [&](double p) -> double {
      if (all.empty()) return 0;
      size_t i = static_cast<size_t>(std::ceil(p / 100.0 * all.size()));
      return all[std::min(all.size(), std::max<size_t>(i, 1)) - 1];
    };
    r.p50_us = rank(50);
    r.p90_us = rank(90);
    r.p99_us = rank(99);
    r.p999_us = rank(99.9);
    r.max_us = all.empty() ? 0 : all.back();
    return r;
  }

  Client& client_;
  const BenchOptions& options_;
  std::vector<Tensor> inputs_;
  std::vector<Slot> slots_;
  Clock::time_point start_, end_;
  std::atomic<int64_t> issued_{0};
  std::atomic<int64_t> completed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;      // guarded by mu_; open loop: calls in flight
  int64_t late_ = 0;    // open loop: the sending thread's
  int64_t unsent_ = 0;  // open loop: the sending thread's
};

}  // namespace

BenchResult RunBench(Client& client, const BenchOptions& options) {
  Runner runner(client, options);
  return runner.Run();
}

std::string FormatBenchReport(const BenchResult& r) {
  std::string out = absl::StrFormat(
      "requests:   %lld in %.3f s\n"
      "throughput: %.1f calls/s, %.2f MB/s of request tensors\n"
      "latency us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
      static_cast<long long>(r.requests), r.seconds, r.calls_per_s, r.mb_per_s,
      r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us);
  if (r.offered_per_s > 0) {
    absl::StrAppend(
        &out,
        absl::StrFormat("open loop:  %.1f calls/s offered; %lld sent over 1 ms "
                        "late, %lld due but not sent by the end; latency "
                        "from when each call was due\n",
                        r.offered_per_s, static_cast<long long>(r.late),
                        static_cast<long long>(r.unsent)));
  }
  out += "errors:    ";
  if (r.errors.empty()) out += " none";
  for (const auto& [code, count] : r.errors) {
    absl::StrAppend(&out, " ", code, "=", count);
  }
  out += "\n";
  return out;
}

std::string FormatBenchJson(const BenchResult& r) {
  std::string errors;
  for (const auto& [code, count] : r.errors) {
    absl::StrAppend(&errors, errors.empty() ? "" : ",", "\"", code,
                    "\":", count);
  }
  std::string open_loop;
  if (r.offered_per_s > 0) {
    open_loop =
        absl::StrFormat(",\"offered_per_s\":%.3f,\"late\":%lld,\"unsent\":%lld",
                        r.offered_per_s, static_cast<long long>(r.late),
                        static_cast<long long>(r.unsent));
  }
  return absl::StrFormat(
      "{\"requests\":%lld,\"seconds\":%.6f,\"calls_per_s\":%.3f,"
      "\"mb_per_s\":%.3f,\"errors\":{%s},\"latency_us\":{\"p50\":%.0f,"
      "\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f}%s}",
      static_cast<long long>(r.requests), r.seconds, r.calls_per_s, r.mb_per_s,
      errors, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, open_loop);
}

}  // namespace relu::cli
