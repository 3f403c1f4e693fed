// Fuzzes the HTTP front door's JSON decoding (server/service/oip_json.h) from
// raw bytes: the first byte picks where the JSON ends (the binary data
// extension's split), the rest is the body. Decoded data is written back as
// JSON numbers, and every number token read back, so the parser, the number
// reader and the writer all run on whatever the fuzzer finds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/service/oip_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  // 255: the whole body is JSON; otherwise the last data[0] bytes are binary.
  const size_t binary =
      data[0] == 255 ? 0 : std::min<size_t>(data[0], body.size());
  relu::service::HttpInferRequest request;
  const absl::Status status = relu::service::DecodeHttpInferRequest(
      body.substr(0, body.size() - binary), body.substr(body.size() - binary),
      &request);
  if (status.ok() && request.request.raw_input_contents_size() > 0 &&
      request.request.inputs_size() > 0) {
    const std::string& raw = request.request.raw_input_contents(0);
    const std::string& datatype = request.request.inputs(0).datatype();
    relu::kernel::DType dtype = relu::kernel::DType::kFloat32;
    if (datatype == "FP64") dtype = relu::kernel::DType::kFloat64;
    if (datatype == "FP16") dtype = relu::kernel::DType::kFloat16;
    if (datatype == "BF16") dtype = relu::kernel::DType::kBFloat16;
    const size_t element = relu::kernel::ElementSize(dtype);
    std::string json;
    relu::service::AppendJsonNumbers(dtype, raw.data(), raw.size() / element,
                                     &json);
  }
  uint64_t bits = 0;
  relu::service::ReadJsonNumber(body.substr(0, 64),
                                relu::kernel::DType::kFloat16, &bits);
  return 0;
}
