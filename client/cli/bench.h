// relu-cli bench: a closed-loop load generator. `concurrency` calls are kept
// in flight through the client's asynchronous API; each completion records
// its latency and starts the next call until the duration or the request
// count is reached.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "relu/client.h"

namespace relu::cli {

struct BenchOptions {
  int concurrency = 8;
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
};

// Runs the load against `client`. Precondition: client.init_status() is OK,
// concurrency >= 1, elements non-empty with values >= 0.
BenchResult RunBench(Client& client, const BenchOptions& options);

// A human-readable multi-line report.
std::string FormatBenchReport(const BenchResult& result);
// One JSON object: requests, seconds, calls_per_s, mb_per_s, errors,
// latency_us {p50, p90, p99, p999, max}.
std::string FormatBenchJson(const BenchResult& result);

}  // namespace relu::cli
