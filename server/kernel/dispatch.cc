// Path selection (CPUID) and the single-thread entry point.
#include <cpuid.h>

#include <string>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"

namespace relu::kernel {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::optional<Isa> ParseIsa(const std::string& name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (name == IsaName(isa)) return isa;
  }
  return std::nullopt;
}

namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang-14's __builtin_cpu_supports
// does not know the name. The AVX2 check that goes with it covers the OS
// saving the YMM state.
bool HasF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

}  // namespace

bool IsaSupported(Isa isa) {
  // __builtin_cpu_supports also checks that the OS saves the vector state.
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && HasF16c();
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
}

namespace {

Isa ComputeDefaultIsa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (IsaSupported(isa)) return isa;
  }
  return Isa::kScalar;
}

}  // namespace

Isa DefaultIsa() {
  static const Isa isa = ComputeDefaultIsa();
  return isa;
}

void ApplyOnThread(Isa isa, DType dtype, const Params& params, const void* in,
                   void* out, size_t n) {
  const bool large = n * ElementSize(dtype) >= internal::kLargeJobBytes;
  internal::Run(isa, dtype, internal::MakePlan(dtype, params), in, out, n,
                large);
}

}  // namespace relu::kernel
