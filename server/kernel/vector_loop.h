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
// masked step for the remainder. `Io` supplies Storage, Raw (one vector of
// storage elements), Load/Store/Stream (full vector), LoadPartial/
// StorePartial (first `count` elements only, never touching the others) and
// Compute<branch>(ops, raw). With `stream` (and out of place) the output is
// first brought to vector alignment with one masked step, then written with
// non-temporal stores.
template <class Io, class Ops, size_t kVectorBytes>
struct VectorLoop {
  using T = typename Io::Storage;
  using Raw = typename Io::Raw;
  static constexpr size_t kLanes = kVectorBytes / sizeof(T);

  const Plan& plan;
  const T* in;
  T* out;
  size_t n;
  bool stream;

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
    if (stream && static_cast<const void*>(in) != out) {
      const size_t misalign = reinterpret_cast<uintptr_t>(out) % kVectorBytes;
      if (misalign != 0) {
        const size_t head = std::min(n, (kVectorBytes - misalign) / sizeof(T));
        Io::StorePartial(out, head, B::Step(ops, Io::LoadPartial(in, head)));
        i = head;
      }
      for (; i + kLanes <= n; i += kLanes) {
        Io::Stream(out + i, B::Step(ops, Io::Load(in + i)));
      }
      _mm_sfence();
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
