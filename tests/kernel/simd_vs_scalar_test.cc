// Every SIMD path against the scalar reference: every length 0..257 at every
// start misalignment 0..63 bytes (in element steps) and at odd byte offsets,
// inputs and outputs alike, in place and out of place, each with the
// small-job and the large-job loop, for every dtype and one parameter set per
// branch of the algorithm, on inputs full of edge values.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"
#include "tests/kernel/test_util.h"

namespace relu::kernel::testing {
namespace {

using SimdParam = std::tuple<Isa, DType>;

class SimdVsScalarTest : public ::testing::TestWithParam<SimdParam> {
 protected:
  void SetUp() override {
    if (!IsaSupported(std::get<0>(GetParam()))) {
      GTEST_SKIP() << "CPU lacks this path";
    }
  }
};

constexpr size_t kMaxLength = 257;
constexpr size_t kMaxMisalign = 64;

TEST_P(SimdVsScalarTest, EveryLengthAndMisalignment) {
  const auto [isa, dtype] = GetParam();
  const size_t size = ElementSize(dtype);
  // Room for the largest misalignment plus guard bytes after the end.
  const size_t buffer_bytes = (kMaxLength + 64) * size + kMaxMisalign + 128;
  for (const NamedParams& np : BranchParams()) {
    const internal::Plan plan = internal::MakePlan(dtype, np.params);
    const std::vector<uint8_t> source =
        MakeInput(dtype, np.params, kMaxLength, 17, /*edges_only=*/true);
    std::vector<uint8_t> want(kMaxLength * size);
    internal::RunScalar(dtype, plan, source.data(), want.data(), kMaxLength,
                        false);
    // 64-byte aligned arenas.
    std::vector<uint8_t> in_arena(buffer_bytes + 64),
        out_arena(buffer_bytes + 64);
    uint8_t* in_base = in_arena.data() +
                       (64 - reinterpret_cast<uintptr_t>(in_arena.data()) % 64);
    uint8_t* out_base =
        out_arena.data() +
        (64 - reinterpret_cast<uintptr_t>(out_arena.data()) % 64);
    std::vector<size_t> misaligns;
    for (size_t m = 0; m < kMaxMisalign; m += size) misaligns.push_back(m);
    // Neither inputs nor outputs need any alignment.
    for (size_t m : {1, 3, 5, 7, 33}) {
      if (m % size != 0) misaligns.push_back(m);
    }
    for (size_t misalign : misaligns) {
      // Output misaligned differently from the input: by whole elements
      // for every other element-aligned input, by odd bytes otherwise.
      const size_t out_misalign =
          (misalign * 3 + size * 5 + misalign / size % 2) % kMaxMisalign;
      for (size_t n = 0; n <= kMaxLength; ++n) {
        // The reference for a prefix of length n is the prefix of `want`
        // (elementwise op).
        for (int mode = 0; mode < 3;
             ++mode) {  // out of place, stream, in place
          std::memset(in_base, 0xa5, buffer_bytes);
          std::memset(out_base, 0x5a, buffer_bytes);
          uint8_t* in = in_base + misalign;
          std::memcpy(in, source.data(), n * size);
          const bool in_place = mode >= 2;
          uint8_t* out = in_place ? in : out_base + out_misalign;
          internal::Run(isa, dtype, plan, in, out, n, mode % 2 == 1);
          const long bad = FirstMismatch(dtype, want.data(), out, n);
          ASSERT_EQ(bad, -1)
              << np.name << " n=" << n << " misalign=" << misalign
              << " mode=" << mode << " input "
              << DescribeBits(dtype, GetBits(dtype, source.data(), bad))
              << " want "
              << DescribeBits(dtype, GetBits(dtype, want.data(), bad))
              << " got " << DescribeBits(dtype, GetBits(dtype, out, bad));
          // Nothing past the end (nor before the start) was written.
          const uint8_t guard = in_place ? 0xa5 : 0x5a;
          const uint8_t* base = in_place ? in_base : out_base;
          const size_t start = static_cast<size_t>(out - base);
          for (size_t b = 0; b < start; ++b) {
            ASSERT_EQ(base[b], guard) << np.name << " wrote before start";
          }
          for (size_t b = start + n * size; b < buffer_bytes; ++b) {
            ASSERT_EQ(base[b], guard)
                << np.name << " n=" << n << " wrote past the end";
          }
        }
      }
    }
  }
}

// The large-job loop (four pages at a time, non-temporal stores out of
// place) over several page blocks plus a remainder, at several
// misalignments.
TEST_P(SimdVsScalarTest, LargeJobLoop) {
  const auto [isa, dtype] = GetParam();
  const size_t size = ElementSize(dtype);
  const size_t n = 3 * 4 * 4096 / size + 4096 / size / 2 + 77;
  for (const NamedParams& np : BranchParams()) {
    const internal::Plan plan = internal::MakePlan(dtype, np.params);
    const std::vector<uint8_t> source =
        MakeInput(dtype, np.params, n, 23, /*edges_only=*/false);
    std::vector<uint8_t> want(n * size);
    internal::RunScalar(dtype, plan, source.data(), want.data(), n, false);
    std::vector<uint8_t> in_arena(n * size + 256), out_arena(n * size + 256);
    for (size_t misalign : {size_t{0}, size, 3 * size, size_t{40}, size_t{5}}) {
      for (bool in_place : {false, true}) {
        std::memset(out_arena.data(), 0x5a, out_arena.size());
        uint8_t* in = in_arena.data() + misalign;
        std::memcpy(in, source.data(), n * size);
        // Odd input offsets give odd output offsets (no streaming stores).
        uint8_t* out = in_place ? in : out_arena.data() + (misalign * 7) % 64;
        internal::Run(isa, dtype, plan, in, out, n, /*large=*/true);
        const long bad = FirstMismatch(dtype, want.data(), out, n);
        ASSERT_EQ(bad, -1) << np.name << " misalign=" << misalign
                           << (in_place ? " in place" : " out of place");
      }
    }
  }
}

// The scalar path too reads and writes at any byte offset, in place and out
// of place (the SIMD tests above take it as their reference at element
// alignment).
TEST(ScalarPathTest, InputsAndOutputsAtAnyByteOffset) {
  constexpr size_t kLength = 37;
  for (DType dtype : kAllDTypes) {
    const size_t size = ElementSize(dtype);
    for (const NamedParams& np : BranchParams()) {
      const internal::Plan plan = internal::MakePlan(dtype, np.params);
      const std::vector<uint8_t> source =
          MakeInput(dtype, np.params, kLength, 29, /*edges_only=*/true);
      std::vector<uint8_t> want(kLength * size);
      internal::RunScalar(dtype, plan, source.data(), want.data(), kLength,
                          false);
      for (size_t offset = 1; offset < 8; ++offset) {
        std::vector<uint8_t> in(offset + kLength * size);
        std::memcpy(in.data() + offset, source.data(), kLength * size);
        const size_t out_offset = 8 - offset;
        std::vector<uint8_t> out(out_offset + kLength * size, 0x5a);
        internal::RunScalar(dtype, plan, in.data() + offset,
                            out.data() + out_offset, kLength, false);
        EXPECT_EQ(
            FirstMismatch(dtype, want.data(), out.data() + out_offset, kLength),
            -1)
            << np.name << " " << DTypeName(dtype) << " offset=" << offset;
        internal::RunScalar(dtype, plan, in.data() + offset, in.data() + offset,
                            kLength, false);
        EXPECT_EQ(
            FirstMismatch(dtype, want.data(), in.data() + offset, kLength), -1)
            << np.name << " " << DTypeName(dtype) << " in place at offset "
            << offset;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, SimdVsScalarTest,
    ::testing::Combine(::testing::Values(Isa::kAvx2, Isa::kAvx512),
                       ::testing::ValuesIn(kAllDTypes)),
    [](const auto& info) {
      return std::string(IsaName(std::get<0>(info.param))) + "_" +
             DTypeName(std::get<1>(info.param));
    });

}  // namespace
}  // namespace relu::kernel::testing
