#include "server/service/resource_limits.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace relu::service {
namespace {

// A limit at or above this is "no limit" (cgroup v1 writes
// 9223372036854771712, a page-rounded INT64_MAX).
constexpr uint64_t kUnlimited = uint64_t{1} << 60;

std::optional<uint64_t> ReadLimitFile(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value >= kUnlimited) {
    return std::nullopt;
  }
  return value;
}

// The smallest limit in `file` of cgroup `path` under `dir` and of each of
// its ancestors.
std::optional<uint64_t> SmallestLimit(const std::string& dir, std::string path,
                                      const std::string& file) {
  std::optional<uint64_t> smallest;
  while (true) {
    if (auto limit = ReadLimitFile(dir + path + "/" + file);
        limit && (!smallest || *limit < *smallest)) {
      smallest = limit;
    }
    if (path.empty() || path == "/") break;
    path = path.substr(0, path.rfind('/'));
  }
  return smallest;
}

}  // namespace

std::optional<size_t> CgroupMemoryLimitBytes(
    const std::string& proc_self_cgroup, const std::string& root) {
  std::optional<uint64_t> smallest;
  auto take = [&smallest](std::optional<uint64_t> limit) {
    if (limit && (!smallest || *limit < *smallest)) smallest = limit;
  };
  // Lines are "ID:CONTROLLERS:PATH"; v2's is "0::PATH".
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n')) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    std::string path = parts[2];
    if (!path.empty() && path.back() == '/') path.pop_back();
    if (parts[0] == "0" && parts[1].empty()) {
      // cgroup v2, mounted at the root itself or at root/unified (hybrid).
      take(SmallestLimit(root, path, "memory.max"));
      take(SmallestLimit(root + "/unified", path, "memory.max"));
    } else if (absl::StrContains(parts[1], "memory")) {
      for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
        if (controller == "memory") {
          take(SmallestLimit(root + "/memory", path, "memory.limit_in_bytes"));
        }
      }
    }
  }
  if (!smallest) return std::nullopt;
  return static_cast<size_t>(*smallest);
}

size_t DefaultMemoryLimitBytes() {
  std::ifstream cgroup("/proc/self/cgroup");
  std::stringstream text;
  text << cgroup.rdbuf();
  if (auto limit = CgroupMemoryLimitBytes(text.str(), "/sys/fs/cgroup")) {
    return *limit;
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return size_t{1} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(page_size) / 2;
}

MemoryShares ShareMemory(size_t memory_limit_bytes) {
  MemoryShares shares;
  shares.requests_bytes = memory_limit_bytes / 8 * 3;
  shares.responses_bytes = memory_limit_bytes / 8 * 3;
  return shares;
}

size_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? SIZE_MAX
                                         : static_cast<size_t>(limit.rlim_cur);
}

size_t OpenFileDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  size_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count > 0 ? count - 1 : 0;  // less the directory's own descriptor
}

bool MemoryBudget::TryReserve(size_t bytes) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > capacity_ - std::min(used, capacity_)) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes,
                                        std::memory_order_relaxed));
  return true;
}

}  // namespace relu::service
