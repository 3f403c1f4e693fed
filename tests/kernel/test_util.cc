#include "tests/kernel/test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "server/kernel/plan.h"

namespace relu::kernel::testing {

uint64_t GetBits(DType dtype, const void* data, size_t index) {
  const size_t size = ElementSize(dtype);
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const char*>(data) + index * size, size);
  return bits;
}

void SetBits(DType dtype, void* data, size_t index, uint64_t bits) {
  const size_t size = ElementSize(dtype);
  std::memcpy(static_cast<char*>(data) + index * size, &bits, size);
}

bool IsNaNBits(DType dtype, uint64_t bits) {
  switch (dtype) {
    case DType::kFloat32:
      return (bits & 0x7fffffffu) > 0x7f800000u;
    case DType::kFloat64:
      return (bits & 0x7fffffffffffffffu) > 0x7ff0000000000000u;
    case DType::kFloat16:
      return (bits & 0x7fff) > 0x7c00;
    case DType::kBFloat16:
      return (bits & 0x7fff) > 0x7f80;
  }
  return false;
}

uint64_t BitsOf(DType dtype, double value) {
  const double rounded = internal::ConstantToDType(dtype, value);
  const float f = static_cast<float>(rounded);
  uint64_t bits = 0;
  switch (dtype) {
    case DType::kFloat64:
      std::memcpy(&bits, &rounded, 8);
      return bits;
    case DType::kFloat32:
      std::memcpy(&bits, &f, 4);
      return bits;
    case DType::kFloat16:
      return internal::FloatToHalf(f);
    case DType::kBFloat16:
      return internal::FloatToBFloat16(f);
  }
  return 0;
}

long FirstMismatch(DType dtype, const void* want, const void* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t a = GetBits(dtype, want, i);
    const uint64_t b = GetBits(dtype, got, i);
    if (a == b) continue;
    if (IsNaNBits(dtype, a) && IsNaNBits(dtype, b)) continue;
    return static_cast<long>(i);
  }
  return -1;
}

std::string DescribeBits(DType dtype, uint64_t bits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s:0x%0*llx", DTypeName(dtype),
                static_cast<int>(ElementSize(dtype) * 2),
                static_cast<unsigned long long>(bits));
  return buf;
}

std::vector<NamedParams> BranchParams() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<NamedParams> sets;
  auto add = [&](std::string name, std::optional<double> m, double s,
                 double t) {
    Params p;
    p.max_value = m;
    p.negative_slope = s;
    p.threshold = t;
    sets.push_back({std::move(name), p});
  };
  add("plain", std::nullopt, 0, 0);
  add("relu6", 6.0, 0, 0);
  add("clip2_5", 2.5, 0, 0);
  add("clip0", 0.0, 0, 0);
  add("clip_inf", inf, 0, 0);
  add("leaky0_3", std::nullopt, 0.3, 0);
  add("leaky2", std::nullopt, 2.0, 0);
  add("leaky_tiny", std::nullopt, 1e-5, 0);
  add("threshold0_7", std::nullopt, 0, 0.7);
  add("threshold_tiny", std::nullopt, 0, 1e-41);
  add("threshold_max4", 4.0, 0, 1.5);
  add("threshold_max6", 6.0, 0, 2.5);
  add("slope_clip4", 4.0, 0.5, 0);
  add("slope_relu6", 6.0, 0.5, 0);
  add("slope_clip_inf", inf, 0.25, 0);
  add("slope_threshold", std::nullopt, 0.5, 1.0);
  add("slope_threshold_max", 1.5, 0.3, 0.7);
  add("slope_threshold_max6", 6.0, 2.0, 3.1);
  return sets;
}

std::vector<uint64_t> EdgeBits(DType dtype, const Params& params) {
  std::vector<uint64_t> bits;
  const double inf = std::numeric_limits<double>::infinity();
  for (double v :
       {0.0,  -0.0,    inf,      -inf,  1.0,   -1.0,   6.0,     -6.0,  0.5,
        -0.5, 65504.0, -65504.0, 1e-3,  -1e-3, 3.0e38, -3.0e38, 1e300, -1e300,
        7.0,  5.999,   1e-6,     -1e-6, 2.0,   0.1,    -0.1}) {
    bits.push_back(BitsOf(dtype, v));
  }
  // Values at and next to the constants.
  std::vector<double> anchors = {params.threshold, -params.threshold, 6.0, 0.0};
  if (params.max_value) anchors.push_back(*params.max_value);
  for (double a : anchors) {
    const uint64_t b = BitsOf(dtype, a);
    for (uint64_t c :
         {b, b + 1, b - 1, b ^ (uint64_t{1} << (ElementSize(dtype) * 8 - 1))}) {
      bits.push_back(c &
                     (ElementSize(dtype) == 8
                          ? ~uint64_t{0}
                          : ((uint64_t{1} << (ElementSize(dtype) * 8)) - 1)));
    }
  }
  switch (dtype) {
    case DType::kFloat32:
      for (uint64_t b : {0x00000001u, 0x007fffffu, 0x00800000u, 0x7f7fffffu,
                         0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x80000001u,
                         0x807fffffu, 0xff7fffffu, 0x7fffffffu}) {
        bits.push_back(b);
      }
      break;
    case DType::kFloat64:
      for (uint64_t b :
           {uint64_t{1}, uint64_t{0x000fffffffffffff},
            uint64_t{0x0010000000000000}, uint64_t{0x7fefffffffffffff},
            uint64_t{0x7ff8000000000000}, uint64_t{0x7ff0000000000001},
            uint64_t{0xfff8000000000000}, uint64_t{0x8000000000000001},
            uint64_t{0xffefffffffffffff}}) {
        bits.push_back(b);
      }
      break;
    case DType::kFloat16:
      for (uint64_t b : {0x0001, 0x03ff, 0x0400, 0x7bff, 0x7e00, 0x7c01, 0xfe00,
                         0x8001, 0x83ff, 0xfbff, 0x7fff}) {
        bits.push_back(b);
      }
      break;
    case DType::kBFloat16:
      for (uint64_t b : {0x0001, 0x007f, 0x0080, 0x7f7f, 0x7fc0, 0x7f81, 0xffc0,
                         0x8001, 0x807f, 0xff7f, 0x7fff}) {
        bits.push_back(b);
      }
      break;
  }
  return bits;
}

std::vector<uint8_t> MakeInput(DType dtype, const Params& params, size_t n,
                               uint64_t seed, bool edges_only) {
  std::vector<uint8_t> data(n * ElementSize(dtype));
  const std::vector<uint64_t> edges = EdgeBits(dtype, params);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 4.0);
  const uint64_t mask = ElementSize(dtype) == 8
                            ? ~uint64_t{0}
                            : (uint64_t{1} << (ElementSize(dtype) * 8)) - 1;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng();
    uint64_t bits;
    if (edges_only || r % 4 == 0) {
      bits = edges[(r >> 8) % edges.size()];
    } else if (r % 4 == 1) {
      bits = rng() & mask;
    } else {
      bits = BitsOf(dtype, normal(rng));
    }
    SetBits(dtype, data.data(), i, bits);
  }
  return data;
}

// A small JSON reader for the golden file's shape.
namespace {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;
  const Json& at(const std::string& key) const {
    static const Json null;
    auto it = object.find(key);
    return it == object.end() ? null : it->second;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : text_(text) {}
  bool Parse(Json* out) {
    if (!Value(out)) return false;
    Skip();
    return pos_ == text_.size();
  }

 private:
  void Skip() {
    while (pos_ < text_.size() &&
           std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool Literal(const char* word) {
    const size_t len = std::strlen(word);
    if (text_.compare(pos_, len, word) != 0) return false;
    pos_ += len;
    return true;
  }
  bool String(std::string* out) {
    if (text_[pos_] != '"') return false;
    ++pos_;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size()) return false;
        c = text_[pos_++];
        switch (c) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'u':  // not in this file's keys or values we read
            pos_ += 4;
            c = '?';
            break;
          default:
            break;  // \" \\ \/
        }
      }
      out->push_back(c);
    }
    if (pos_ >= text_.size()) return false;
    ++pos_;
    return true;
  }
  bool Value(Json* out) {
    Skip();
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_];
    if (c == '{') {
      out->kind = Json::kObject;
      ++pos_;
      Skip();
      if (text_[pos_] == '}') return ++pos_, true;
      while (true) {
        Skip();
        std::string key;
        if (!String(&key)) return false;
        Skip();
        if (text_[pos_++] != ':') return false;
        if (!Value(&out->object[key])) return false;
        Skip();
        if (text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (text_[pos_] == '}') return ++pos_, true;
        return false;
      }
    }
    if (c == '[') {
      out->kind = Json::kArray;
      ++pos_;
      Skip();
      if (text_[pos_] == ']') return ++pos_, true;
      while (true) {
        out->array.emplace_back();
        if (!Value(&out->array.back())) return false;
        Skip();
        if (text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (text_[pos_] == ']') return ++pos_, true;
        return false;
      }
    }
    if (c == '"') {
      out->kind = Json::kString;
      return String(&out->string);
    }
    if (Literal("null")) return out->kind = Json::kNull, true;
    if (Literal("true"))
      return out->kind = Json::kBool, out->boolean = true, true;
    if (Literal("false")) return out->kind = Json::kBool, true;
    char* end = nullptr;
    out->kind = Json::kNumber;
    out->number = std::strtod(text_.c_str() + pos_, &end);
    if (end == text_.c_str() + pos_) return false;
    pos_ = static_cast<size_t>(end - text_.c_str());
    return true;
  }
  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<GoldenCase> LoadGoldenCases() {
  const std::string path =
      std::string(RELU_TEST_DATA_DIR) + "/relu_golden_edges.json";
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string text = buffer.str();
  Json root;
  EXPECT_TRUE(JsonParser(text).Parse(&root)) << "cannot parse " << path;
  std::vector<GoldenCase> cases;
  for (const Json& c : root.at("cases").array) {
    GoldenCase gc;
    gc.name = c.at("name").string;
    const std::string& dtype = c.at("dtype").string;
    bool known = false;
    for (DType d : kAllDTypes) {
      if (dtype == DTypeName(d)) gc.dtype = d, known = true;
    }
    EXPECT_TRUE(known) << "unknown dtype " << dtype;
    const Json& params = c.at("params");
    if (params.at("max_value").kind == Json::kNumber) {
      gc.params.max_value = params.at("max_value").number;
    }
    gc.params.negative_slope = params.at("negative_slope").number;
    gc.params.threshold = params.at("threshold").number;
    for (const Json& h : c.at("input_hex").array) {
      gc.input_bits.push_back(std::stoull(h.string, nullptr, 16));
    }
    for (const Json& h : c.at("output_hex").array) {
      gc.output_bits.push_back(std::stoull(h.string, nullptr, 16));
    }
    EXPECT_EQ(gc.input_bits.size(), gc.output_bits.size()) << gc.name;
    cases.push_back(std::move(gc));
  }
  return cases;
}

}  // namespace relu::kernel::testing
