// A response written by the kernel where gRPC sends it from: the message's
// bytes up to the tensor data, then the data in slices the kernel writes
// (reading the request's data where gRPC received it). Tensor bytes are
// touched once per call, by the kernel.
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

  // The response's bytes, once the kernel has written them.
  grpc::ByteBuffer ToByteBuffer() {
    return grpc::ByteBuffer(slices_.data(), slices_.size());
  }

 private:
  // Allocates a slice of `size` bytes; returns where it starts.
  char* AddDataSlice(size_t size);
  // Where the data's byte `offset` goes.
  char* DataAt(size_t offset) const {
    return data_[offset / kDataSliceBytes] + offset % kDataSliceBytes;
  }

  // Inline capacities fit a small call: no allocation for these.
  absl::InlinedVector<grpc::Slice, 2> slices_;
  absl::InlinedVector<char*, 1> data_;  // each slice's share of the data
  std::vector<uint64_t> straddled_;     // elements split across pieces
};

}  // namespace relu::service
