// Fuzzes the request path from raw bytes, as relu-server runs it: the
// wire-level parse of relu.v1.ApplyReLURequest (request_wire.h), which must
// agree with protobuf's parse however the bytes are split, as must the shape's
// dimensions counted on the wire before it (CountShapeDimensions),
// ValidateRequest, the kernel on the decoded tensor, the response. Oracles
// beyond "no crash, no sanitizer report":
//  - ModelInferRequest's wire split (SplitBytesField: raw_input_contents
//    left in the received bytes, the rest parsed) gives protobuf's parse of
//    the whole message, when it takes the layout;
//  - validation either accepts a request whose data size is exactly
//    elements x element size, or refuses it with INVALID_ARGUMENT and a
//    message;
//  - every supported ISA path and the threaded Kernel give the scalar path's
//    output bit for bit (any NaN matches any NaN), in place and out of place;
//  - the response serializes and parses back to the same tensor, and its
//    bytes are EncodeResponsePrefix's followed by the data.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "inference/grpc_service.pb.h"
#include "relu/v1/relu.pb.h"
#include "server/kernel/relu_kernel.h"
#include "server/service/request_wire.h"
#include "server/service/validation.h"
#include "tests/reliability/reference.h"

namespace {

using relu::kernel::DType;
using relu::kernel::Isa;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "request_fuzzer: %s\n", what);
  std::abort();
}

// The message's bytes with map entries in key order, so that two messages
// with the same contents compare equal whatever order their maps were read in.
std::string Deterministic(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  relu::v1::ApplyReLURequest request;
  const bool parses = request.ParseFromArray(data, static_cast<int>(size));

  // relu-server's parse, over the bytes cut as the network might cut them.
  const size_t chunk_size = 1 + size % 17;
  std::vector<absl::string_view> chunks;
  for (size_t at = 0; at < size; at += chunk_size) {
    chunks.emplace_back(reinterpret_cast<const char*>(data) + at,
                        std::min(chunk_size, size - at));
  }
  // ModelInfer's one-pass parse, on the same bytes.
  {
    inference::ModelInferRequest whole;
    const bool whole_parses =
        whole.ParseFromArray(data, static_cast<int>(size));
    relu::service::SplitMessage split;
    if (relu::service::SplitBytesField(chunks, 7, &split)) {
      inference::ModelInferRequest fields;
      Check(fields.ParseFromString(split.fields) == whole_parses,
            "ModelInfer split and protobuf disagree on validity");
      if (whole_parses) {
        const int n = whole.raw_input_contents_size();
        Check(fields.raw_input_contents_size() == n &&
                  split.values.size() == static_cast<size_t>(n) &&
                  split.sizes.size() == static_cast<size_t>(n),
              "ModelInfer split: raw_input_contents count differs");
        for (int i = 0; i < n; ++i) {
          std::string value;
          for (absl::string_view piece : split.values[i]) {
            value.append(piece.data(), piece.size());
          }
          Check(value == whole.raw_input_contents(i) &&
                    split.sizes[i] == value.size() &&
                    fields.raw_input_contents(i).empty(),
                "ModelInfer split: a raw_input_contents value differs");
          fields.set_raw_input_contents(i, value);
        }
        // Compared as bytes, not with MessageDifferencer: a NaN in a double
        // parameter is not equal to itself, while its bits must match.
        Check(Deterministic(fields) == Deterministic(whole),
              "ModelInfer split: fields differ from protobuf's");
      }
    }
  }

  relu::service::WireRequest wire_request;
  Check(relu::service::ParseApplyReLURequest(chunks, &wire_request) == parses,
        "wire parse and protobuf disagree on validity");
  if (!parses) return 0;
  Check(relu::service::CountShapeDimensions(chunks) ==
            static_cast<size_t>(request.tensor().shape_size()),
        "shape dimensions counted on the wire differ from protobuf's");
  std::string wire_data;
  for (absl::string_view piece : wire_request.data) {
    wire_data.append(piece.data(), piece.size());
  }
  Check(wire_data == request.tensor().data() &&
            wire_request.data_bytes == wire_data.size(),
        "wire parse: tensor.data differs from protobuf's");
  relu::v1::ApplyReLURequest without_data = request;
  if (without_data.has_tensor()) without_data.mutable_tensor()->clear_data();
  Check(wire_request.fields.SerializeAsString() ==
            without_data.SerializeAsString(),
        "wire parse: fields differ from protobuf's");

  absl::StatusOr<relu::service::ValidatedRequest> valid =
      relu::service::ValidateRequest(request);
  if (!valid.ok()) {
    Check(valid.status().code() == absl::StatusCode::kInvalidArgument,
          "refusal is not INVALID_ARGUMENT");
    Check(!valid.status().message().empty(), "refusal without a message");
    return 0;
  }
  const std::string& in = request.tensor().data();
  const size_t element_size = relu::kernel::ElementSize(valid->dtype);
  Check(valid->bytes == in.size(), "accepted data size != shape's size");
  Check(valid->elements * element_size == valid->bytes, "bytes != elements");
  Check(relu::kernel::ValidateParams(valid->params).empty(),
        "accepted params the kernel refuses");

  // The scalar path is the reference.
  std::string want(in.size(), '\0');
  relu::kernel::ApplyOnThread(Isa::kScalar, valid->dtype, valid->params,
                              in.data(), want.data(), valid->elements);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!relu::kernel::IsaSupported(isa)) continue;
    // Out of place, one element off the vector alignment (the kernel's
    // contract asks element alignment only).
    const std::string pad(element_size, ' ');
    std::string shifted = pad + in;
    std::string got(pad.size() + in.size(), '\0');
    relu::kernel::ApplyOnThread(isa, valid->dtype, valid->params,
                                shifted.data() + element_size,
                                got.data() + element_size, valid->elements);
    Check(relu::reliability::SameElements(valid->dtype, want,
                                          got.substr(element_size)),
          "ISA path differs from scalar (out of place)");
    // In place.
    std::string inplace = in;
    relu::kernel::ApplyOnThread(isa, valid->dtype, valid->params,
                                inplace.data(), inplace.data(),
                                valid->elements);
    Check(relu::reliability::SameElements(valid->dtype, want, inplace),
          "ISA path differs from scalar (in place)");
  }
  static relu::kernel::Kernel* kernel = [] {
    relu::kernel::KernelOptions options;
    options.threads = 2;
    return new relu::kernel::Kernel(options);
  }();
  // The response, computed in place by the threaded kernel.
  relu::v1::ApplyReLUResponse response;
  relu::v1::Tensor* out = response.mutable_tensor();
  out->set_dtype(request.tensor().dtype());
  *out->mutable_shape() = request.tensor().shape();
  out->set_data(in);
  std::string& buffer = *out->mutable_data();
  kernel->Apply(valid->dtype, valid->params, buffer.data(), buffer.data(),
                valid->elements);
  Check(relu::reliability::SameElements(valid->dtype, want, buffer),
        "Kernel::Apply differs from scalar");

  std::string wire;
  Check(response.SerializeToString(&wire), "response does not serialize");
  relu::v1::ApplyReLUResponse parsed;
  Check(parsed.ParseFromString(wire), "response does not parse back");
  Check(parsed.tensor().data() == buffer, "response data changed on the wire");
  Check(parsed.tensor().shape_size() == request.tensor().shape_size(),
        "response shape changed");
  Check(relu::service::EncodeResponsePrefix(out->dtype(), out->shape(),
                                            buffer.size()) +
                buffer ==
            wire,
        "EncodeResponsePrefix + data differs from protobuf's serialization");
  return 0;
}
