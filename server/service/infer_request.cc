#include "server/service/infer_request.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
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
    const ModelInferRequest& request, const char* data_field,
    std::optional<size_t> raw_input_bytes) {
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
    names.data = data_field != nullptr ? data_field : "raw_input_contents[0]";
    data_bytes = raw_input_bytes.value_or(request.raw_input_contents(0).size());
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

}  // namespace relu::service
