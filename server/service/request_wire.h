// ApplyReLU's messages at the wire level, so that tensor bytes are touched
// once per call: the request's tensor.data is read where gRPC received it
// (no parse copy), and the response is written as wire bytes around the
// kernel's output (no serialize copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "relu/v1/relu.pb.h"

namespace relu::service {

// An ApplyReLURequest whose tensor.data stays in the received bytes.
struct WireRequest {
  // Every field of the request but tensor.data, which is left empty.
  v1::ApplyReLURequest fields;
  // tensor.data, in order: views into the chunks given to
  // ParseApplyReLURequest, or into `owned_data`.
  absl::InlinedVector<absl::string_view, 1> data;
  size_t data_bytes = 0;
  // tensor.data when it had to be copied (see ParseApplyReLURequest).
  std::string owned_data;
};

// Parses the serialized ApplyReLURequest made of `chunks` (the received
// slices, in order) into `out`, which must be empty and must not move while
// out->data is in use. Returns false, as protobuf's parser would, when the
// bytes are not a valid ApplyReLURequest.
//
// The result equals protobuf's parse of the concatenated chunks, with
// tensor.data split off. A request with at most one `tensor` field and at
// most one `data` field in it, and no groups (every message protobuf itself
// writes), is read in place: the other fields are copied out and parsed by
// protobuf, and out->data points into `chunks`. Any other layout falls back
// to protobuf's parse of the whole message, and its data is moved into
// out->owned_data.
bool ParseApplyReLURequest(absl::Span<const absl::string_view> chunks,
                           WireRequest* out);

// A message whose top-level bytes field (repeated or not) stays in the
// received bytes: ModelInferRequest's raw_input_contents.
struct SplitMessage {
  // The message with each value of the field emptied (the values' count and
  // order kept): parse it with protobuf.
  std::string fields;
  // The values, in order: views into the chunks given to SplitBytesField.
  std::vector<absl::InlinedVector<absl::string_view, 1>> values;
  std::vector<size_t> sizes;  // each value's bytes
};

// Splits the serialized message made of `chunks` into `out` (which must be
// empty): the values of its top-level length-delimited field `field` as
// views, everything else copied. Protobuf's parse of out->fields, with the
// values put back in order, equals its parse of the whole message. False
// for a layout left to protobuf (groups, anything malformed); `out` may then
// hold a partial result.
bool SplitBytesField(absl::Span<const absl::string_view> chunks, uint32_t field,
                     SplitMessage* out);

// How many dimensions protobuf's parse of the serialized ApplyReLURequest
// made of `chunks` would give tensor.shape (summed over repeated `tensor`
// fields, which protobuf merges), counted without parsing: a shape is checked
// against its limit before it takes memory (a 63 MiB shape parses into half
// a GiB). Counting stops at the first malformed field; what follows it is
// left to the parse, which fails. Whenever protobuf's parse succeeds, the
// count is its shape's size (the fuzzer checks this).
//
// Any message with a shape in a nested message is counted the same way:
// `tensor_field` is the nested message's field number (ApplyReLURequest's
// `tensor`, 1; ModelInferRequest's repeated `inputs`, 5) and `shape_field`
// the shape's within it (2; InferInputTensor's, 3); repeated nested messages
// are summed.
size_t CountShapeDimensions(absl::Span<const absl::string_view> chunks,
                            uint32_t tensor_field = 1,
                            uint32_t shape_field = 2);

// The wire bytes of an ApplyReLUResponse holding a tensor of `dtype`,
// `shape` and `data_bytes` bytes of data, up to the data itself, which
// follows on the wire. Byte for byte protobuf's own serialization of that
// message (proto3: dtype 0, an empty shape and empty data are left out; the
// shape is packed).
std::string EncodeResponsePrefix(int dtype, absl::Span<const int64_t> shape,
                                 size_t data_bytes);

}  // namespace relu::service
