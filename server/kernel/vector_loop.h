// Internal to the kernel library: the strip-mined loop shared by the SIMD
// paths. Included only by the SIMD translation units, each instantiating it
// with its own internal-linkage Io and Ops types.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "server/kernel/plan.h"

namespace relu::kernel::internal {

// Runs one plan over `n` elements with full vectors of kVectorBytes and one
// masked step for the remainder; `in` and `out` may start at any byte. `Io`
// supplies Storage, Raw (one vector of storage elements), Load/Store/Stream
// (full vector; Load and Store at any address), LoadPartial/StorePartial
// (first `count` elements only, never touching the others) and
// Compute<branch>(ops, raw). With `large` (a job far bigger than the caches)
// the loop walks four pages at a time; out of place to an element-aligned
// output, the output is then first brought to vector alignment with one
// masked step and written with non-temporal stores.
template <class Io, class Ops, size_t kVectorBytes>
struct VectorLoop {
  using T = typename Io::Storage;
  using Raw = typename Io::Raw;
  static constexpr size_t kLanes = kVectorBytes / sizeof(T);

  const Plan& plan;
  const T* in;
  T* out;
  size_t n;
  bool large;

  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  void operator()() const {
    Loop<Branch<kLeaky, kSlope, kPositive, kClip>>();
  }

 private:
  // One vector of the branch, always inlined into the loops.
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  struct Branch {
    static RELU_KERNEL_ALWAYS_INLINE Raw Step(const Ops& ops, Raw r) {
      return Io::template Compute<kLeaky, kSlope, kPositive, kClip>(ops, r);
    }
  };

  template <class B>
  void Loop() const {
    // Locals, not members: vector stores may alias anything, so members
    // would be reloaded after every store.
    const T* const in = this->in;
    T* const out = this->out;
    const size_t n = this->n;
    const Ops ops(plan);
    size_t i = 0;
    if (large) {
      // Non-temporal stores need vector alignment, which the head step
      // below reaches only from an element-aligned output.
      const bool stream = static_cast<const void*>(in) != out &&
                          reinterpret_cast<uintptr_t>(out) % sizeof(T) == 0;
      if (stream) {
        const size_t misalign = reinterpret_cast<uintptr_t>(out) % kVectorBytes;
        if (misalign != 0) {
          const size_t head =
              std::min(n, (kVectorBytes - misalign) / sizeof(T));
          Io::StorePartial(out, head, B::Step(ops, Io::LoadPartial(in, head)));
          i = head;
        }
      }
      // Four 4 KiB pages at a time, one vector of each in turn, with the
      // input prefetched a few lines ahead: several DRAM pages are in
      // flight at once, which one sequential stream does not get from this
      // memory system (glibc's large memcpy does the same).
      constexpr size_t kPageElements = 4096 / sizeof(T);
      constexpr size_t kPages = 4;
      for (; i + kPages * kPageElements <= n; i += kPages * kPageElements) {
        for (size_t j = i; j < i + kPageElements; j += kLanes) {
          for (size_t p = 0; p < kPages; ++p) {
            const size_t k = j + p * kPageElements;
            _mm_prefetch(reinterpret_cast<const char*>(in + k) + 512,
                         _MM_HINT_T0);
            const Raw y = B::Step(ops, Io::Load(in + k));
            if (stream) {
              Io::Stream(out + k, y);
            } else {
              Io::Store(out + k, y);
            }
          }
        }
      }
      for (; i + kLanes <= n; i += kLanes) {
        const Raw y = B::Step(ops, Io::Load(in + i));
        if (stream) {
          Io::Stream(out + i, y);
        } else {
          Io::Store(out + i, y);
        }
      }
      if (stream) _mm_sfence();
    } else {
      // Four independent vectors per iteration keep the load and store
      // ports busy on cache-resident data.
      for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
        const Raw a = Io::Load(in + i);
        const Raw b = Io::Load(in + i + kLanes);
        const Raw c = Io::Load(in + i + 2 * kLanes);
        const Raw d = Io::Load(in + i + 3 * kLanes);
        Io::Store(out + i, B::Step(ops, a));
        Io::Store(out + i + kLanes, B::Step(ops, b));
        Io::Store(out + i + 2 * kLanes, B::Step(ops, c));
        Io::Store(out + i + 3 * kLanes, B::Step(ops, d));
      }
      for (; i + kLanes <= n; i += kLanes) {
        Io::Store(out + i, B::Step(ops, Io::Load(in + i)));
      }
    }
    if (i < n) {
      Io::StorePartial(out + i, n - i,
                       B::Step(ops, Io::LoadPartial(in + i, n - i)));
    }
  }
};

}  // namespace relu::kernel::internal
