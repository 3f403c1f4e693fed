#include "server/service/inference_service.h"

#include <memory>
#include <string>
#include <utility>

namespace relu::service {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

// One ModelInfer call: the checked request's input moved into the response,
// where the kernel computes in place.
class InferCall final : public GrpcCall {
 public:
  InferCall(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, ModelInferRequest* request,
            ModelInferResponse* response, CallTracker::Call* tracked)
      : GrpcCall(metrics::Method::kModelInfer, context, reactor, tracked),
        request_(request),
        response_(response) {}

  absl::Status Decode() override;

 private:
  ModelInferRequest* const request_;
  ModelInferResponse* const response_;
};

absl::Status InferCall::Decode() {
  absl::StatusOr<ValidatedInfer> valid = ValidateInferRequest(*request_);
  if (!valid.ok()) return valid.status();
  // gRPC serializes the response into a copy of its own.
  if (absl::Status s = ReserveResponse(valid->bytes); !s.ok()) return s;

  // Move the input into the response; the kernel computes there in place.
  ModelInferRequest::InferInputTensor* input = request_->mutable_inputs(0);
  response_->set_model_name(kOipModelName);
  response_->set_model_version(kOipModelVersion);
  response_->set_id(request_->id());
  ModelInferResponse::InferOutputTensor* output = response_->add_outputs();
  output->set_name(kOipOutputName);
  output->set_datatype(OipDatatype(valid->dtype));
  output->mutable_shape()->Swap(input->mutable_shape());
  void* data = nullptr;
  if (valid->raw) {
    std::string* raw = response_->add_raw_output_contents();
    raw->swap(*request_->mutable_raw_input_contents(0));
    data = raw->data();
  } else if (valid->dtype == kernel::DType::kFloat32) {
    auto* values = output->mutable_contents()->mutable_fp32_contents();
    values->Swap(input->mutable_contents()->mutable_fp32_contents());
    data = values->mutable_data();
  } else if (valid->dtype == kernel::DType::kFloat64) {
    auto* values = output->mutable_contents()->mutable_fp64_contents();
    values->Swap(input->mutable_contents()->mutable_fp64_contents());
    data = values->mutable_data();
  } else {
    // FP16 / BF16 without raw_input_contents: valid only when empty.
    response_->add_raw_output_contents();
  }
  segment = {valid->dtype, valid->params, data, data, valid->elements};
  bytes = valid->bytes;
  return absl::OkStatus();
}

}  // namespace

InferenceServiceImpl::InferenceServiceImpl(Admission* admission,
                                           CallTracker* calls,
                                           std::string version)
    : admission_(admission), calls_(calls), version_(std::move(version)) {
  SetMessageAllocatorFor_ModelInfer(&allocator_);
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
    grpc::CallbackServerContext* context, const ModelInferRequest*,
    ModelInferResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The allocator above made the messages, so the request is ours to change.
  admission_->Admit(std::make_unique<InferCall>(
      context, reactor, decltype(allocator_)::MutableRequest(context), response,
      decltype(allocator_)::TrackedCall(context)));
  return reactor;
}

}  // namespace relu::service
