// The Kernel class: one code path and one oneTBB arena.
#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"

namespace relu::kernel {
namespace {

// Jobs whose input is smaller than this run inline on the caller's thread.
// KernelOptions::parallel_min_bytes defaults to 1 MiB. Measured on the
// 2-core dev VM, float32 plain ReLU, 2 threads vs 1 with calls back to back
// (workers awake): 64K elements 0.97x, 128K 1.2x, 256K (1 MiB) 1.6x, 512K
// 1.7x, 1M 2.0x. With 1 ms gaps between calls the sleeping worker (15-30 us
// to wake, longer when another tenant holds the second core) ate the gain up
// to 4M elements (0.9-1.0x). relu-server sets its own cut-off
// (--kernel-parallel-min-bytes): there gRPC's threads want the other cores.

// Grain of the parallel split: 256 KiB of input per chunk. In place, a chunk
// read and written back stays in the 2 MiB L2 of one core; out of place its
// input and output fit too. At ~10 GB/s a chunk is ~25 us of work, so the
// ~1 us cost of a task stays small, and a 4 MiB job still splits into
// enough chunks for two threads to balance.
constexpr size_t kGrainBytes = size_t{256} << 10;

const char* AsBytes(const void* p) { return static_cast<const char*>(p); }
char* AsBytes(void* p) { return static_cast<char*>(p); }

}  // namespace

struct Kernel::Impl {
  Impl(Isa isa_in, int threads_in, size_t parallel_min_bytes_in)
      : isa(isa_in),
        threads(threads_in),
        parallel_min_bytes(parallel_min_bytes_in),
        arena(threads_in) {}
  const Isa isa;
  const int threads;
  const size_t parallel_min_bytes;
  tbb::task_arena arena;
};

Kernel::Kernel(const KernelOptions& options) {
  const Isa isa = options.isa.value_or(DefaultIsa());
  if (!IsaSupported(isa)) {
    std::fprintf(stderr, "relu kernel: path %s is not supported by this CPU\n",
                 IsaName(isa));
    std::abort();
  }
  const int threads =
      options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  impl_ = std::make_unique<Impl>(isa, std::max(threads, 1),
                                 options.parallel_min_bytes);
}

Kernel::~Kernel() = default;

Isa Kernel::isa() const { return impl_->isa; }
int Kernel::threads() const { return impl_->threads; }

namespace {

// The parallel part of Kernel::Apply, kept out of line so that the inline
// path of small calls stays a few instructions.
[[gnu::noinline]] void ApplyParallel(tbb::task_arena& arena, Isa isa,
                                     DType dtype, const internal::Plan& plan,
                                     const void* in, void* out, size_t n,
                                     bool large) {
  const size_t element_size = ElementSize(dtype);
  const size_t grain = kGrainBytes / element_size;
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, grain),
                      [&](const tbb::blocked_range<size_t>& range) {
                        const size_t offset = range.begin() * element_size;
                        internal::Run(isa, dtype, plan, AsBytes(in) + offset,
                                      AsBytes(out) + offset, range.size(),
                                      large);
                      });
  });
}

}  // namespace

void Kernel::Apply(DType dtype, const Params& params, const void* in, void* out,
                   size_t n) {
  const size_t bytes = n * ElementSize(dtype);
  const internal::Plan plan = internal::MakePlan(dtype, params);
  const bool large = bytes >= internal::kLargeJobBytes;
  if (impl_->threads == 1 || bytes < impl_->parallel_min_bytes) {
    internal::Run(impl_->isa, dtype, plan, in, out, n, large);
    return;
  }
  ApplyParallel(impl_->arena, impl_->isa, dtype, plan, in, out, n, large);
}

void Kernel::ApplyBatch(const Segment* segments, size_t count) {
  const Isa isa = impl_->isa;
  size_t total_bytes = 0;
  std::vector<internal::Plan> plans;
  plans.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    total_bytes += segments[i].n * ElementSize(segments[i].dtype);
    plans.push_back(internal::MakePlan(segments[i].dtype, segments[i].params));
  }
  const bool large = total_bytes >= internal::kLargeJobBytes;
  const auto run_piece = [&](size_t segment, size_t begin, size_t end) {
    const Segment& s = segments[segment];
    const size_t element_size = ElementSize(s.dtype);
    const size_t offset = begin * element_size;
    internal::Run(isa, s.dtype, plans[segment], AsBytes(s.in) + offset,
                  AsBytes(s.out) + offset, end - begin, large);
  };
  if (impl_->threads == 1 || total_bytes < impl_->parallel_min_bytes) {
    for (size_t i = 0; i < count; ++i) run_piece(i, 0, segments[i].n);
    return;
  }
  // Cut big segments into grain-sized pieces and group consecutive pieces
  // into chunks of about one grain, so small segments share a chunk.
  struct Piece {
    size_t segment, begin, end;
  };
  std::vector<Piece> pieces;
  std::vector<size_t> chunk_starts{0};
  size_t chunk_bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t element_size = ElementSize(segments[i].dtype);
    const size_t step = kGrainBytes / element_size;
    for (size_t begin = 0; begin < segments[i].n; begin += step) {
      const size_t end = std::min(segments[i].n, begin + step);
      pieces.push_back({i, begin, end});
      chunk_bytes += (end - begin) * element_size;
      if (chunk_bytes >= kGrainBytes) {
        chunk_starts.push_back(pieces.size());
        chunk_bytes = 0;
      }
    }
  }
  if (chunk_starts.back() != pieces.size())
    chunk_starts.push_back(pieces.size());
  const size_t chunks = chunk_starts.size() - 1;
  impl_->arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, chunks, 1),
        [&](const tbb::blocked_range<size_t>& range) {
          for (size_t c = range.begin(); c != range.end(); ++c) {
            for (size_t p = chunk_starts[c]; p != chunk_starts[c + 1]; ++p) {
              run_piece(pieces[p].segment, pieces[p].begin, pieces[p].end);
            }
          }
        });
  });
}

}  // namespace relu::kernel
