#include "tests/testing/golden.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "nlohmann/json.hpp"

namespace relu::testing {
namespace {

kernel::DType ParseDType(const std::string& name) {
  if (name == "float32") return kernel::DType::kFloat32;
  if (name == "float64") return kernel::DType::kFloat64;
  if (name == "float16") return kernel::DType::kFloat16;
  if (name == "bfloat16") return kernel::DType::kBFloat16;
  fprintf(stderr, "golden file: unknown dtype %s\n", name.c_str());
  abort();
}

std::vector<uint64_t> ParseHex(const nlohmann::json& list) {
  std::vector<uint64_t> bits;
  for (const auto& hex : list) {
    bits.push_back(std::stoull(hex.get<std::string>(), nullptr, 16));
  }
  return bits;
}

}  // namespace

std::vector<GoldenCase> LoadGoldenCases() {
  const std::string path =
      std::string(RELU_TEST_DATA_DIR) + "/relu_golden_edges.json";
  std::ifstream in(path);
  if (!in) {
    fprintf(stderr, "cannot read %s\n", path.c_str());
    abort();
  }
  const nlohmann::json root = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : root.at("cases")) {
    GoldenCase golden;
    golden.name = c.at("name").get<std::string>();
    golden.kind = c.at("kind").get<std::string>();
    golden.dtype = ParseDType(c.at("dtype").get<std::string>());
    const auto& params = c.at("params");
    if (!params.at("max_value").is_null()) {
      golden.params.max_value = params.at("max_value").get<double>();
    }
    golden.params.negative_slope = params.at("negative_slope").get<double>();
    golden.params.threshold = params.at("threshold").get<double>();
    golden.input_bits = ParseHex(c.at("input_hex"));
    golden.output_bits = ParseHex(c.at("output_hex"));
    if (golden.input_bits.size() != golden.output_bits.size()) {
      fprintf(stderr, "golden file: case %s has %zu inputs, %zu outputs\n",
              golden.name.c_str(), golden.input_bits.size(),
              golden.output_bits.size());
      abort();
    }
    golden.input = c.at("input").get<std::vector<std::string>>();
    golden.output = c.at("output").get<std::vector<std::string>>();
    cases.push_back(std::move(golden));
  }
  return cases;
}

std::string BitsToBytes(kernel::DType dtype,
                        const std::vector<uint64_t>& bits) {
  const size_t size = kernel::ElementSize(dtype);
  std::string bytes(bits.size() * size, '\0');
  for (size_t i = 0; i < bits.size(); ++i) {
    for (size_t b = 0; b < size; ++b) {
      bytes[i * size + b] = static_cast<char>((bits[i] >> (8 * b)) & 0xff);
    }
  }
  return bytes;
}

std::vector<uint64_t> BytesToBits(kernel::DType dtype,
                                  const std::string& bytes) {
  const size_t size = kernel::ElementSize(dtype);
  std::vector<uint64_t> bits(bytes.size() / size, 0);
  for (size_t i = 0; i < bits.size(); ++i) {
    for (size_t b = 0; b < size; ++b) {
      bits[i] |= uint64_t{static_cast<unsigned char>(bytes[i * size + b])}
                 << (8 * b);
    }
  }
  return bits;
}

bool IsNan(kernel::DType dtype, uint64_t bits) {
  switch (dtype) {
    case kernel::DType::kFloat32:
      return (bits & 0x7fffffff) > 0x7f800000;
    case kernel::DType::kFloat64:
      return (bits & 0x7fffffffffffffff) > 0x7ff0000000000000;
    case kernel::DType::kFloat16:
      return (bits & 0x7fff) > 0x7c00;
    case kernel::DType::kBFloat16:
      return (bits & 0x7fff) > 0x7f80;
  }
  return false;
}

bool SameResult(kernel::DType dtype, uint64_t actual, uint64_t expected) {
  if (IsNan(dtype, expected)) return IsNan(dtype, actual);
  return actual == expected;
}

}  // namespace relu::testing
