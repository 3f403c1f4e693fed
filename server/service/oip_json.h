// The Open Inference Protocol's REST encoding (KServe v2 over HTTP) for
// relu-serve's one model: a JSON infer request read into the
// inference::ModelInferRequest it stands for (so ValidateInferRequest checks
// it with ModelInfer's messages), and the numbers of an answer written as
// JSON. No HTTP and no gRPC in here; the HTTP front door is http_service.h.
//
// Numbers: JSON has no NaN or infinity, so the tokens NaN, Infinity and
// -Infinity are read and written as Python's json module does. A decimal is
// read as the nearest value of the input's datatype: FP32 and FP64 directly,
// FP16 and BF16 from the nearest double, rounded once to nearest even (as the
// C++ client library does). Written numbers are the shortest decimal that
// reads back to the same value of the datatype, in Python's repr style
// ("3.0", "-0.0", "1e-05").
//
// Thread-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "inference/grpc_service.pb.h"
#include "server/kernel/types.h"

namespace relu::service {

// An HTTP infer request, decoded.
struct HttpInferRequest {
  // What the request says, as ModelInfer would receive it: the data (JSON
  // or binary) as raw_input_contents[0] when the datatype is one the model
  // takes. The model name and version are the caller's (the URL's).
  inference::ModelInferRequest request;
  // Whether the request has an "id" (echoed as given, even empty).
  bool has_id = false;
  // The output is asked as binary data (the binary tensor data extension:
  // parameters "binary_data_output" or outputs[0] "binary_data").
  bool binary_output = false;
  // The request's time limit, from its "timeout" parameter (microseconds,
  // as Triton reads it); absent = none.
  std::optional<int64_t> timeout_micros;
};

// Decodes an infer request: `json` is the JSON text (the whole body, or its
// first Inference-Header-Content-Length bytes), `binary` the bytes after it
// (empty without the binary data extension). INVALID_ARGUMENT, naming the
// field, for a body that is not JSON, a field of the wrong type, nested data
// that does not match the shape, or binary data whose size does not match
// binary_data_size. The checks ValidateInferRequest makes are left to it.
absl::Status DecodeHttpInferRequest(std::string_view json,
                                    std::string_view binary,
                                    HttpInferRequest* out);

// Appends `count` values of `dtype` at `data` as JSON numbers separated by
// commas.
void AppendJsonNumbers(kernel::DType dtype, const void* data, size_t count,
                       std::string* out);

// One value as its JSON number (shortest round-trip for its datatype; NaN,
// Infinity, -Infinity). `bits` holds the value's bit pattern (16-bit formats
// in the low bits, float's 32 bits, double's 64).
std::string JsonNumber(kernel::DType dtype, uint64_t bits);

// Reads one JSON number token (or NaN, Infinity, -Infinity) as `dtype`, into
// `out` (ElementSize(dtype) bytes, little-endian). False when `token` is not
// a number.
bool ReadJsonNumber(std::string_view token, kernel::DType dtype, void* out);

// Appends `text` as a JSON string literal, quoted and escaped.
void AppendJsonString(std::string_view text, std::string* out);

}  // namespace relu::service
