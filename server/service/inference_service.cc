#include "server/service/inference_service.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "server/service/request_wire.h"
#include "server/service/response_slices.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

// Wire numbers of ModelInferRequest.raw_input_contents and
// ModelInferResponse.raw_output_contents.
constexpr uint32_t kRawInputContentsField = 7;
constexpr char kRawOutputContentsTag = (6 << 3) | 2;

// One ModelInfer call. With raw_input_contents (the common case), in one
// pass like ApplyReLU: the kernel reads the data where gRPC received it and
// writes the response's data slices (ResponseSlices). Otherwise (typed
// contents, a layout left to protobuf): the checked request's input is
// moved into the response, where the kernel computes in place, and the
// response is serialized.
class InferCall final : public GrpcCall {
 public:
  // `request` is the call's own (from TrackedAllocator): when its data is
  // parsed out, it is cleared, so its bytes leave gRPC's quota early.
  InferCall(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* request,
            grpc::ByteBuffer* response, CallTracker::Call* tracked,
            size_t max_message_bytes)
      : GrpcCall(metrics::Method::kModelInfer, context, reactor, tracked,
                 max_message_bytes),
        request_bytes_(request),
        response_bytes_(response),
        has_message_(request->Valid()) {}

  // A stream reset before its message arrived reaches the handler with no
  // message (gRPC 1.51): cancelled.
  bool IsCancelled() const override {
    return !has_message_ || GrpcCall::IsCancelled();
  }
  absl::Status Decode() override;
  // Serializes the response (once, as gRPC would) and answers.
  void Respond(const absl::Status& status) override;

 private:
  // Counts the request's shapes on the wire, then parses it: raw data split
  // off (split_), or the whole message.
  absl::Status Parse();
  // Decode()'s response, one pass or in place.
  void LayOutOnePass(const ValidatedInfer& valid);
  void LayOutInPlace(const ValidatedInfer& valid);
  // The response's fields other than its data.
  void SetResponseFields(const ValidatedInfer& valid,
                         ModelInferResponse::InferOutputTensor** output);

  grpc::ByteBuffer* const request_bytes_;
  grpc::ByteBuffer* const response_bytes_;
  const bool has_message_;  // request_bytes_ is cleared once parsed
  ModelInferRequest request_;
  ModelInferResponse response_;
  // The one-pass form: the received slices (split_.values point into them),
  // and the response's slices.
  bool one_pass_ = false;
  std::vector<grpc::Slice> received_;
  SplitMessage split_;
  ResponseSlices output_;
};

absl::Status InferCall::Parse() {
  grpc::ByteBuffer inflated;
  absl::StatusOr<const grpc::ByteBuffer*> message =
      Received(request_bytes_, &inflated);
  if (!message.ok()) return message.status();
  // A compressed request's bytes are dropped for the inflated ones.
  if (*message == &inflated) request_bytes_->Swap(&inflated);
  if (!request_bytes_->Dump(&received_).ok()) {
    return absl::InternalError("cannot read the request's bytes");
  }
  absl::InlinedVector<absl::string_view, 4> chunks;
  size_t received_bytes = 0;
  for (const grpc::Slice& slice : received_) {
    chunks.emplace_back(reinterpret_cast<const char*>(slice.begin()),
                        slice.size());
    received_bytes += slice.size();
  }
  // ModelInferRequest.inputs (5), InferInputTensor.shape (3).
  if (const size_t rank = CountShapeDimensions(chunks, 5, 3);
      rank > kMaxTensorRank) {
    return TooManyDimensions("inputs[0].shape", rank);
  }
  const bool split = SplitBytesField(chunks, kRawInputContentsField, &split_);
  const bool parsed = split ? request_.ParseFromString(split_.fields) : [&] {
    grpc::ProtoBufferReader reader(request_bytes_);
    return request_.ParseFromZeroCopyStream(&reader);
  }();
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("request is not a valid inference.ModelInferRequest: "
                     "protobuf cannot parse its ",
                     received_bytes, " bytes"));
  }
  one_pass_ = split && !split_.values.empty();
  if (!one_pass_) {
    // Everything is in request_ now.
    split_ = SplitMessage();
    received_.clear();
    request_bytes_->Clear();
  }
  return absl::OkStatus();
}

void InferCall::Respond(const absl::Status& status) {
  if (status.ok()) {
    if (one_pass_) {
      *response_bytes_ = output_.ToByteBuffer();
    } else {
      bool own_buffer = false;
      grpc::GenericSerialize<grpc::ProtoBufferWriter, ModelInferResponse>(
          response_, response_bytes_, &own_buffer);
    }
  }
  GrpcCall::Respond(status);
}

absl::Status InferCall::Decode() {
  if (absl::Status parsed = Parse(); !parsed.ok()) return parsed;
  absl::StatusOr<ValidatedInfer> valid = ValidateInferRequest(
      request_, nullptr,
      one_pass_ ? std::optional<size_t>(split_.sizes[0]) : std::nullopt);
  if (!valid.ok()) return valid.status();
  // The response's data: written by the kernel (one pass), or serialized
  // by gRPC into a copy of its own.
  if (absl::Status s = ReserveResponse(valid->bytes); !s.ok()) return s;
  if (one_pass_) {
    LayOutOnePass(*valid);
  } else {
    LayOutInPlace(*valid);
  }
  bytes = valid->bytes;
  return absl::OkStatus();
}

void InferCall::SetResponseFields(
    const ValidatedInfer& valid,
    ModelInferResponse::InferOutputTensor** output) {
  response_.set_model_name(kOipModelName);
  response_.set_model_version(kOipModelVersion);
  response_.set_id(request_.id());
  *output = response_.add_outputs();
  (*output)->set_name(kOipOutputName);
  (*output)->set_datatype(OipDatatype(valid.dtype));
  (*output)->mutable_shape()->Swap(request_.mutable_inputs(0)->mutable_shape());
}

void InferCall::LayOutOnePass(const ValidatedInfer& valid) {
  ModelInferResponse::InferOutputTensor* output = nullptr;
  SetResponseFields(valid, &output);
  // raw_output_contents is the last field: the message's bytes up to the
  // data are the other fields', then its tag and length (protobuf's own
  // serialization, which writes fields in number order).
  std::string prefix = response_.SerializeAsString();
  prefix.push_back(kRawOutputContentsTag);
  uint8_t length[10];
  prefix.append(reinterpret_cast<const char*>(length),
                google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(
                    valid.bytes, length) -
                    length);
  // The answer is written over raw_input_contents where gRPC received it.
  if (!output_.PlanInPlace(prefix, received_, valid.dtype, valid.params,
                           split_.values[0], valid.elements, this)) {
    output_.Allocate(prefix, valid.bytes);
    output_.Plan(valid.dtype, valid.params, split_.values[0], valid.elements,
                 this);
  }
}

void InferCall::LayOutInPlace(const ValidatedInfer& valid) {
  // Move the input into the response; the kernel computes there in place.
  ModelInferRequest::InferInputTensor* input = request_.mutable_inputs(0);
  ModelInferResponse::InferOutputTensor* output = nullptr;
  SetResponseFields(valid, &output);
  void* data = nullptr;
  if (valid.raw) {
    std::string* raw = response_.add_raw_output_contents();
    raw->swap(*request_.mutable_raw_input_contents(0));
    data = raw->data();
  } else if (valid.dtype == kernel::DType::kFloat32) {
    auto* values = output->mutable_contents()->mutable_fp32_contents();
    values->Swap(input->mutable_contents()->mutable_fp32_contents());
    data = values->mutable_data();
  } else if (valid.dtype == kernel::DType::kFloat64) {
    auto* values = output->mutable_contents()->mutable_fp64_contents();
    values->Swap(input->mutable_contents()->mutable_fp64_contents());
    data = values->mutable_data();
  } else {
    // FP16 / BF16 without raw_input_contents: valid only when empty.
    response_.add_raw_output_contents();
  }
  segment = {valid.dtype, valid.params, data, data, valid.elements};
}

}  // namespace

InferenceServiceImpl::InferenceServiceImpl(Admission* admission,
                                           CallTracker* calls,
                                           std::string version,
                                           size_t max_message_bytes)
    : admission_(admission),
      calls_(calls),
      version_(std::move(version)),
      max_message_bytes_(max_message_bytes) {
  // What the generated SetMessageAllocatorFor_ModelInfer does for the
  // protobuf-typed method, for the raw one (ModelInfer is method 5).
  static_cast<grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer,
                                                   grpc::ByteBuffer>*>(
      GetHandler(5))
      ->SetMessageAllocator(&allocator_);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerLive(
    grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  response->set_live(true);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerReady(
    grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  response->set_ready(!calls_->draining());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = CheckModel(request->name(), request->version());
  if (status.ok()) response->set_ready(!calls_->draining());
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name(kOipServerName);
  response->set_version(version_);
  // No protocol extensions (model repository, statistics, ...) are served.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = CheckModel(request->name(), request->version());
  if (status.ok()) {
    response->set_name(kOipModelName);
    response->add_versions(kOipModelVersion);
    response->set_platform(kOipPlatform);
    // The protocol has one datatype per tensor: FP32 is listed; FP64, FP16
    // and BF16 are accepted too (and answered in kind). The model is
    // elementwise: any shape (any rank) is accepted, -1 says "any size".
    for (const char* name : {kOipInputName, kOipOutputName}) {
      auto* tensor = name == kOipInputName ? response->add_inputs()
                                           : response->add_outputs();
      tensor->set_name(name);
      tensor->set_datatype("FP32");
      tensor->add_shape(-1);
    }
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ModelInfer(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer*,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The allocator above made the messages, so the request is ours to change.
  admission_->Admit(std::make_unique<InferCall>(
      context, reactor, decltype(allocator_)::MutableRequest(context), response,
      decltype(allocator_)::TrackedCall(context), max_message_bytes_));
  return reactor;
}

}  // namespace relu::service
