// EncodeResponsePrefix + the data bytes must be exactly protobuf's
// serialization of the same ApplyReLUResponse.
#include "bench/raw/raw_relu_service.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "relu/v1/relu.pb.h"

namespace relu::service {
namespace {

struct Case {
  int dtype;
  std::vector<int64_t> shape;
  size_t data_bytes;
};

class EncodeResponsePrefixTest : public testing::TestWithParam<Case> {};

TEST_P(EncodeResponsePrefixTest, MatchesProtobuf) {
  const Case& c = GetParam();
  std::string data(c.data_bytes, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  v1::ApplyReLUResponse expected;
  v1::Tensor* tensor = expected.mutable_tensor();
  tensor->set_dtype(static_cast<v1::DataType>(c.dtype));
  for (int64_t dim : c.shape) tensor->add_shape(dim);
  tensor->set_data(data);

  const std::string wire =
      EncodeResponsePrefix(c.dtype, c.shape, c.data_bytes) + data;
  EXPECT_EQ(wire, expected.SerializeAsString());
  v1::ApplyReLUResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.tensor().data(), data);
}

INSTANTIATE_TEST_SUITE_P(Shapes, EncodeResponsePrefixTest,
                         testing::Values(Case{1, {}, 4}, Case{1, {0}, 0},
                                         Case{0, {}, 0}, Case{2, {3, 0, 5}, 0},
                                         Case{1, {16}, 64}, Case{3, {2, 3}, 12},
                                         Case{4, {300}, 600},
                                         Case{1, {1024}, 4096},
                                         Case{2, {1 << 20}, 8 << 20},
                                         Case{1, {128, 129, 16384}, 0},
                                         Case{1, {int64_t{1} << 40}, 0}));

}  // namespace
}  // namespace relu::service
