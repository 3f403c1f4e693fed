// ModelInfer requests for the tests of the Open Inference Protocol's checks
// (infer_request_test.cc) and its gRPC front door (tests/oip).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/grpc_service.pb.h"

namespace relu::service {

// A request for model relu with input `input` of `datatype` and `shape`; the
// data is left to the caller.
inline inference::ModelInferRequest MakeInfer(
    const std::string& datatype, const std::vector<int64_t>& shape) {
  inference::ModelInferRequest request;
  request.set_model_name("relu");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype(datatype);
  for (int64_t dim : shape) input->add_shape(dim);
  return request;
}

}  // namespace relu::service
