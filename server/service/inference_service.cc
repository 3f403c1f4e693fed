#include "server/service/inference_service.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/service/relu_service.h"
#include "server/service/validation.h"
#include "spdlog/spdlog.h"

namespace relu::service {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ParameterMap = google::protobuf::Map<std::string, InferParameter>;

// The request parameters the model takes, in the order they are read.
constexpr const char* kParamNames[] = {"max_value", "negative_slope",
                                       "threshold"};

std::string Quoted(const std::string& s) { return absl::StrCat("\"", s, "\""); }

std::string QuotedKeys(const ParameterMap& map) {
  std::vector<std::string> keys;
  for (const auto& entry : map) keys.push_back(Quoted(entry.first));
  std::sort(keys.begin(), keys.end());
  return absl::StrCat("[", absl::StrJoin(keys, ", "), "]");
}

// NOT_FOUND unless `name` and `version` name the served model.
absl::Status CheckModel(const std::string& name, const std::string& version) {
  if (name != kOipModelName) {
    return absl::NotFoundError(
        absl::StrCat("model ", Quoted(name), " is not served here; the only ",
                     "model is \"", kOipModelName, "\""));
  }
  if (!version.empty() && version != kOipModelVersion) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", kOipModelName, "\" has no version ", Quoted(version),
        "; the only version is \"", kOipModelVersion, "\""));
  }
  return absl::OkStatus();
}

const char* ParameterKindName(InferParameter::ParameterChoiceCase kind) {
  switch (kind) {
    case InferParameter::kBoolParam:
      return "a bool_param";
    case InferParameter::kInt64Param:
      return "an int64_param";
    case InferParameter::kStringParam:
      return "a string_param";
    case InferParameter::kDoubleParam:
      return "a double_param";
    case InferParameter::kUint64Param:
      return "a uint64_param";
    case InferParameter::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return "empty (no value set)";
}

// The request's ReLU parameters, before the Keras checks.
absl::StatusOr<kernel::Params> ParamsFromInfer(const ParameterMap& parameters) {
  std::vector<std::string> unknown;
  for (const auto& [name, value] : parameters) {
    if (std::find_if(std::begin(kParamNames), std::end(kParamNames),
                     [&name = name](const char* known) {
                       return name == known;
                     }) == std::end(kParamNames)) {
      unknown.push_back(Quoted(name));
    }
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters [", absl::StrJoin(unknown, ", "), "] not known to model ",
        "\"", kOipModelName, "\"; it takes max_value, negative_slope and ",
        "threshold"));
  }
  double values[3] = {0.0, 0.0, 0.0};
  bool present[3] = {false, false, false};
  for (int i = 0; i < 3; ++i) {
    auto it = parameters.find(kParamNames[i]);
    if (it == parameters.end()) continue;
    const InferParameter& p = it->second;
    switch (p.parameter_choice_case()) {
      case InferParameter::kDoubleParam:
        values[i] = p.double_param();
        break;
      case InferParameter::kInt64Param:
        values[i] = static_cast<double>(p.int64_param());
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("parameters[\"", kParamNames[i], "\"] is ",
                         ParameterKindName(p.parameter_choice_case()),
                         "; send a double_param (or an int64_param)"));
    }
    present[i] = true;
  }
  kernel::Params params;
  if (present[0]) params.max_value = values[0];
  params.negative_slope = values[1];
  params.threshold = values[2];
  return params;
}

absl::StatusOr<kernel::DType> DTypeFromDatatype(const std::string& datatype) {
  if (datatype == "FP32") return kernel::DType::kFloat32;
  if (datatype == "FP64") return kernel::DType::kFloat64;
  if (datatype == "FP16") return kernel::DType::kFloat16;
  if (datatype == "BF16") return kernel::DType::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("inputs[0].datatype is ", Quoted(datatype), "; model \"",
                   kOipModelName, "\" takes FP32, FP64, FP16 or BF16"));
}

// The typed contents fields other than `allowed` (may be null) that hold
// values, by name.
std::vector<std::string> OtherTypedFields(
    const inference::InferTensorContents& c, const char* allowed) {
  const std::pair<const char*, int> fields[] = {
      {"bool_contents", c.bool_contents_size()},
      {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()},
      {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()},
      {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},
      {"bytes_contents", c.bytes_contents_size()},
  };
  std::vector<std::string> out;
  for (const auto& [name, size] : fields) {
    if (size > 0 && (allowed == nullptr || std::string(name) != allowed)) {
      out.push_back(absl::StrCat("inputs[0].contents.", name));
    }
  }
  return out;
}

}  // namespace

const char* OipDatatype(kernel::DType dtype) {
  switch (dtype) {
    case kernel::DType::kFloat32:
      return "FP32";
    case kernel::DType::kFloat64:
      return "FP64";
    case kernel::DType::kFloat16:
      return "FP16";
    case kernel::DType::kBFloat16:
      return "BF16";
  }
  return "";
}

absl::StatusOr<ValidatedInfer> ValidateInferRequest(
    const ModelInferRequest& request) {
  if (absl::Status s =
          CheckModel(request.model_name(), request.model_version());
      !s.ok()) {
    return s;
  }
  if (request.inputs_size() != 1) {
    std::vector<std::string> names;
    for (const auto& input : request.inputs()) {
      names.push_back(Quoted(input.name()));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", kOipModelName, "\" takes 1 input, named \"", kOipInputName,
        "\"; the request has ", request.inputs_size(), " [",
        absl::StrJoin(names, ", "), "]"));
  }
  const ModelInferRequest::InferInputTensor& input = request.inputs(0);
  if (input.name() != kOipInputName) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs[0] is named ", Quoted(input.name()), "; model \"",
        kOipModelName, "\" takes one input, named \"", kOipInputName, "\""));
  }
  if (!input.parameters().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs[0].parameters ", QuotedKeys(input.parameters()),
        " are not supported (no shared memory; the ReLU parameters go in the ",
        "request's parameters)"));
  }
  if (request.outputs_size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", kOipModelName, "\" has 1 output, named \"", kOipOutputName,
        "\"; the request asks for ", request.outputs_size()));
  }
  if (request.outputs_size() == 1) {
    const auto& output = request.outputs(0);
    if (output.name() != kOipOutputName) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outputs[0] asks for ", Quoted(output.name()), "; model \"",
          kOipModelName, "\" has one output, named \"", kOipOutputName, "\""));
    }
    if (!output.parameters().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("outputs[0].parameters ",
                       QuotedKeys(output.parameters()), " are not supported"));
    }
  }

  ValidatedInfer out;
  absl::StatusOr<kernel::Params> params = ParamsFromInfer(request.parameters());
  if (!params.ok()) return params.status();
  out.params = *params;
  if (absl::Status s = ValidateParamsStatus(out.params); !s.ok()) return s;

  absl::StatusOr<kernel::DType> dtype = DTypeFromDatatype(input.datatype());
  if (!dtype.ok()) return dtype.status();
  out.dtype = *dtype;
  const size_t element_size = kernel::ElementSize(out.dtype);

  if (request.raw_input_contents_size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents has ", request.raw_input_contents_size(),
        " entries for 1 input"));
  }
  TensorFieldNames names;
  names.shape = "inputs[0].shape";
  size_t data_bytes = 0;
  out.raw = request.raw_input_contents_size() == 1;
  if (out.raw) {
    if (std::vector<std::string> set =
            OtherTypedFields(input.contents(), nullptr);
        !set.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::StrJoin(set, ", "), " set together with raw_input_contents; ",
          "send the data in one of them"));
    }
    names.data = "raw_input_contents[0]";
    data_bytes = request.raw_input_contents(0).size();
  } else {
    const char* typed = nullptr;
    if (out.dtype == kernel::DType::kFloat32) typed = "fp32_contents";
    if (out.dtype == kernel::DType::kFloat64) typed = "fp64_contents";
    if (std::vector<std::string> set =
            OtherTypedFields(input.contents(), typed);
        !set.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::StrJoin(set, ", "), " set; ", input.datatype(),
          " data goes in ",
          typed == nullptr ? ""
                           : absl::StrCat("inputs[0].contents.", typed, " or "),
          "raw_input_contents"));
    }
    if (typed == nullptr) {
      names.data = "raw_input_contents (absent)";
    } else {
      names.data = absl::StrCat("inputs[0].contents.", typed);
      const size_t count =
          out.dtype == kernel::DType::kFloat32
              ? static_cast<size_t>(input.contents().fp32_contents_size())
              : static_cast<size_t>(input.contents().fp64_contents_size());
      data_bytes = count * element_size;
    }
  }
  absl::StatusOr<TensorSize> size =
      ValidateTensorSize(out.dtype, input.shape(), data_bytes, names);
  if (!size.ok()) return size.status();
  out.elements = size->elements;
  out.bytes = size->bytes;
  return out;
}

InferenceServiceImpl::InferenceServiceImpl(batching::BatchScheduler* scheduler,
                                           metrics::ServerMetrics* metrics,
                                           CallTracker* calls,
                                           std::string version)
    : scheduler_(scheduler),
      metrics_(metrics),
      calls_(calls),
      version_(std::move(version)) {
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
  CallTracker::Call* tracked = decltype(allocator_)::TrackedCall(context);
  CallFinisher finisher(reactor, metrics_, metrics::Method::kModelInfer,
                        tracked);
  if (calls_->draining()) {
    metrics_->OnRejected(batching::RejectReason::kDraining);
    return finisher.Finish(absl::UnavailableError("server is draining"));
  }
  // Reset by the client before its message arrived: no work, and not counted
  // as an invalid request.
  if (context->IsCancelled()) {
    metrics_->OnRejected(batching::RejectReason::kCancelled);
    return finisher.Finish(absl::CancelledError("cancelled by the client"));
  }
  // The allocator above made the messages, so the request is ours to change.
  ModelInferRequest* request = decltype(allocator_)::MutableRequest(context);
  absl::StatusOr<ValidatedInfer> valid = ValidateInferRequest(*request);
  if (!valid.ok()) {
    metrics_->OnInvalid();
    return finisher.Finish(valid.status());
  }
  finisher.SetTensor(valid->dtype, valid->elements, valid->bytes);
  // gRPC serializes the response into a copy of its own.
  if (absl::Status s = calls_->ReserveResponse(tracked, valid->bytes);
      !s.ok()) {
    return finisher.Finish(s);
  }

  // Move the input into the response; the kernel computes there in place.
  ModelInferRequest::InferInputTensor* input = request->mutable_inputs(0);
  response->set_model_name(kOipModelName);
  response->set_model_version(kOipModelVersion);
  response->set_id(request->id());
  ModelInferResponse::InferOutputTensor* output = response->add_outputs();
  output->set_name(kOipOutputName);
  output->set_datatype(OipDatatype(valid->dtype));
  output->mutable_shape()->Swap(input->mutable_shape());
  void* data = nullptr;
  if (valid->raw) {
    std::string* raw = response->add_raw_output_contents();
    raw->swap(*request->mutable_raw_input_contents(0));
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
    response->add_raw_output_contents();
  }
  if (valid->elements == 0) return finisher.Finish(absl::OkStatus());

  std::unique_ptr<batching::BatchTask> task =
      std::make_unique<CallTask>(context, finisher);
  task->segment = {valid->dtype, valid->params, data, data, valid->elements};
  task->bytes = valid->bytes;
  task->deadline_micros = DeadlineMicros(*context, *batching::Clock::Real());
  absl::Status scheduled = scheduler_->Schedule(task);
  if (!scheduled.ok()) return finisher.Finish(scheduled);
  return reactor;
}

}  // namespace relu::service
