#include "server/metrics/process_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace relu::metrics {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The fields of /proc/<pid>/stat after "pid (comm)", where comm may hold
// spaces and parentheses: fields[0] is field 3 (state) of proc(5).
std::optional<std::vector<std::string>> StatFields(const std::string& stat) {
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(std::move(field));
  return fields;
}

// Field `number` (1-based, as in proc(5)) of a stat line.
std::optional<uint64_t> StatField(const std::vector<std::string>& fields,
                                  size_t number) {
  const size_t index = number - 3;
  if (number < 3 || index >= fields.size()) return std::nullopt;
  try {
    size_t used = 0;
    const uint64_t value = std::stoull(fields[index], &used);
    if (used != fields[index].size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "btime <seconds>" from /proc/stat: boot time, Unix seconds.
std::optional<uint64_t> BootTime(const std::string& proc_stat) {
  std::istringstream lines(proc_stat);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string key;
    uint64_t value = 0;
    if (words >> key && key == "btime" && words >> value) return value;
  }
  return std::nullopt;
}

// The soft limit of "Max open files" in /proc/<pid>/limits.
std::optional<double> MaxOpenFiles(const std::string& limits) {
  constexpr char kKey[] = "Max open files";
  std::istringstream lines(limits);
  for (std::string line; std::getline(lines, line);) {
    if (line.compare(0, sizeof(kKey) - 1, kKey) != 0) continue;
    std::istringstream words(line.substr(sizeof(kKey) - 1));
    std::string soft;
    if (!(words >> soft)) return std::nullopt;
    if (soft == "unlimited") return std::nullopt;
    try {
      return static_cast<double>(std::stoull(soft));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// Entries of the fd directory, not counting the one opendir() itself holds
// when `dir` is the live process's own.
std::optional<double> OpenFds(const std::string& dir) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return std::nullopt;
  const std::string own = std::to_string(dirfd(handle));
  const bool is_self = dir == "/proc/self/fd";
  double count = 0;
  while (const dirent* entry = readdir(handle)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (is_self && name == own) continue;
    ++count;
  }
  closedir(handle);
  return count;
}

prometheus::MetricFamily OneValue(const char* name, const char* help,
                                  prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

ProcessCollector::ProcessCollector(std::string self_dir, std::string proc_stat)
    : self_dir_(std::move(self_dir)), proc_stat_(std::move(proc_stat)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));

  std::optional<std::vector<std::string>> stat;
  if (auto contents = ReadFile(self_dir_ + "/stat"))
    stat = StatFields(*contents);
  if (stat) {
    // proc(5): 14 utime, 15 stime, 22 starttime, all in clock ticks.
    const auto utime = StatField(*stat, 14);
    const auto stime = StatField(*stat, 15);
    if (utime && stime) {
      families.push_back(
          OneValue("process_cpu_seconds_total",
                   "Total user and system CPU time spent in seconds.",
                   MetricType::Counter,
                   static_cast<double>(*utime + *stime) / ticks_per_second));
    }
    const auto start_ticks = StatField(*stat, 22);
    std::optional<uint64_t> boot;
    if (auto contents = ReadFile(proc_stat_)) boot = BootTime(*contents);
    if (start_ticks && boot) {
      families.push_back(
          OneValue("process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.",
                   MetricType::Gauge,
                   static_cast<double>(*boot) +
                       static_cast<double>(*start_ticks) / ticks_per_second));
    }
  }

  if (auto statm = ReadFile(self_dir_ + "/statm")) {
    // proc(5): size resident shared text lib data dt, in pages.
    std::istringstream words(*statm);
    uint64_t size_pages = 0;
    uint64_t resident_pages = 0;
    if (words >> size_pages >> resident_pages) {
      families.push_back(OneValue(
          "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          MetricType::Gauge, static_cast<double>(size_pages) * page_bytes));
      families.push_back(OneValue(
          "process_resident_memory_bytes", "Resident memory size in bytes.",
          MetricType::Gauge, static_cast<double>(resident_pages) * page_bytes));
    }
  }

  if (auto fds = OpenFds(self_dir_ + "/fd")) {
    families.push_back(OneValue("process_open_fds",
                                "Number of open file descriptors.",
                                MetricType::Gauge, *fds));
  }
  std::optional<double> max_fds;
  if (auto limits = ReadFile(self_dir_ + "/limits")) {
    max_fds = MaxOpenFiles(*limits);
  }
  if (max_fds) {
    families.push_back(OneValue("process_max_fds",
                                "Maximum number of open file descriptors.",
                                MetricType::Gauge, *max_fds));
  }
  return families;
}

}  // namespace relu::metrics
