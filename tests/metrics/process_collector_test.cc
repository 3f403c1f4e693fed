// ProcessCollector over fixture procfs files (exact values) and over the live
// /proc/self (plausible values that move the right way).
#include "server/metrics/process_collector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace relu::metrics {
namespace {

using ::prometheus::MetricFamily;
using ::prometheus::MetricType;

std::map<std::string, MetricFamily> ByName(
    const std::vector<MetricFamily>& families) {
  std::map<std::string, MetricFamily> by_name;
  for (const MetricFamily& family : families) by_name[family.name] = family;
  return by_name;
}

double Value(const MetricFamily& family) {
  EXPECT_EQ(family.metric.size(), 1u) << family.name;
  if (family.metric.empty()) return -1;
  return family.type == MetricType::Counter ? family.metric[0].counter.value
                                            : family.metric[0].gauge.value;
}

class ProcessCollectorFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/relu-proc-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    std::filesystem::create_directories(dir_ + "/self/fd");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ + "/" + name) << contents;
  }

  std::string dir_;
};

TEST_F(ProcessCollectorFixtureTest, ParsesEveryFile) {
  // comm with a space and a ')' must not shift the fields.
  Write("self/stat",
        "4242 (relu) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
        "250 150 0 0 20 0 9 0 12345 1000000 500 18446744073709551615\n");
  Write("self/statm", "2500 700 300 10 0 900 0\n");
  Write("self/limits",
        "Limit                     Soft Limit           Hard Limit           "
        "Units     \n"
        "Max cpu time              unlimited            unlimited            "
        "seconds   \n"
        "Max open files            1024                 524288               "
        "files     \n");
  Write("stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 5\n");
  for (const char* fd : {"0", "1", "2", "7"})
    Write(std::string("self/fd/") + fd, "");

  ProcessCollector collector(dir_ + "/self", dir_ + "/stat");
  auto families = ByName(collector.Collect());
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

  ASSERT_EQ(families.count("process_cpu_seconds_total"), 1u);
  EXPECT_EQ(families["process_cpu_seconds_total"].type, MetricType::Counter);
  EXPECT_DOUBLE_EQ(Value(families["process_cpu_seconds_total"]), 400 / ticks);
  ASSERT_EQ(families.count("process_start_time_seconds"), 1u);
  EXPECT_DOUBLE_EQ(Value(families["process_start_time_seconds"]),
                   1700000000 + 12345 / ticks);
  ASSERT_EQ(families.count("process_resident_memory_bytes"), 1u);
  EXPECT_EQ(Value(families["process_resident_memory_bytes"]), 700 * page);
  ASSERT_EQ(families.count("process_virtual_memory_bytes"), 1u);
  EXPECT_EQ(Value(families["process_virtual_memory_bytes"]), 2500 * page);
  ASSERT_EQ(families.count("process_open_fds"), 1u);
  EXPECT_EQ(Value(families["process_open_fds"]), 4);
  ASSERT_EQ(families.count("process_max_fds"), 1u);
  EXPECT_EQ(Value(families["process_max_fds"]), 1024);
}

TEST_F(ProcessCollectorFixtureTest, LeavesOutWhatItCannotRead) {
  Write("self/stat", "garbage without parentheses\n");
  Write("self/limits",
        "Max open files            unlimited   unlimited  files\n");
  ProcessCollector collector(dir_ + "/self", dir_ + "/stat");
  auto families = ByName(collector.Collect());
  EXPECT_EQ(families.count("process_cpu_seconds_total"), 0u);
  EXPECT_EQ(families.count("process_start_time_seconds"), 0u);
  EXPECT_EQ(families.count("process_resident_memory_bytes"), 0u);
  EXPECT_EQ(families.count("process_max_fds"), 0u);
  // The (empty) fd directory is still readable.
  ASSERT_EQ(families.count("process_open_fds"), 1u);
  EXPECT_EQ(Value(families["process_open_fds"]), 0);
}

TEST(ProcessCollectorLiveTest, ReadsThisProcess) {
  ProcessCollector collector;
  auto before = ByName(collector.Collect());
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_start_time_seconds",
        "process_open_fds", "process_max_fds"}) {
    EXPECT_EQ(before.count(name), 1u) << name;
  }
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur != RLIM_INFINITY) {
    EXPECT_EQ(Value(before["process_max_fds"]),
              static_cast<double>(limit.rlim_cur));
  }
  EXPECT_GT(Value(before["process_resident_memory_bytes"]), 0);

  // Started within the last day, and not in the future.
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const double start = Value(before["process_start_time_seconds"]);
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 86400);

  // Two more descriptors show as exactly two more.
  const int a = open("/dev/null", O_RDONLY);
  const int b = open("/dev/null", O_RDONLY);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  auto after = ByName(collector.Collect());
  close(a);
  close(b);
  EXPECT_EQ(Value(after["process_open_fds"]),
            Value(before["process_open_fds"]) + 2);

  // Burn CPU until the counter moves (ticks are 10 ms).
  const double cpu = Value(before["process_cpu_seconds_total"]);
  double later = cpu;
  volatile uint64_t sink = 0;
  while (later <= cpu) {
    for (int i = 0; i < 1000000; ++i) sink = sink + static_cast<uint64_t>(i);
    later = Value(ByName(collector.Collect())["process_cpu_seconds_total"]);
  }
  EXPECT_GT(later, cpu);
}

}  // namespace
}  // namespace relu::metrics
