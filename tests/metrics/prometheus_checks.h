// GoogleTest checks over a PrometheusProcess, shared by the tests that scrape
// the metrics listener and the real relu-server.
#pragma once

#include <string>
#include <vector>

#include "tests/metrics/prometheus_process.h"

namespace relu::metrics::testing {

// The value of `promql`, which must answer exactly one series; -1 with a test
// failure (non-fatal) when the query fails or finds no series.
double ExpectOneValue(const PrometheusProcess& prometheus,
                      const std::string& promql);

// Runs each of `queries`: each must be accepted (fatal failure, which ends
// this function) and find at least one series (non-fatal failure), since a
// misspelt metric or label is accepted but finds nothing.
void ExpectQueriesFindSeries(const PrometheusProcess& prometheus,
                             const std::vector<std::string>& queries);

}  // namespace relu::metrics::testing
