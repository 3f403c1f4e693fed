// The Kernel class (oneTBB, parallel split, ApplyBatch) against the scalar
// reference, on 1M random elements per dtype and parameter set.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"
#include "tests/kernel/test_util.h"

namespace relu::kernel::testing {
namespace {

constexpr size_t kRandomElements = size_t{1} << 20;

std::vector<uint8_t> Reference(DType dtype, const Params& params,
                               const std::vector<uint8_t>& in, size_t n) {
  std::vector<uint8_t> out(n * ElementSize(dtype));
  internal::RunScalar(dtype, internal::MakePlan(dtype, params), in.data(),
                      out.data(), n, false);
  return out;
}

class KernelRandomTest : public ::testing::TestWithParam<DType> {};

TEST_P(KernelRandomTest, MillionRandomElementsMatchScalar) {
  const DType dtype = GetParam();
  Kernel kernel(KernelOptions{2, std::nullopt});
  uint64_t seed = 1;
  for (const NamedParams& np : BranchParams()) {
    const std::vector<uint8_t> in =
        MakeInput(dtype, np.params, kRandomElements, seed++, false);
    const std::vector<uint8_t> want =
        Reference(dtype, np.params, in, kRandomElements);
    std::vector<uint8_t> out(in.size());
    kernel.Apply(dtype, np.params, in.data(), out.data(), kRandomElements);
    long bad = FirstMismatch(dtype, want.data(), out.data(), kRandomElements);
    ASSERT_EQ(bad, -1) << np.name << " out of place, element " << bad;
    std::vector<uint8_t> inout = in;
    kernel.Apply(dtype, np.params, inout.data(), inout.data(), kRandomElements);
    bad = FirstMismatch(dtype, want.data(), inout.data(), kRandomElements);
    ASSERT_EQ(bad, -1) << np.name << " in place, element " << bad;
  }
}

// Large enough for non-temporal stores and a many-chunk split (odd length,
// unaligned start).
TEST_P(KernelRandomTest, LargeUnalignedOutputMatchesScalar) {
  const DType dtype = GetParam();
  Kernel kernel(KernelOptions{2, std::nullopt});
  const size_t n = internal::kLargeJobBytes / ElementSize(dtype) + 12345;
  Params params;
  params.max_value = 3.0;
  params.negative_slope = 0.2;
  params.threshold = 0.5;
  const std::vector<uint8_t> in = MakeInput(dtype, params, n + 1, 99, false);
  const std::vector<uint8_t> want = Reference(dtype, params, in, n + 1);
  std::vector<uint8_t> out((n + 2) * ElementSize(dtype));
  const size_t e = ElementSize(dtype);
  kernel.Apply(dtype, params, in.data() + e, out.data() + e, n);
  EXPECT_EQ(FirstMismatch(dtype, want.data() + e, out.data() + e, n), -1);
  // In place at an odd byte offset, as a tensor the network put there.
  std::vector<uint8_t> odd(n * e + 1);
  std::memcpy(odd.data() + 1, in.data() + e, n * e);
  kernel.Apply(dtype, params, odd.data() + 1, odd.data() + 1, n);
  EXPECT_EQ(FirstMismatch(dtype, want.data() + e, odd.data() + 1, n), -1);
}

INSTANTIATE_TEST_SUITE_P(DTypes, KernelRandomTest,
                         ::testing::ValuesIn(kAllDTypes), [](const auto& info) {
                           return std::string(DTypeName(info.param));
                         });

TEST(KernelTest, ReportsOptions) {
  Kernel one(KernelOptions{1, Isa::kScalar});
  EXPECT_EQ(one.threads(), 1);
  EXPECT_EQ(one.isa(), Isa::kScalar);
  Kernel all;
  EXPECT_GE(all.threads(), 1);
  EXPECT_EQ(all.isa(), DefaultIsa());
}

// Mixed dtypes, parameters and sizes (tiny ones sharing chunks, big ones
// split), some in place, as one parallel job.
TEST(KernelTest, ApplyBatchMatchesScalarPerSegment) {
  const std::vector<NamedParams> sets = BranchParams();
  std::mt19937_64 rng(7);
  const size_t sizes[] = {0,    1,      3,       17,     64,      255,
                          1000, 4096,   65537,   300000, 1 << 20, 5,
                          2,    777777, 3000000, 12,     100,     40000};
  struct Owned {
    std::vector<uint8_t> in, out, want;
  };
  std::vector<Owned> owned;
  std::vector<Segment> segments;
  owned.reserve(std::size(sizes) * 2);
  for (int round = 0; round < 2; ++round) {
    for (size_t n : sizes) {
      const DType dtype = kAllDTypes[rng() % 4];
      const Params params = sets[rng() % sets.size()].params;
      Owned o;
      o.in = MakeInput(dtype, params, n, rng(), false);
      o.want = Reference(dtype, params, o.in, n);
      const bool in_place = rng() % 3 == 0;
      if (!in_place) o.out.assign(o.in.size(), 0);
      owned.push_back(std::move(o));
      Owned& last = owned.back();
      Segment s;
      s.dtype = dtype;
      s.params = params;
      s.in = last.in.data();
      s.out = in_place ? last.in.data() : last.out.data();
      s.n = n;
      segments.push_back(s);
    }
  }
  Kernel kernel(KernelOptions{2, std::nullopt});
  kernel.ApplyBatch(segments.data(), segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    EXPECT_EQ(FirstMismatch(segments[i].dtype, owned[i].want.data(),
                            segments[i].out, segments[i].n),
              -1)
        << "segment " << i << " " << DTypeName(segments[i].dtype)
        << " n=" << segments[i].n;
  }
  // A small batch runs inline; same answers.
  std::vector<Segment> small(segments.begin(), segments.begin() + 6);
  std::vector<std::vector<uint8_t>> outs;
  for (Segment& s : small) {
    outs.emplace_back(s.n * ElementSize(s.dtype));
    s.in = s.out;  // already-computed values as new input
    s.out = outs.back().data();
  }
  kernel.ApplyBatch(small.data(), small.size());
  for (const Segment& s : small) {
    std::vector<uint8_t> in(
        static_cast<const uint8_t*>(s.in),
        static_cast<const uint8_t*>(s.in) + s.n * ElementSize(s.dtype));
    const std::vector<uint8_t> want = Reference(s.dtype, s.params, in, s.n);
    EXPECT_EQ(FirstMismatch(s.dtype, want.data(), s.out, s.n), -1);
  }
}

// Every job split (cut-off 1 byte) or none (cut-off past any job): the same
// answers, for a tensor and for a batch of small segments.
TEST(KernelTest, ParallelCutOffChangesNoAnswer) {
  const std::vector<NamedParams> sets = BranchParams();
  for (size_t cut_off : {size_t{1}, SIZE_MAX}) {
    Kernel kernel(KernelOptions{2, std::nullopt, cut_off});
    for (DType dtype : kAllDTypes) {
      const Params params = sets[5 % sets.size()].params;
      const size_t n = 300001;
      const std::vector<uint8_t> in = MakeInput(dtype, params, n, 61, false);
      const std::vector<uint8_t> want = Reference(dtype, params, in, n);
      std::vector<uint8_t> out(in.size());
      kernel.Apply(dtype, params, in.data(), out.data(), n);
      EXPECT_EQ(FirstMismatch(dtype, want.data(), out.data(), n), -1)
          << DTypeName(dtype) << " cut-off " << cut_off;
      // The same tensor as a batch of 7-element segments.
      std::vector<uint8_t> batch_out(in.size());
      std::vector<Segment> segments;
      const size_t size = ElementSize(dtype);
      for (size_t at = 0; at < n; at += 7) {
        segments.push_back({dtype, params, in.data() + at * size,
                            batch_out.data() + at * size,
                            std::min<size_t>(7, n - at)});
      }
      kernel.ApplyBatch(segments.data(), segments.size());
      EXPECT_EQ(FirstMismatch(dtype, want.data(), batch_out.data(), n), -1)
          << DTypeName(dtype) << " batch, cut-off " << cut_off;
    }
  }
}

// Several callers sharing one Kernel at once.
TEST(KernelTest, ConcurrentCallersGetTheirOwnResults) {
  Kernel kernel(KernelOptions{2, std::nullopt});
  const std::vector<NamedParams> sets = BranchParams();
  std::vector<std::thread> callers;
  std::vector<long> results(4, -2);
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      const DType dtype = kAllDTypes[t];
      const Params params = sets[static_cast<size_t>(t) * 3].params;
      const size_t n = 1500000;
      const std::vector<uint8_t> in =
          MakeInput(dtype, params, n, 50 + t, false);
      const std::vector<uint8_t> want = Reference(dtype, params, in, n);
      std::vector<uint8_t> out(in.size());
      kernel.Apply(dtype, params, in.data(), out.data(), n);
      results[static_cast<size_t>(t)] =
          FirstMismatch(dtype, want.data(), out.data(), n);
    });
  }
  for (std::thread& t : callers) t.join();
  for (long r : results) EXPECT_EQ(r, -1);
}

}  // namespace
}  // namespace relu::kernel::testing
