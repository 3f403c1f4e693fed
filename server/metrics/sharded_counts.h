// Counts added on the request path without a lock and without a cache line
// that every thread writes: each thread adds to its own shard (threads take
// the shards in turn), with relaxed atomics, so that threads sharing a shard
// still count exactly. A scrape takes the sums over the shards. Cells are
// 64 bits: unsigned counts, or doubles (a histogram's sum) kept as their
// bits.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace relu::metrics {

class ShardedCounts {
 public:
  static constexpr size_t kShards = 16;

  // `cells` cells per shard, all zero.
  explicit ShardedCounts(size_t cells);

  // Adds `n` to `cell` in this thread's shard. Thread-safe.
  void Increment(size_t cell, uint64_t n) {
    At(ThisShard(), cell).fetch_add(n, std::memory_order_relaxed);
  }
  void IncrementDouble(size_t cell, double value);

  // The sum of `cell` over the shards, each shard's reset to zero: what was
  // added since the last Take. Thread-safe; an Increment that runs at the
  // same time is counted by this Take or by the next.
  uint64_t Take(size_t cell);
  double TakeDouble(size_t cell);
  // The sum of `cell` over the shards as a signed number, not reset (a
  // gauge's ups and downs, which may land in different shards).
  int64_t SumSigned(size_t cell) const;

 private:
  struct alignas(64) Line {
    std::atomic<uint64_t> cells[8];
  };
  static constexpr size_t kCellsPerLine = 8;

  static size_t ThisShard();
  std::atomic<uint64_t>& At(size_t shard, size_t cell) const {
    return lines_[shard * lines_per_shard_ + cell / kCellsPerLine]
        .cells[cell % kCellsPerLine];
  }

  const size_t lines_per_shard_;
  const std::unique_ptr<Line[]> lines_;
};

}  // namespace relu::metrics
