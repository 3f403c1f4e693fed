// Force-included (fuzz build only) into server/kernel/dispatch.cc, which
// asks __builtin_cpu_supports("f16c"): g++ knows that feature name, clang-14
// does not ("invalid cpu feature string for builtin"). This maps the builtin
// to a function that answers "f16c" from CPUID (leaf 1, ECX bit 29) and
// passes every other name to clang's builtin, so the fuzz build compiles the
// kernel unchanged and picks the same ISA paths as the g++ build.
#pragma once

#include <cpuid.h>
#include <string.h>

static inline int relu_fuzz_cpu_supports(const char* feature) {
  if (strcmp(feature, "f16c") == 0) {
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  }
  if (strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
  if (strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
  if (strcmp(feature, "avx512bw") == 0) {
    return __builtin_cpu_supports("avx512bw");
  }
  if (strcmp(feature, "avx512vl") == 0) {
    return __builtin_cpu_supports("avx512vl");
  }
  __builtin_trap();  // a feature this shim does not know: add it here
}

#define __builtin_cpu_supports(feature) relu_fuzz_cpu_supports(feature)
