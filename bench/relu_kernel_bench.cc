// Benchmarks of the ReLU kernel. Names are <op>/<dtype>/<variant>/<threads>/
// <elements>: op copy (variant memcpy | stream), relu and relu_inplace
// (variant scalar | avx2 | avx512), onednn_relu (variant onednn). Every
// entry reports read + written bytes, so entries of the same dtype and size
// compare directly; bench/kernel_ratios.py prints the target ratios.
//
//   relu_kernel_bench --benchmark_format=json > k.json
//   python3 bench/kernel_ratios.py k.json
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/kernel/relu_kernel.h"

namespace relu::kernel {
namespace {

constexpr size_t kSizes[] = {size_t{1} << 10, size_t{1} << 14, size_t{1} << 18,
                             size_t{1} << 22, size_t{1} << 26};
constexpr DType kDTypes[] = {DType::kFloat32, DType::kFloat16,
                             DType::kBFloat16};
constexpr size_t kMaxBytes = (size_t{1} << 26) * 4;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Two 64-byte aligned buffers of kMaxBytes, shared by every benchmark and
// filled once with values of both signs (valid in every dtype's bits: the
// upper halves of float32 values are bfloat16, float16 values are within
// range of small normals).
struct Buffers {
  std::unique_ptr<uint8_t, FreeDeleter> in, out;
  Buffers()
      : in(static_cast<uint8_t*>(std::aligned_alloc(64, kMaxBytes))),
        out(static_cast<uint8_t*>(std::aligned_alloc(64, kMaxBytes))) {
    std::mt19937 rng(1);
    std::uniform_int_distribution<uint16_t> half(0x3000, 0x4fff);
    uint16_t* p = reinterpret_cast<uint16_t*>(in.get());
    for (size_t i = 0; i < kMaxBytes / 2; ++i) {
      // float16/bfloat16 values in about [2^-3, 2^4] or a negative one.
      p[i] = static_cast<uint16_t>(half(rng) | ((rng() & 1) << 15));
    }
    std::memset(out.get(), 0, kMaxBytes);
  }
};

Buffers& Shared() {
  static Buffers buffers;
  return buffers;
}

void SetBytes(benchmark::State& state, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(2 * bytes));
}

void BM_Memcpy(benchmark::State& state, size_t bytes) {
  Buffers& b = Shared();
  for (auto _ : state) {
    std::memcpy(b.out.get(), b.in.get(), bytes);
    benchmark::ClobberMemory();
  }
  SetBytes(state, bytes);
}

// A copy with non-temporal stores (AVX2), walking four 4 KiB pages at a time
// with the source prefetched like the kernel's large-job loop (and glibc's
// large memcpy): the best a streaming kernel can do. Buffers are 64-byte
// aligned.
__attribute__((target("avx2"))) void StreamCopy(uint8_t* dst,
                                                const uint8_t* src,
                                                size_t bytes) {
  constexpr size_t kPage = 4096;
  constexpr size_t kPages = 4;
  size_t i = 0;
  for (; i + kPages * kPage <= bytes; i += kPages * kPage) {
    for (size_t j = i; j < i + kPage; j += 64) {
      for (size_t p = 0; p < kPages; ++p) {
        const size_t k = j + p * kPage;
        _mm_prefetch(reinterpret_cast<const char*>(src + k) + 512, _MM_HINT_T0);
        const __m256i a =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(src + k));
        const __m256i b =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(src + k + 32));
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + k), a);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + k + 32), b);
      }
    }
  }
  for (; i + 32 <= bytes; i += 32) {
    _mm256_stream_si256(
        reinterpret_cast<__m256i*>(dst + i),
        _mm256_load_si256(reinterpret_cast<const __m256i*>(src + i)));
  }
  _mm_sfence();
  std::memcpy(dst + i, src + i, bytes - i);
}

void BM_StreamCopy(benchmark::State& state, size_t bytes) {
  Buffers& b = Shared();
  for (auto _ : state) {
    StreamCopy(b.out.get(), b.in.get(), bytes);
    benchmark::ClobberMemory();
  }
  SetBytes(state, bytes);
}

void BM_Relu(benchmark::State& state, DType dtype, Isa isa, int threads,
             size_t n, bool in_place) {
  Buffers& b = Shared();
  Kernel kernel(KernelOptions{threads, isa});
  const Params params;  // plain ReLU, like oneDNN's
  void* out = in_place ? b.in.get() : b.out.get();
  for (auto _ : state) {
    kernel.Apply(dtype, params, b.in.get(), out, n);
    benchmark::ClobberMemory();
  }
  SetBytes(state, n * ElementSize(dtype));
}

dnnl::memory::data_type DnnlType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return dnnl::memory::data_type::f32;
    case DType::kFloat16:
      return dnnl::memory::data_type::f16;
    case DType::kBFloat16:
      return dnnl::memory::data_type::bf16;
    case DType::kFloat64:
      break;
  }
  return dnnl::memory::data_type::undef;
}

struct Dnnl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Dnnl& SharedDnnl() {
  static Dnnl dnnl;
  return dnnl;
}

// oneDNN's eltwise ReLU primitive for `dtype`, or nullopt when this oneDNN
// build has no CPU implementation for it.
std::optional<dnnl::eltwise_forward::primitive_desc> DnnlRelu(DType dtype,
                                                              size_t n) {
  try {
    const dnnl::memory::desc md({static_cast<dnnl::memory::dim>(n)},
                                DnnlType(dtype), dnnl::memory::format_tag::a);
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference,
                                           dnnl::algorithm::eltwise_relu, md,
                                           0.0f, 0.0f);
    return dnnl::eltwise_forward::primitive_desc(desc, SharedDnnl().engine);
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
}

void BM_Dnnl(benchmark::State& state, DType dtype, int threads, size_t n) {
  omp_set_num_threads(threads);
  Buffers& b = Shared();
  Dnnl& d = SharedDnnl();
  const auto pd = DnnlRelu(dtype, n);
  const dnnl::eltwise_forward relu(*pd);
  dnnl::memory src(pd->src_desc(), d.engine, b.in.get());
  dnnl::memory dst(pd->dst_desc(), d.engine, b.out.get());
  for (auto _ : state) {
    relu.execute(d.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    d.stream.wait();
    benchmark::ClobberMemory();
  }
  SetBytes(state, n * ElementSize(dtype));
}

void RegisterAll() {
  for (DType dtype : kDTypes) {
    const std::string dt = DTypeName(dtype);
    for (size_t n : kSizes) {
      const size_t bytes = n * ElementSize(dtype);
      const std::string size = std::to_string(n);
      benchmark::RegisterBenchmark(("copy/" + dt + "/memcpy/1/" + size).c_str(),
                                   BM_Memcpy, bytes)
          ->UseRealTime();
      if (IsaSupported(Isa::kAvx2)) {
        benchmark::RegisterBenchmark(
            ("copy/" + dt + "/stream/1/" + size).c_str(), BM_StreamCopy, bytes)
            ->UseRealTime();
      }
      for (int threads : {1, 2}) {
        const std::string t = std::to_string(threads);
        for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
          if (!IsaSupported(isa)) continue;
          const std::string v = IsaName(isa);
          benchmark::RegisterBenchmark(
              ("relu/" + dt + "/" + v + "/" + t + "/" + size).c_str(), BM_Relu,
              dtype, isa, threads, n, false)
              ->UseRealTime();
          benchmark::RegisterBenchmark(
              ("relu_inplace/" + dt + "/" + v + "/" + t + "/" + size).c_str(),
              BM_Relu, dtype, isa, threads, n, true)
              ->UseRealTime();
        }
        if (DnnlRelu(dtype, n).has_value()) {
          benchmark::RegisterBenchmark(
              ("onednn_relu/" + dt + "/onednn/" + t + "/" + size).c_str(),
              BM_Dnnl, dtype, threads, n)
              ->UseRealTime();
        }
      }
    }
  }
}

}  // namespace
}  // namespace relu::kernel

int main(int argc, char** argv) {
  // oneDNN threads with OpenMP: its idle threads must sleep, not spin, while
  // our benchmarks run (passive wait, no block time). Set before first use.
  setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv("KMP_BLOCKTIME", "0", 1);
  setenv("GOMP_SPINCOUNT", "0", 1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  relu::kernel::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
