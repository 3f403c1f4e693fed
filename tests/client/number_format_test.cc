// Number formatting against NumPy's str() of a scalar of the same dtype.
#include "client/cli/number_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/python_numpy.h"

namespace relu::cli {
namespace {

float BitsFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
double BitsDouble(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}

TEST(NumberFormatTest, IssueExamples) {
  EXPECT_EQ(FormatFloat32(3.0f), "3.0");
  EXPECT_EQ(FormatFloat32(-0.0f), "-0.0");
  EXPECT_EQ(FormatFloat32(0.0f), "0.0");
  EXPECT_EQ(FormatFloat32(2.5f), "2.5");
  EXPECT_EQ(FormatFloat32(0.1f), "0.1");
  EXPECT_EQ(FormatFloat64(0.1f), "0.10000000149011612");
  EXPECT_EQ(FormatFloat32(std::numeric_limits<float>::quiet_NaN()), "nan");
  EXPECT_EQ(FormatFloat32(-std::numeric_limits<float>::quiet_NaN()), "nan");
  EXPECT_EQ(FormatFloat32(std::numeric_limits<float>::infinity()), "inf");
  EXPECT_EQ(FormatFloat32(-std::numeric_limits<float>::infinity()), "-inf");
  EXPECT_EQ(FormatFloat32(1e20f), "1e+20");
  EXPECT_EQ(FormatFloat64(1e-5), "1e-05");
  EXPECT_EQ(FormatFloat64(1e16), "1e+16");
  EXPECT_EQ(FormatFloat64(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(FormatFloat64(0.0001), "0.0001");
  EXPECT_EQ(FormatFloat64(5e-324), "5e-324");
  EXPECT_EQ(FormatFloat64(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(FormatFloat32(BitsFloat(1)), "1e-45");
  EXPECT_EQ(FormatFloat32(3.4028235e38f), "3.4028235e+38");
  EXPECT_EQ(FormatFloat16(Float16(65504.0f)), "65500.0");
  EXPECT_EQ(FormatFloat16(Float16(32768.0f)), "32770.0");
  EXPECT_EQ(FormatFloat16(Float16(0.1f)), "0.1");
  EXPECT_EQ(FormatFloat16(Float16::FromBits(1)), "6e-08");
  EXPECT_EQ(FormatBFloat16(BFloat16(0.1f)), "0.1");
  EXPECT_EQ(FormatBFloat16(BFloat16(1.0f / 3)), "0.334");
  EXPECT_EQ(FormatBFloat16(BFloat16(3.0f)), "3.0");
  EXPECT_EQ(FormatBFloat16(BFloat16(1e20f)), "1e+20");
}

TEST(NumberFormatTest, TensorsPrintLikeTolist) {
  EXPECT_EQ(FormatTensor(Tensor::FromFloat32({0, 0, 0, 3})),
            "[0.0, 0.0, 0.0, 3.0]");
  EXPECT_EQ(FormatTensor(Tensor::FromFloat32({-0.0f, -0.0f, 0, 3})),
            "[-0.0, -0.0, 0.0, 3.0]");
  EXPECT_EQ(FormatTensor(Tensor::FromFloat64({1, 2, 3, 4, 5, 6}, {2, 1, 3})),
            "[[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]]");
  Tensor scalar = Tensor::FromFloat16({Float16(2.5f)});
  scalar.shape.clear();
  EXPECT_EQ(FormatTensor(scalar), "2.5");
  EXPECT_EQ(FormatTensor(Tensor::FromFloat32({}, {0})), "[]");
  EXPECT_EQ(FormatTensor(Tensor::FromFloat32({}, {2, 0})), "[[], []]");
}

// Every readable string in the golden file is the shortest repr in its dtype
// (as NumPy prints it) of the value given in hex. bfloat16 is left out: the
// file prints bfloat16 values with float64's repr.
TEST(NumberFormatTest, GoldenFileStrings) {
  std::ifstream in(RELU_TEST_DATA_DIR "/relu_golden_edges.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json golden = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string dtype = c.at("dtype");
    if (dtype == "bfloat16") continue;
    for (const char* side : {"input", "output"}) {
      const auto& text = c.at(side);
      const auto& hex = c.at(std::string(side) + "_hex");
      for (size_t i = 0; i < text.size(); ++i) {
        const uint64_t bits =
            std::stoull(hex[i].get<std::string>(), nullptr, 16);
        std::string got;
        if (dtype == "float16") {
          got = FormatFloat16(Float16::FromBits(static_cast<uint16_t>(bits)));
        } else if (dtype == "float32") {
          got = FormatFloat32(BitsFloat(static_cast<uint32_t>(bits)));
        } else {
          got = FormatFloat64(BitsDouble(bits));
        }
        EXPECT_EQ(got, text[i].get<std::string>())
            << c.at("name") << " " << side << "[" << i << "]";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(NumberFormatTest, EveryFloat16MatchesNumpy) {
  if (!testing::HaveNumpy()) GTEST_SKIP() << "no python3 numpy";
  std::optional<std::string> out = testing::RunPython(R"(
import numpy as np
v = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
print("\n".join(str(x) for x in v))
)");
  ASSERT_TRUE(out.has_value());
  std::istringstream lines(*out);
  std::string expected;
  uint32_t b = 0;
  int mismatches = 0;
  while (std::getline(lines, expected)) {
    const std::string got =
        FormatFloat16(Float16::FromBits(static_cast<uint16_t>(b)));
    if (got != expected && ++mismatches <= 20) {
      ADD_FAILURE() << "bits " << b << ": got " << got << ", numpy "
                    << expected;
    }
    ++b;
  }
  EXPECT_EQ(b, 65536u);
  EXPECT_EQ(mismatches, 0);
}

// Random bit patterns plus the values around the positional/scientific
// switch points and powers of two.
void CompareWithNumpy(const char* np_type, const char* uint_type, int bits,
                      std::string (*format)(uint64_t)) {
  if (!testing::HaveNumpy()) GTEST_SKIP() << "no python3 numpy";
  std::ostringstream script;
  script << "import numpy as np\n"
         << "T, U = np." << np_type << ", np." << uint_type << "\n"
         << "rng = np.random.default_rng(11)\n"
         << "b = rng.integers(0, 2**" << bits
         << ", size=100000, dtype=np.uint64)"
         << ".astype(U)\n"
         << "vals = list(b.view(T))\n"
         << "for c in [1e-4, 1e16, 1.0, 0.1, 1e-5, 1e15, 2.0**-10, 3.0]:\n"
         << "    x = T(c)\n"
         << "    for _ in range(3):\n"
         << "        vals += [x, -x]\n"
         << "        x = np.nextafter(x, T(np.inf))\n"
         << "    x = T(c)\n"
         << "    for _ in range(3):\n"
         << "        x = np.nextafter(x, T(0))\n"
         << "        vals.append(x)\n"
         << "for e in range(-160, 130):\n"
         << "    with np.errstate(all='ignore'):\n"
         << "        vals.append(T(2.0) ** T(e))\n"
         << "a = np.array(vals, dtype=T)\n"
         << "for u, x in zip(a.view(U), a):\n"
         << "    print(int(u), str(x))\n";
  std::optional<std::string> out = testing::RunPython(script.str());
  ASSERT_TRUE(out.has_value());
  std::istringstream lines(*out);
  uint64_t b;
  std::string expected;
  int n = 0, mismatches = 0;
  while (lines >> b >> expected) {
    const std::string got = format(b);
    if (got != expected && ++mismatches <= 20) {
      ADD_FAILURE() << "bits " << b << ": got " << got << ", numpy "
                    << expected;
    }
    ++n;
  }
  EXPECT_GT(n, 100000);
  EXPECT_EQ(mismatches, 0);
}

TEST(NumberFormatTest, Float32MatchesNumpy) {
  CompareWithNumpy("float32", "uint32", 32, [](uint64_t b) {
    return FormatFloat32(BitsFloat(static_cast<uint32_t>(b)));
  });
}

TEST(NumberFormatTest, Float64MatchesNumpy) {
  CompareWithNumpy("float64", "uint64", 64,
                   [](uint64_t b) { return FormatFloat64(BitsDouble(b)); });
}

// bfloat16 has no NumPy type: every value's text must read back to it and be
// no longer than needed.
TEST(NumberFormatTest, EveryBFloat16RoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const BFloat16 v = BFloat16::FromBits(static_cast<uint16_t>(b));
    const std::string text = FormatBFloat16(v);
    const double parsed = std::strtod(text.c_str(), nullptr);
    if (std::isnan(v.ToFloat())) {
      EXPECT_EQ(text, "nan");
      continue;
    }
    ASSERT_EQ(BFloat16(parsed).bits, b) << text;
    // Not longer than the correctly rounded %.*e text with the fewest
    // digits that reads back.
    int shortest = 1;
    for (; shortest < 17; ++shortest) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*e", shortest - 1,
                    static_cast<double>(v.ToFloat()));
      if (BFloat16(std::strtod(buf, nullptr)).bits == b) break;
    }
    std::string mantissa = text.substr(0, text.find('e'));
    if (mantissa[0] == '-') mantissa.erase(0, 1);
    mantissa.erase(std::remove(mantissa.begin(), mantissa.end(), '.'),
                   mantissa.end());
    mantissa.erase(0, mantissa.find_first_not_of('0'));
    while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back();
    if (v.ToFloat() != 0 && std::isfinite(v.ToFloat())) {
      EXPECT_LE(static_cast<int>(mantissa.size()), shortest) << text;
    }
  }
}

}  // namespace
}  // namespace relu::cli
