// Fuzzes relu-cli's .npy reader (relu::cli::ParseNpy) from raw bytes.
// Oracles beyond "no crash, no sanitizer report": an accepted file's data
// size matches its shape and dtype, and it survives SerializeNpy + ParseNpy
// unchanged; a refusal is INVALID_ARGUMENT with a message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "client/cli/npy.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "npy_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<relu::Tensor> tensor = relu::cli::ParseNpy(bytes);
  if (!tensor.ok()) {
    Check(tensor.status().code() == absl::StatusCode::kInvalidArgument,
          "refusal is not INVALID_ARGUMENT");
    Check(!tensor.status().message().empty(), "refusal without a message");
    return 0;
  }
  const int64_t elements = tensor->ElementCount();
  Check(elements >= 0, "negative element count");
  for (int64_t d : tensor->shape) Check(d >= 0, "negative dimension");
  Check(tensor->data.size() ==
            static_cast<size_t>(elements) * relu::ElementSize(tensor->dtype),
        "data size does not match the shape");
  absl::StatusOr<std::string> again = relu::cli::SerializeNpy(*tensor);
  Check(again.ok(), "an accepted tensor does not serialize");
  absl::StatusOr<relu::Tensor> back = relu::cli::ParseNpy(*again);
  Check(back.ok(), "a serialized tensor does not parse");
  Check(back->dtype == tensor->dtype, "round trip changed the dtype");
  Check(back->shape == tensor->shape, "round trip changed the shape");
  Check(back->data == tensor->data, "round trip changed the data");
  return 0;
}
