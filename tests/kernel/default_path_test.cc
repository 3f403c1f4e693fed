// The default path (DefaultIsa, Kernel with default options) on the golden
// cases and random data. Registered three times in ctest: as is, with
// RELU_KERNEL_ISA=scalar and with RELU_KERNEL_ISA=avx2, so the forced
// fallbacks are tested too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"
#include "tests/kernel/test_util.h"

namespace relu::kernel::testing {
namespace {

TEST(DefaultPathTest, HonoursEnvironment) {
  const char* forced = std::getenv("RELU_KERNEL_ISA");
  if (forced != nullptr && *forced != '\0') {
    EXPECT_STREQ(IsaName(DefaultIsa()), forced);
  } else {
    // The best supported path.
    Isa best = Isa::kScalar;
    for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
      if (IsaSupported(isa)) best = isa;
    }
    EXPECT_EQ(DefaultIsa(), best);
  }
  EXPECT_EQ(Kernel().isa(), DefaultIsa());
  std::printf("default path: %s\n", IsaName(DefaultIsa()));
}

TEST(DefaultPathTest, GoldenCasesThroughKernel) {
  Kernel kernel;
  const std::vector<relu::testing::GoldenCase> cases =
      relu::testing::LoadGoldenCases();
  ASSERT_EQ(cases.size(), 100u);
  for (const relu::testing::GoldenCase& c : cases) {
    const size_t n = c.input_bits.size();
    std::vector<uint8_t> in(n * ElementSize(c.dtype)), out(in.size());
    for (size_t i = 0; i < n; ++i)
      SetBits(c.dtype, in.data(), i, c.input_bits[i]);
    kernel.Apply(c.dtype, c.params, in.data(), out.data(), n);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t got = GetBits(c.dtype, out.data(), i);
      EXPECT_TRUE(relu::testing::SameResult(c.dtype, got, c.output_bits[i]))
          << c.name << " element " << i << " got "
          << DescribeBits(c.dtype, got);
    }
  }
}

TEST(DefaultPathTest, RandomDataMatchesScalarReference) {
  Kernel kernel;
  const size_t n = 300001;
  for (DType dtype : kAllDTypes) {
    for (const NamedParams& np : BranchParams()) {
      const std::vector<uint8_t> in = MakeInput(dtype, np.params, n, 3, false);
      std::vector<uint8_t> want(in.size()), out(in.size());
      internal::RunScalar(dtype, internal::MakePlan(dtype, np.params),
                          in.data(), want.data(), n, false);
      kernel.Apply(dtype, np.params, in.data(), out.data(), n);
      ASSERT_EQ(FirstMismatch(dtype, want.data(), out.data(), n), -1)
          << DTypeName(dtype) << " " << np.name;
    }
  }
}

}  // namespace
}  // namespace relu::kernel::testing
