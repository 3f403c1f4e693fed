// What bounds the server's memory and descriptors: the memory limit it takes
// from its cgroup (or the machine), the file-descriptor limit it raises at
// start, and the budget that response bytes are reserved from before they
// are allocated.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>

namespace relu::service {

// The memory limit of the cgroup this process is in: the smallest limit of
// its memory cgroup and the cgroup's ancestors (cgroup v2 memory.max, or v1
// memory.limit_in_bytes), read under `root` (normally /sys/fs/cgroup) for the
// memberships listed in `proc_self_cgroup` (the text of /proc/self/cgroup).
// nullopt when no limit is set anywhere or nothing can be read.
std::optional<size_t> CgroupMemoryLimitBytes(
    const std::string& proc_self_cgroup, const std::string& root);

// The default of --memory-limit-bytes: this process's cgroup limit when it
// has one, else half of the machine's memory (MemTotal).
size_t DefaultMemoryLimitBytes();

// How a memory limit is shared out. The split is fixed so that the README
// can show the arithmetic:
//   reserve   1/4: the process itself (code, threads, kernel arena, metrics),
//                  and what gRPC allocates outside its quota;
//   requests  3/8: gRPC's ResourceQuota (bytes received and being received,
//                  per-call and per-stream state); past it gRPC refuses new
//                  streams and resets the ones that grow;
//   responses 3/8: response bytes, reserved before they are allocated and
//                  released when the call ends (RESOURCE_EXHAUSTED past it).
struct MemoryShares {
  size_t requests_bytes = 0;
  size_t responses_bytes = 0;
};
MemoryShares ShareMemory(size_t memory_limit_bytes);

// Raises this process's soft RLIMIT_NOFILE to its hard limit. Returns the
// soft limit in force afterwards (0 when it cannot be read).
size_t RaiseFileLimit();

// Descriptors this process has open (entries of /proc/self/fd).
size_t OpenFileDescriptors();

// Bytes reserved against a fixed capacity. Thread-safe, lock-free.
class MemoryBudget {
 public:
  explicit MemoryBudget(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  // Reserves `bytes` when they fit. False (nothing reserved) when they
  // do not.
  bool TryReserve(size_t bytes);
  // Returns `bytes` reserved by TryReserve.
  void Release(size_t bytes) {
    used_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const size_t capacity_;
  std::atomic<size_t> used_{0};
};

}  // namespace relu::service
