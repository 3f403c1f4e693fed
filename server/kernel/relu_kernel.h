// The Keras-exact ReLU kernel: tf.keras.layers.ReLU(max_value, negative_slope,
// threshold) over float32, float64, float16 and bfloat16 tensors, bit for bit
// as specified in tests/data (keras-relu.md, relu_golden_edges.json).
//
// Three code paths (portable scalar, AVX2, AVX-512): the best one this CPU
// supports, chosen once from CPUID, unless KernelOptions::isa names one. The
// library reads no flags and no environment.
// Large jobs are split over a oneTBB task_arena; small ones run inline on the
// caller's thread. This library depends on oneTBB only (and on
// common/float_digits.h, which has no dependencies): no gRPC, no protobuf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "server/kernel/types.h"

namespace relu::kernel {

// Checks `params` the way the Keras constructor does (max_value, then
// negative_slope, then threshold; NaN refused just before each negative
// check). Returns an empty string when valid, else the message of the first
// failure, e.g. "max_value of a ReLU layer cannot be a negative value.
// Received: max_value=-1.0". Every other entry point requires valid params.
std::string ValidateParams(const Params& params);

// Formats `value` as Python's repr(float) does: "-1.0", "1e-05", "nan", "-inf".
std::string PythonFloatRepr(double value);

enum class Isa { kScalar, kAvx2, kAvx512 };

// "scalar", "avx2", "avx512".
const char* IsaName(Isa isa);
// Parses an IsaName; nullopt for anything else.
std::optional<Isa> ParseIsa(const std::string& name);
// Whether this CPU (and OS) can run `isa`.
bool IsaSupported(Isa isa);
// The path every Kernel uses unless KernelOptions::isa says otherwise: the
// best one IsaSupported(). Computed once; thread-safe.
Isa DefaultIsa();

// Runs `n` elements of `dtype` from `in` to `out` on the calling thread with
// the given path. `in == out` (in place) is allowed; other overlap is not.
// Neither needs any alignment: a tensor read, and in place written, where the
// network put it starts at any byte. Requires IsaSupported(isa) and valid
// params. Thread-safe.
void ApplyOnThread(Isa isa, DType dtype, const Params& params, const void* in,
                   void* out, size_t n);

struct KernelOptions {
  int threads = 0;         // size of the TBB arena; 0 = one per core
  std::optional<Isa> isa;  // nullopt = DefaultIsa(); else IsaSupported()
  // Jobs (a tensor, or a batch's total) smaller than this run on the calling
  // thread alone; larger ones are split across the arena.
  size_t parallel_min_bytes = size_t{1} << 20;
};

// A kernel bound to one code path and one task_arena. Apply and ApplyBatch
// may be called from several threads at once; each call returns when all of
// its elements are written.
class Kernel {
 public:
  explicit Kernel(const KernelOptions& options = {});
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // One tensor.
  void Apply(DType dtype, const Params& params, const void* in, void* out,
             size_t n);
  // All segments as one parallel job: a segment may be split across threads
  // and small segments share a thread. Segments must not overlap each other.
  void ApplyBatch(const Segment* segments, size_t count);

  Isa isa() const;
  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace relu::kernel
