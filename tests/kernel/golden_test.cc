// Every case of relu_golden_edges.json through every supported path, in
// place and out of place, alone and embedded at several offsets of longer
// arrays (so the vector body and the masked tail both see each value).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"
#include "tests/kernel/test_util.h"

namespace relu::kernel::testing {
namespace {

using relu::testing::GoldenCase;

class GoldenTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!IsaSupported(GetParam())) GTEST_SKIP() << "CPU lacks this path";
  }
};

// Runs `c` with its input placed at element `offset` of an array of `length`
// elements (the rest filled with 0.75) and checks the embedded outputs
// against the golden bits.
void CheckEmbedded(Isa isa, const GoldenCase& c, size_t offset, size_t length,
                   bool in_place, bool large) {
  const DType dtype = c.dtype;
  const size_t size = ElementSize(dtype);
  std::vector<uint8_t> in(length * size), out(length * size, 0xcd);
  const uint64_t filler = BitsOf(dtype, 0.75);
  for (size_t i = 0; i < length; ++i) SetBits(dtype, in.data(), i, filler);
  for (size_t i = 0; i < c.input_bits.size(); ++i) {
    SetBits(dtype, in.data(), offset + i, c.input_bits[i]);
  }
  void* dst = in_place ? in.data() : out.data();
  if (large) {
    internal::Run(isa, dtype, internal::MakePlan(dtype, c.params), in.data(),
                  dst, length, /*large=*/true);
  } else {
    ApplyOnThread(isa, dtype, c.params, in.data(), dst, length);
  }
  for (size_t i = 0; i < c.input_bits.size(); ++i) {
    const uint64_t got = GetBits(dtype, dst, offset + i);
    const uint64_t want = c.output_bits[i];
    EXPECT_TRUE(relu::testing::SameResult(dtype, got, want))
        << c.name << " path " << IsaName(isa) << " element " << i << " input "
        << DescribeBits(dtype, c.input_bits[i]) << " want "
        << DescribeBits(dtype, want) << " got " << DescribeBits(dtype, got)
        << " (offset " << offset << ", length " << length
        << (in_place ? ", in place" : "") << (large ? ", large" : "") << ")";
  }
}

TEST_P(GoldenTest, AllCasesMatchBitForBit) {
  const std::vector<GoldenCase> cases = relu::testing::LoadGoldenCases();
  ASSERT_EQ(cases.size(), 100u);
  const Isa isa = GetParam();
  for (const GoldenCase& c : cases) {
    ASSERT_EQ(ValidateParams(c.params), "") << c.name;
    const size_t n = c.input_bits.size();
    for (bool in_place : {false, true}) {
      // Alone: for short cases this is the masked step only.
      CheckEmbedded(isa, c, 0, n, in_place, false);
      // Embedded: in the first vectors (body), straddling vector edges and
      // at the very end (tail).
      for (size_t length : {n + 64, n + 100, 3 * n + 131}) {
        for (size_t offset :
             {size_t{0}, size_t{1}, size_t{7}, size_t{15}, size_t{31},
              size_t{33}, length - n - 1, length - n}) {
          CheckEmbedded(isa, c, offset, length, in_place, false);
        }
      }
    }
    // The large-job loop: aligned head (non-temporal stores) + body + tail.
    for (size_t offset : {size_t{0}, size_t{5}, size_t{40}}) {
      CheckEmbedded(isa, c, offset, n + 97, false, true);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, GoldenTest, ::testing::ValuesIn(kAllIsas),
                         [](const auto& info) {
                           return std::string(IsaName(info.param));
                         });

}  // namespace
}  // namespace relu::kernel::testing
