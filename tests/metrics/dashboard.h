// Reads the PromQL queries out of a Grafana dashboard for tests.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace relu::metrics::testing {

// Every "expr" in the dashboard at `path`, with Grafana's variables replaced
// as Grafana would before sending them to Prometheus: $__rate_interval and
// $__interval by "1m", $__range by "5m", $instance by ".+" (its allValue).
// INVALID_ARGUMENT if the file is not JSON, has no query, or a query keeps an
// unknown "$" variable.
absl::StatusOr<std::vector<std::string>> DashboardQueries(
    const std::string& path);

}  // namespace relu::metrics::testing
