// A real Prometheus server (Debian's `prometheus` binary) for tests: scrapes
// the given loopback targets every second into a private temporary TSDB, and
// answers instant queries through its HTTP API.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace relu::metrics::testing {

class PrometheusProcess {
 public:
  // The scrape job's name: queries select its series with {job="relu"}.
  static constexpr char kJob[] = "relu";

  // Starts `binary` (path of `prometheus`) scraping `targets` ("host:port")
  // and waits until it reports ready. Errors carry its log.
  static absl::StatusOr<std::unique_ptr<PrometheusProcess>> Start(
      const std::string& binary, const std::vector<std::string>& targets);

  // Terminates the process and deletes its directory.
  ~PrometheusProcess();

  int port() const { return port_; }
  std::string log() const;

  // GET /api/v1/query?query=`promql`. OK with the response's "data" object
  // when its status is "success"; INVALID_ARGUMENT with Prometheus' error
  // otherwise.
  absl::StatusOr<nlohmann::json> Query(const std::string& promql) const;

  // A query whose answer is an instant vector of at most one sample: that
  // sample's value, or nullopt for an empty vector. An error for anything
  // else.
  absl::StatusOr<std::optional<double>> QueryValue(
      const std::string& promql) const;

  // Polls until every target's last scrape started after `unix_seconds` and
  // succeeded (up == 1). False after a generous hang guard (two minutes).
  bool WaitForScrapeAfter(double unix_seconds) const;

 private:
  PrometheusProcess() = default;

  pid_t pid_ = -1;
  int port_ = -1;
  size_t targets_ = 0;
  std::string dir_;
};

// Seconds since the Unix epoch, as Prometheus stamps samples.
double UnixSeconds();

}  // namespace relu::metrics::testing
