#include "tests/metrics/prometheus_checks.h"

#include <gtest/gtest.h>

namespace relu::metrics::testing {

double ExpectOneValue(const PrometheusProcess& prometheus,
                      const std::string& promql) {
  auto value = prometheus.QueryValue(promql);
  EXPECT_TRUE(value.ok()) << value.status();
  if (!value.ok()) return -1;
  EXPECT_TRUE(value->has_value()) << promql << " found no series";
  return value->value_or(-1);
}

void ExpectQueriesFindSeries(const PrometheusProcess& prometheus,
                             const std::vector<std::string>& queries) {
  for (const std::string& query : queries) {
    auto data = prometheus.Query(query);
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_TRUE(data->contains("result")) << query;
    EXPECT_FALSE(data->at("result").empty()) << query << " found no series";
  }
}

}  // namespace relu::metrics::testing
