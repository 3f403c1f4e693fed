// The Open Inference Protocol's ModelInfer request for relu-serve's one
// model, checked: what the model is, and ValidateInferRequest. Protobuf only
// (the inference messages), no gRPC service; the handler is
// inference_service.h.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "inference/grpc_service.pb.h"
#include "server/kernel/types.h"

namespace relu::service {

// The served model, and how ModelMetadata describes it.
inline constexpr char kOipModelName[] = "relu";
inline constexpr char kOipModelVersion[] = "1";
// relu-serve's own kernel, written in C++ (no framework model file behind
// it), in the "<backend>_<format>" style of Triton's platform names.
inline constexpr char kOipPlatform[] = "relu-serve_cpp";
inline constexpr char kOipServerName[] = "relu-serve";
inline constexpr char kOipInputName[] = "input";
inline constexpr char kOipOutputName[] = "output";

// A ModelInfer request, checked.
struct ValidatedInfer {
  kernel::DType dtype;
  kernel::Params params;
  size_t elements = 0;
  size_t bytes = 0;
  // The data is in raw_input_contents[0] (else in the typed contents).
  bool raw = false;
};

// Checks a ModelInfer request, in this order: the model (NOT_FOUND for
// another name, or a version other than "" and "1"), the inputs (exactly
// one, named "input"), the requested outputs (none, or one named "output"),
// the parameters (names and types, then the Keras constructor's checks with
// ApplyReLU's messages), the datatype, where the data is, and the shape
// against the data (ApplyReLU's messages, naming "inputs[0].shape" and
// "raw_input_contents[0]" or "inputs[0].contents.fp32_contents"). Every
// failure but the model's is INVALID_ARGUMENT, naming the field.
// `data_field`, when not null, names the raw data in the messages instead of
// "raw_input_contents[0]" (the HTTP front door's "inputs[0].data").
// `raw_input_bytes`, when given, is raw_input_contents[0]'s size, for a
// request whose raw_input_contents were split off on the wire (left empty
// in `request`, SplitBytesField).
absl::StatusOr<ValidatedInfer> ValidateInferRequest(
    const inference::ModelInferRequest& request,
    const char* data_field = nullptr,
    std::optional<size_t> raw_input_bytes = std::nullopt);

// NOT_FOUND unless `name` and `version` ("" or "1") name the served model.
absl::Status CheckModel(const std::string& name, const std::string& version);

// The wire datatype of a kernel dtype: "FP32", "FP64", "FP16", "BF16".
const char* OipDatatype(kernel::DType dtype);

}  // namespace relu::service
