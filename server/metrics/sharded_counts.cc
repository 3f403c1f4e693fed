#include "server/metrics/sharded_counts.h"

#include <cstdint>

#include "absl/base/casts.h"

namespace relu::metrics {

ShardedCounts::ShardedCounts(size_t cells)
    : lines_per_shard_((cells + kCellsPerLine - 1) / kCellsPerLine),
      lines_(new Line[kShards * lines_per_shard_]()) {}

size_t ShardedCounts::ThisShard() {
  static std::atomic<size_t> next{0};
  thread_local size_t shard = SIZE_MAX;
  if (shard == SIZE_MAX) {
    shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  }
  return shard;
}

void ShardedCounts::IncrementDouble(size_t cell, double value) {
  std::atomic<uint64_t>& bits = At(ThisShard(), cell);
  uint64_t old = bits.load(std::memory_order_relaxed);
  while (!bits.compare_exchange_weak(
      old, absl::bit_cast<uint64_t>(absl::bit_cast<double>(old) + value),
      std::memory_order_relaxed)) {
  }
}

uint64_t ShardedCounts::Take(size_t cell) {
  uint64_t sum = 0;
  for (size_t shard = 0; shard < kShards; ++shard) {
    sum += At(shard, cell).exchange(0, std::memory_order_relaxed);
  }
  return sum;
}

double ShardedCounts::TakeDouble(size_t cell) {
  double sum = 0;
  for (size_t shard = 0; shard < kShards; ++shard) {
    sum += absl::bit_cast<double>(
        At(shard, cell).exchange(0, std::memory_order_relaxed));
  }
  return sum;
}

int64_t ShardedCounts::SumSigned(size_t cell) const {
  uint64_t sum = 0;  // wraps as two's complement
  for (size_t shard = 0; shard < kShards; ++shard) {
    sum += At(shard, cell).load(std::memory_order_relaxed);
  }
  return static_cast<int64_t>(sum);
}

}  // namespace relu::metrics
