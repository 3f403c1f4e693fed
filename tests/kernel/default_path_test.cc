// The kernel's path as a server picks it (DefaultIsa, or KernelOptions::isa
// as --kernel-isa sets it) on the golden cases and random data. Registered
// three times in ctest: as is, with --isa=scalar and with --isa=avx2, so the
// forced fallbacks are tested too.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"
#include "tests/kernel/test_util.h"

namespace relu::kernel::testing {
namespace {

// --isa=NAME from the command line; empty = the default path.
std::string forced_isa;

// The options a server passes for forced_isa.
KernelOptions Options() {
  KernelOptions options;
  options.isa = ParseIsa(forced_isa);
  return options;
}

TEST(DefaultPathTest, HonoursOption) {
  const char* forced = forced_isa.c_str();
  if (!forced_isa.empty()) {
    EXPECT_STREQ(IsaName(Kernel(Options()).isa()), forced);
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
  std::printf("path under test: %s\n", IsaName(Kernel(Options()).isa()));
}

TEST(DefaultPathTest, GoldenCasesThroughKernel) {
  Kernel kernel(Options());
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
  Kernel kernel(Options());
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

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--isa=", 0) == 0) {
      relu::kernel::testing::forced_isa = arg.substr(6);
      if (!relu::kernel::ParseIsa(relu::kernel::testing::forced_isa)) {
        std::fprintf(stderr, "unknown path %s\n", arg.c_str());
        return 2;
      }
    }
  }
  return RUN_ALL_TESTS();
}
