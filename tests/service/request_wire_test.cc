// ParseApplyReLURequest and EncodeResponsePrefix against protobuf itself:
// whatever the bytes and however they are split into chunks, the result must
// be protobuf's own parse (or failure), with tensor.data split off.
#include "server/service/request_wire.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace relu::service {
namespace {

// `bytes` cut into chunks of `size` bytes (the last one shorter).
std::vector<absl::string_view> Chunks(const std::string& bytes, size_t size) {
  std::vector<absl::string_view> chunks;
  for (size_t at = 0; at < bytes.size(); at += size) {
    chunks.push_back(absl::string_view(bytes).substr(at, size));
  }
  return chunks;
}

// Whether `view` lies inside one of `chunks`.
bool InsideAChunk(absl::string_view view,
                  const std::vector<absl::string_view>& chunks) {
  for (absl::string_view chunk : chunks) {
    if (view.data() >= chunk.data() &&
        view.data() + view.size() <= chunk.data() + chunk.size()) {
      return true;
    }
  }
  return false;
}

enum class Expect { kInPlace, kCopied, kEither };

// Parses `wire` split into `chunks` and compares with protobuf's parse.
void ExpectSameAsProtobuf(const std::string& wire,
                          const std::vector<absl::string_view>& chunks,
                          Expect expect = Expect::kEither) {
  v1::ApplyReLURequest want;
  const bool want_ok = want.ParseFromString(wire);
  WireRequest got;
  const bool got_ok = ParseApplyReLURequest(chunks, &got);
  ASSERT_EQ(got_ok, want_ok)
      << wire.size() << " bytes in " << chunks.size() << " chunks";
  if (!want_ok) return;
  std::string data;
  for (absl::string_view piece : got.data)
    data.append(piece.data(), piece.size());
  EXPECT_EQ(got.data_bytes, data.size());
  EXPECT_EQ(data, want.tensor().data());
  if (want.has_tensor()) want.mutable_tensor()->clear_data();
  EXPECT_EQ(got.fields.SerializeAsString(), want.SerializeAsString());
  EXPECT_TRUE(got.fields.tensor().data().empty());
  if (expect == Expect::kInPlace) {
    EXPECT_TRUE(got.owned_data.empty());
    for (absl::string_view piece : got.data) {
      EXPECT_TRUE(InsideAChunk(piece, chunks));
    }
  } else if (expect == Expect::kCopied) {
    EXPECT_EQ(got.owned_data, data);
  }
}

std::vector<v1::ApplyReLURequest> SampleRequests() {
  std::vector<v1::ApplyReLURequest> requests;
  requests.emplace_back();  // empty message
  v1::ApplyReLURequest r;
  r.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int dim : {2, 8}) r.mutable_tensor()->add_shape(dim);
  std::string data(64, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37);
  r.mutable_tensor()->set_data(data);
  requests.push_back(r);  // no params
  r.mutable_params()->set_max_value(6.0);
  r.mutable_params()->set_negative_slope(0.5);
  r.mutable_params()->set_threshold(-1.0);
  requests.push_back(r);  // all params
  v1::ApplyReLURequest scalar;
  scalar.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT64);
  scalar.mutable_tensor()->set_data(std::string(8, '\x7f'));
  requests.push_back(scalar);
  v1::ApplyReLURequest empty_tensor;
  empty_tensor.mutable_tensor()->set_dtype(v1::DATA_TYPE_BFLOAT16);
  empty_tensor.mutable_tensor()->add_shape(0);
  requests.push_back(empty_tensor);
  v1::ApplyReLURequest big = r;
  big.mutable_tensor()->clear_shape();
  big.mutable_tensor()->add_shape(10007);
  big.mutable_tensor()->set_data(std::string(10007 * 4, '\x41'));
  requests.push_back(big);
  v1::ApplyReLURequest only_params;
  only_params.mutable_params()->set_threshold(2.0);
  requests.push_back(only_params);
  return requests;
}

TEST(RequestWireTest, ProtobufWrittenRequestsAreReadInPlace) {
  for (const v1::ApplyReLURequest& request : SampleRequests()) {
    const std::string wire = request.SerializeAsString();
    for (size_t size : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64},
                        size_t{4096}, wire.size() + 1}) {
      SCOPED_TRACE(size);
      ExpectSameAsProtobuf(wire, Chunks(wire, size), Expect::kInPlace);
    }
  }
}

TEST(RequestWireTest, EveryTruncationAgreesWithProtobuf) {
  for (const v1::ApplyReLURequest& request : SampleRequests()) {
    const std::string wire = request.SerializeAsString();
    for (size_t length = 0; length < std::min<size_t>(wire.size(), 200);
         ++length) {
      const std::string cut = wire.substr(0, length);
      ExpectSameAsProtobuf(cut, Chunks(cut, 3));
      ExpectSameAsProtobuf(cut, Chunks(cut, length + 1));
    }
  }
}

// Hand-written layouts that protobuf accepts but never writes itself.
TEST(RequestWireTest, UnusualLayoutsAgreeWithProtobuf) {
  const std::vector<v1::ApplyReLURequest> samples = SampleRequests();
  const std::string a = samples[2].SerializeAsString();
  const std::string b = samples[3].SerializeAsString();
  // Field 1 (tensor) with data, then its fields one by one.
  const std::string tensor_tag = "\x0a";
  struct Case {
    const char* name;
    std::string wire;
    Expect expect;
    bool parses;  // by protobuf: the case is what its name says
  };
  const std::vector<Case> cases = {
      // Two messages concatenated: tensors merge, the last data wins.
      {"two requests merged", a + b, Expect::kCopied, true},
      // A tensor whose data appears twice: the last one wins.
      {"data twice", tensor_tag + std::string("\x06\x1a\x01X\x1a\x01Y", 7),
       Expect::kCopied, true},
      // Unknown fields of every wire type, at both levels.
      {"unknown fields",
       std::string("\x28\x05"                              // field 5 varint
                   "\x31\x01\x02\x03\x04\x05\x06\x07\x08"  // 6 fixed64
                   "\x3d\x01\x02\x03\x04"                  // 7 fixed32
                   "\x42\x02hi"                            // 8 bytes
                   "\x0a\x08"                              // tensor
                   "\x08\x01\x1a\x04\x00\x00\x80\x3f"      // dtype, data
                   "\x78\x09",                             // field 15 varint
                   32),
       Expect::kInPlace, true},
      // The shape unpacked (one varint per dimension): accepted too.
      {"unpacked shape",
       std::string("\x0a\x0c\x08\x01\x10\x01\x10\x01\x1a\x04\x00\x00\x80\x3f",
                   14),
       Expect::kInPlace, true},
      // A group among the fields (wire types 3 and 4).
      {"group", std::string("\x2b\x08\x01\x2c\x0a\x03\x1a\x01Z", 9),
       Expect::kCopied, true},
      // The tensor's field number with the wrong wire type: an unknown field.
      {"tensor as varint", std::string("\x08\x07", 2), Expect::kEither, true},
      // Field number 0 is invalid.
      {"field zero", std::string("\x00\x01", 2), Expect::kEither, false},
      // A data length past the tensor's end, and past the message's.
      {"data past tensor", std::string("\x0a\x02\x1a\x05hello", 9),
       Expect::kEither, false},
      {"data past message", std::string("\x0a\x07\x1a\x05hel", 7),
       Expect::kEither, false},
      // Lengths and tags in more than 5 bytes: protobuf refuses them, even
      // for small values (found by the fuzzer: a tensor length of 0 in 10).
      {"10-byte tensor length",
       std::string("\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x20", 11),
       Expect::kEither, false},
      {"6-byte data length",
       std::string("\x0a\x08\x1a\x81\x80\x80\x80\x80\x00Z", 10),
       Expect::kEither, false},
      {"6-byte data tag",
       std::string("\x0a\x08\x9a\x80\x80\x80\x80\x00\x01Z", 10),
       Expect::kEither, false},
      {"5-byte data length",
       std::string("\x0a\x07\x1a\x81\x80\x80\x80\x00Z", 9), Expect::kInPlace,
       true},
      // An 11-byte varint.
      {"long varint",
       std::string("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                   "\xff\x01",
                   12),
       Expect::kEither, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ApplyReLURequest parsed;
    ASSERT_EQ(parsed.ParseFromString(c.wire), c.parses);
    for (size_t size : {size_t{1}, size_t{2}, c.wire.size() + 1}) {
      ExpectSameAsProtobuf(c.wire, Chunks(c.wire, size), c.expect);
    }
  }
}

TEST(RequestWireTest, RandomBytesAgreeWithProtobuf) {
  std::mt19937 rng(20261127);
  const std::vector<v1::ApplyReLURequest> samples = SampleRequests();
  for (int i = 0; i < 20000; ++i) {
    std::string wire;
    if (i % 2 == 0) {
      // Mutations of a valid request: most keep its structure.
      wire = samples[rng() % samples.size()].SerializeAsString();
      if (!wire.empty()) {
        for (int flips = 1 + rng() % 3; flips > 0; --flips) {
          wire[rng() % wire.size()] = static_cast<char>(rng());
        }
      }
    } else {
      wire.resize(rng() % 48);
      for (char& c : wire) c = static_cast<char>(rng());
    }
    ExpectSameAsProtobuf(wire, Chunks(wire, 1 + rng() % 8));
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i;
      return;
    }
  }
}

TEST(RequestWireTest, ResponsePrefixIsProtobufsSerialization) {
  for (int dtype : {0, 1, 2, 4, 300}) {
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
             {}, {0}, {3}, {2, 3, 4}, {int64_t{1} << 40}, {-1}}) {
      for (size_t data_bytes : {size_t{0}, size_t{5}, size_t{200}}) {
        v1::ApplyReLUResponse response;
        v1::Tensor* tensor = response.mutable_tensor();
        tensor->set_dtype(static_cast<v1::DataType>(dtype));
        for (int64_t dim : shape) tensor->add_shape(dim);
        tensor->set_data(std::string(data_bytes, '\x33'));
        const std::string got = EncodeResponsePrefix(dtype, shape, data_bytes) +
                                std::string(data_bytes, '\x33');
        EXPECT_EQ(got, response.SerializeAsString())
            << "dtype " << dtype << " dims " << shape.size() << " data "
            << data_bytes;
      }
    }
  }
}

}  // namespace
}  // namespace relu::service
