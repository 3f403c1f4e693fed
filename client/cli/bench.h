// relu-cli bench: a load generator over the client's asynchronous API.
// Closed loop (the default): `concurrency` calls are kept in flight; each
// completion records its latency and starts the next call until the duration
// or the request count is reached. Open loop (`rate` > 0): calls are due at
// `rate` a second (evenly spaced, or Poisson arrivals) whatever the server's
// pace, at most `concurrency` in flight; each call's latency counts from when
// it was due, so a call held back by a slow server counts its wait
// (coordinated omission, as wrk2 measures).
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "relu/client.h"

namespace relu::cli {

enum class Arrivals { kConstant, kPoisson };

struct BenchOptions {
  int concurrency = 8;  // open loop: the most calls in flight
  // Calls due a second; 0 = closed loop.
  double rate = 0;
  Arrivals arrivals = Arrivals::kConstant;
  double duration_seconds = 10.0;
  // If > 0, send exactly this many calls and ignore the duration.
  int64_t requests = 0;
  // Element counts of the request tensors; calls cycle through the list, so
  // several entries give a mix of sizes.
  std::vector<int64_t> elements = {1024};
  DataType dtype = DataType::kFloat32;
  ReluParams params;
  // Where to write a live progress line (carriage-return updated), or null.
  std::ostream* progress = nullptr;
};

struct BenchResult {
  int64_t requests = 0;  // calls completed, successful or not
  double seconds = 0;    // from the first call to the last completion
  double calls_per_s = 0;
  double mb_per_s = 0;  // request tensor bytes (10^6 bytes per MB)
  std::map<std::string, int64_t> errors;  // status code name -> count
  // Latency of all completed calls in microseconds (nearest rank).
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  // Open loop: the rate asked for, and the calls sent more than 1 ms after
  // they were due (held back by `concurrency` calls in flight, or by the
  // load generator itself).
  double offered_per_s = 0;
  int64_t late = 0;
  // Open loop with a duration: calls due before its end but not sent by
  // then (their latency would be at least the time left; not in the
  // figures above).
  int64_t unsent = 0;
};

// Runs the load against `client`. Precondition: client.init_status() is OK,
// concurrency >= 1, elements non-empty with values >= 0.
BenchResult RunBench(Client& client, const BenchOptions& options);

// A human-readable multi-line report.
std::string FormatBenchReport(const BenchResult& result);
// One JSON object: requests, seconds, calls_per_s, mb_per_s, errors,
// latency_us {p50, p90, p99, p999, max}; open loop adds offered_per_s, late
// and unsent.
std::string FormatBenchJson(const BenchResult& result);

}  // namespace relu::cli
