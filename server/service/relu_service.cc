#include "server/service/relu_service.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/service/request_wire.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

// The response goes out as a slice with the message's header followed by the
// data in slices of this size, as protobuf's serializer writes large messages
// for gRPC: allocations of this size are reused from the heap, where one
// allocation of a whole 64 MiB tensor would be fresh pages on every call. A
// multiple of every element size.
constexpr size_t kOutputSliceBytes = size_t{1} << 20;

// One ApplyReLU call from its parse to its answer. It holds the received
// slices, which the kernel reads tensor.data from, and the response's slices,
// which the kernel writes; `pieces` pair them up.
class ApplyCall final : public GrpcCall {
 public:
  ApplyCall(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, const grpc::ByteBuffer* request,
            grpc::ByteBuffer* response, CallTracker::Call* tracked,
            size_t max_message_bytes)
      : GrpcCall(metrics::Method::kApplyReLU, context, reactor, tracked,
                 max_message_bytes),
        request_bytes_(request),
        response_(response) {}

  // A stream reset before its message arrived still reaches the handler in
  // gRPC 1.51, with no message: cancelled.
  bool IsCancelled() const override {
    return !request_bytes_->Valid() || GrpcCall::IsCancelled();
  }

  // Reads and checks the request and lays out the response. On OK, `segment`
  // is the kernel's work, or, when the data spans several slices, describes
  // the whole tensor (its pointers unused) and `pieces` are the work.
  absl::Status Decode() override;

  void Respond(const absl::Status& status) override {
    if (status.ok()) {
      *response_ = grpc::ByteBuffer(output_.data(), output_.size());
    }
    GrpcCall::Respond(status);
  }

 private:
  // Allocates a response slice of `size` bytes; returns where it starts.
  char* AddOutputSlice(size_t size);
  // The response slices: `prefix`, then `data_bytes` of room in slices that
  // start 64-byte aligned.
  void AllocateOutput(const std::string& prefix, size_t data_bytes);
  // Where tensor.data's byte `offset` goes in the response.
  char* OutputAt(size_t offset) const {
    return output_data_[offset / kOutputSliceBytes] +
           offset % kOutputSliceBytes;
  }
  // Fills `pieces`: runs of whole elements that lie in one received slice
  // and one response slice. An element split across received slices is
  // joined in `straddled_` first.
  void PlanPieces(kernel::DType dtype, const kernel::Params& params);

  const grpc::ByteBuffer* const request_bytes_;
  grpc::ByteBuffer inflated_;  // a compressed request's bytes
  grpc::ByteBuffer* const response_;
  // The request's bytes: one slice (the common case for small requests), or
  // several.
  grpc::Slice received_one_;
  std::vector<grpc::Slice> received_;
  WireRequest request_;
  // Inline capacities fit a small call: no allocation for these.
  absl::InlinedVector<grpc::Slice, 2> output_;
  absl::InlinedVector<char*, 1> output_data_;  // each slice's share of data
  std::vector<uint64_t> straddled_;
};

absl::Status ApplyCall::Decode() {
  absl::StatusOr<const grpc::ByteBuffer*> message =
      Received(request_bytes_, &inflated_);
  if (!message.ok()) return message.status();
  if (!(*message)->TrySingleSlice(&received_one_).ok() &&
      !(*message)->Dump(&received_).ok()) {
    return absl::InternalError("cannot read the request's bytes");
  }
  absl::InlinedVector<absl::string_view, 4> chunks;
  size_t received_bytes = 0;
  auto add_chunk = [&](const grpc::Slice& slice) {
    chunks.emplace_back(reinterpret_cast<const char*>(slice.begin()),
                        slice.size());
    received_bytes += slice.size();
  };
  if (received_.empty()) {
    add_chunk(received_one_);
  } else {
    for (const grpc::Slice& slice : received_) add_chunk(slice);
  }
  if (const size_t rank = CountShapeDimensions(chunks); rank > kMaxTensorRank) {
    return TooManyDimensions("tensor.shape", rank);
  }
  if (!ParseApplyReLURequest(chunks, &request_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("request is not a valid relu.v1.ApplyReLURequest: "
                     "protobuf cannot parse its ",
                     received_bytes, " bytes"));
  }
  absl::StatusOr<ValidatedRequest> valid =
      ValidateRequest(request_.fields, request_.data_bytes);
  if (!valid.ok()) return valid.status();
  if (absl::Status s = ReserveResponse(valid->bytes); !s.ok()) return s;

  const v1::Tensor& tensor = request_.fields.tensor();
  AllocateOutput(
      EncodeResponsePrefix(tensor.dtype(), tensor.shape(), valid->bytes),
      valid->bytes);
  if (request_.data.size() == 1 && output_data_.size() == 1) {
    // One run, in and out: no pieces.
    segment = {valid->dtype, valid->params, request_.data[0].data(),
               output_data_[0], valid->elements};
  } else {
    PlanPieces(valid->dtype, valid->params);
    segment = {valid->dtype, valid->params, nullptr, nullptr, valid->elements};
  }
  bytes = valid->bytes;
  return absl::OkStatus();
}

char* ApplyCall::AddOutputSlice(size_t size) {
  // Our own allocation, aligned for the kernel's (streaming) vector stores;
  // gRPC frees it with the slice.
  constexpr size_t kAlign = 64;
  const size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
  void* start = std::aligned_alloc(kAlign, std::max(rounded, kAlign));
  if (start == nullptr) throw std::bad_alloc();
  output_.emplace_back(start, size, [](void* p, size_t) { std::free(p); });
  return static_cast<char*>(start);
}

void ApplyCall::AllocateOutput(const std::string& prefix, size_t data_bytes) {
  output_.emplace_back(prefix);
  for (size_t done = 0; done < data_bytes; done += kOutputSliceBytes) {
    output_data_.push_back(
        AddOutputSlice(std::min(kOutputSliceBytes, data_bytes - done)));
  }
}

void ApplyCall::PlanPieces(kernel::DType dtype, const kernel::Params& params) {
  const size_t element_size = kernel::ElementSize(dtype);
  size_t out_offset = 0;
  // Adds pieces for `size` bytes (whole elements) read from `in`, cut where
  // a response slice ends (slice sizes are multiples of the element size).
  auto add = [&](const char* in, size_t size) {
    while (size > 0) {
      const size_t room = kOutputSliceBytes - out_offset % kOutputSliceBytes;
      const size_t take = std::min(room, size);
      pieces.push_back(
          {dtype, params, in, OutputAt(out_offset), take / element_size});
      in += take;
      size -= take;
      out_offset += take;
    }
  };
  // At most one split element per received slice boundary: no reallocation
  // below.
  if (request_.data.size() > 1) straddled_.reserve(request_.data.size() - 1);
  size_t joined = 0;  // bytes of straddled_.back() gathered so far
  for (absl::string_view chunk : request_.data) {
    if (joined > 0) {
      const size_t take = std::min(element_size - joined, chunk.size());
      std::memcpy(reinterpret_cast<char*>(&straddled_.back()) + joined,
                  chunk.data(), take);
      joined += take;
      chunk.remove_prefix(take);
      if (joined < element_size) continue;
      add(reinterpret_cast<const char*>(&straddled_.back()), element_size);
      joined = 0;
    }
    const size_t whole = chunk.size() / element_size * element_size;
    add(chunk.data(), whole);
    if (whole < chunk.size()) {
      straddled_.push_back(0);
      joined = chunk.size() - whole;
      std::memcpy(&straddled_.back(), chunk.data() + whole, joined);
    }
  }
}

}  // namespace

ReluServiceImpl::ReluServiceImpl(Admission* admission, CallTracker* calls,
                                 size_t max_message_bytes)
    : admission_(admission),
      calls_(calls),
      max_message_bytes_(max_message_bytes) {
  // What the generated SetMessageAllocatorFor_ApplyReLU does for the
  // protobuf-typed method, for the raw one.
  static_cast<grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer,
                                                   grpc::ByteBuffer>*>(
      GetHandler(0))
      ->SetMessageAllocator(&allocator_);
}

grpc::ServerUnaryReactor* ReluServiceImpl::ApplyReLU(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admission_->Admit(std::make_unique<ApplyCall>(
      context, reactor, request, response,
      decltype(allocator_)::TrackedCall(context), max_message_bytes_));
  return reactor;
}

}  // namespace relu::service
