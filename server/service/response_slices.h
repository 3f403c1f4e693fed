// A response written by the kernel where gRPC sends it from: the message's
// bytes up to the tensor data, then the data. PlanInPlace(): the data goes
// out in the request's own received slices, the kernel writing each element
// over the one it read (no allocation, no fresh pages). Allocate() and
// Plan(): in slices of its own, for data the parse had to copy. Tensor bytes
// are touched once per call, by the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/types.h"

namespace relu::service {

class ResponseSlices {
 public:
  // The data goes out in slices of this size, as protobuf's serializer
  // writes large messages for gRPC: allocations of this size are reused
  // from the heap, where one allocation of a whole 64 MiB tensor would be
  // fresh pages on every call. A multiple of every element size.
  static constexpr size_t kDataSliceBytes = size_t{1} << 20;

  // Lays out the response: `prefix`, then room for `data_bytes` in slices
  // that start 64-byte aligned. Call once.
  void Allocate(const std::string& prefix, size_t data_bytes);

  // Sets `task`'s work: `elements` of `dtype` read from `data` (the
  // request's tensor data, in the pieces it was received in; whole elements
  // in all) and written into the room Allocate() made. One run in and out
  // is `task->segment`; anything else is `task->pieces`, an element split
  // across received pieces joined first. `data` must stay valid until the
  // kernel has run.
  void Plan(kernel::DType dtype, const kernel::Params& params,
            absl::Span<const absl::string_view> data, size_t elements,
            batching::BatchTask* task);

  // Lays out the response in place of the request: `prefix`, then the
  // request's own data where gRPC received it, the kernel writing each
  // element over the one it reads. `data` are the tensor data's pieces, as
  // for Plan(); each must lie inside one of `received` (the request's
  // slices, which must outlive this object), else this returns false and
  // lays out nothing (call Allocate() and Plan()). An element split across
  // pieces is computed in a buffer of its own and written back by
  // ToByteBuffer(). Call once, instead of Allocate() and Plan().
  bool PlanInPlace(const std::string& prefix,
                   absl::Span<const grpc::Slice> received, kernel::DType dtype,
                   const kernel::Params& params,
                   absl::Span<const absl::string_view> data, size_t elements,
                   batching::BatchTask* task);

  // The response's bytes, once the kernel has written them.
  grpc::ByteBuffer ToByteBuffer();

 private:
  // Allocates a slice of `size` bytes; returns where it starts.
  char* AddDataSlice(size_t size);
  // Where the data's byte `offset` goes.
  char* DataAt(size_t offset) const {
    return data_[offset / kDataSliceBytes] + offset % kDataSliceBytes;
  }

  // In place: where the data goes out, as ranges of the received slices
  // (made into slices by ToByteBuffer(), after the kernel has written them:
  // a small slice holds its bytes inline, and a copy of it taken earlier
  // would miss what the kernel wrote).
  struct ReceivedRange {
    const grpc::Slice* slice;
    size_t begin, end;
  };
  // In place: where a split element's bytes go back, from straddled_.
  struct StraddledPart {
    size_t element;  // index in straddled_
    size_t offset;   // of the part in the element
    char* to;
    size_t size;
  };

  // Inline capacities fit a small call: no allocation for these.
  absl::InlinedVector<grpc::Slice, 2> slices_;
  absl::InlinedVector<ReceivedRange, 2> ranges_;
  std::vector<StraddledPart> straddled_parts_;
  absl::InlinedVector<char*, 1> data_;  // each slice's share of the data
  std::vector<uint64_t> straddled_;     // elements split across pieces
};

}  // namespace relu::service
