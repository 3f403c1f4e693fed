// The standard Prometheus process metrics for Linux, read from procfs at each
// scrape (prometheus-cpp 1.0.1 has no process collector):
//   process_cpu_seconds_total       user + system CPU time   (<self>/stat)
//   process_resident_memory_bytes   resident set size        (<self>/statm)
//   process_virtual_memory_bytes    virtual memory size      (<self>/statm)
//   process_start_time_seconds      start, Unix time         (<self>/stat,
//   btime
//                                                            in <proc>/stat)
//   process_open_fds                open descriptors         (<self>/fd)
//   process_max_fds                 soft RLIMIT_NOFILE       (<self>/limits)
// A value whose source cannot be read or parsed is left out of that scrape
// rather than reported as 0.
#pragma once

#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace relu::metrics {

class ProcessCollector final : public prometheus::Collectable {
 public:
  // `self_dir` is the process's procfs directory and `proc_stat` the system's
  // /proc/stat; tests point them at fixture files.
  explicit ProcessCollector(std::string self_dir = "/proc/self",
                            std::string proc_stat = "/proc/stat");

  // Reads procfs afresh. Thread-safe (no state is shared between calls).
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string self_dir_;
  const std::string proc_stat_;
};

}  // namespace relu::metrics
