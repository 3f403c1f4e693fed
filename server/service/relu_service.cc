#include "server/service/relu_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/service/request_wire.h"
#include "server/service/response_slices.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

// One ApplyReLU call from its parse to its answer. It holds the received
// slices, where the kernel reads tensor.data and writes the answer's data
// over it (the response's slices are views of them after the prefix);
// `pieces` are the runs of whole elements.
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
    if (status.ok()) *response_ = output_.ToByteBuffer();
    GrpcCall::Respond(status);
  }

 private:
  const grpc::ByteBuffer* const request_bytes_;
  grpc::ByteBuffer inflated_;  // a compressed request's bytes
  grpc::ByteBuffer* const response_;
  // The request's bytes: one slice (the common case for small requests), or
  // several.
  grpc::Slice received_one_;
  std::vector<grpc::Slice> received_;
  WireRequest request_;
  ResponseSlices output_;
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
  std::string prefix =
      EncodeResponsePrefix(tensor.dtype(), tensor.shape(), valid->bytes);
  // The answer is written over the request's data where gRPC received it;
  // when the parse had to copy the data, into slices of its own.
  const absl::Span<const grpc::Slice> received =
      received_.empty() ? absl::MakeConstSpan(&received_one_, 1)
                        : absl::MakeConstSpan(received_);
  if (!output_.PlanInPlace(prefix, received, valid->dtype, valid->params,
                           request_.data, valid->elements, this)) {
    output_.Allocate(prefix, valid->bytes);
    output_.Plan(valid->dtype, valid->params, request_.data, valid->elements,
                 this);
  }
  bytes = valid->bytes;
  return absl::OkStatus();
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
