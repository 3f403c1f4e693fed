#include "server/service/oip_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/float_digits.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;

// Deepest nesting read: a tensor of kMaxTensorRank dimensions as nested data,
// inside the request's object and its inputs array, with room to spare.
constexpr int kMaxDepth = static_cast<int>(kMaxTensorRank) + 16;

// A JSON value. Arrays are kept as their text and read on demand (Items()),
// so that a large "data" array is never held as one value per number.
struct JsonValue {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string_view text;  // a number's token; an array's "[...]"
  std::string string;     // a string, unescaped
  std::vector<std::pair<std::string, JsonValue>> members;  // in order

  const JsonValue* Find(std::string_view key) const {
    for (const auto& [name, value] : members) {
      if (name == key) return &value;
    }
    return nullptr;
  }
};

const char* KindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return "a boolean";
    case JsonValue::Kind::kNumber:
      return "a number";
    case JsonValue::Kind::kString:
      return "a string";
    case JsonValue::Kind::kArray:
      return "an array";
    case JsonValue::Kind::kObject:
      return "an object";
  }
  return "unknown";
}

// A recursive-descent JSON reader (RFC 8259, plus NaN, Infinity and
// -Infinity as numbers). Offsets in its messages count from the body's start.
class Parser {
 public:
  Parser(std::string_view text, size_t base) : s_(text), base_(base) {}

  // The whole text as one value.
  absl::Status Document(JsonValue* out) {
    if (absl::Status st = Value(out, 0, /*build=*/true); !st.ok()) return st;
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected text after the value");
    return absl::OkStatus();
  }

  // The elements of `array` (a kArray value this parser's text came from).
  // Calls `visit(i, item)` for each element of the array, in order, with
  // one value reused (so a large array costs no allocation per element).
  template <typename Visit>
  absl::Status VisitItems(Visit visit) {
    SkipSpace();
    ++pos_;  // '['
    SkipSpace();
    if (Peek() == ']') return absl::OkStatus();
    JsonValue item;
    for (size_t i = 0;; ++i) {
      item.kind = JsonValue::Kind::kNull;
      item.members.clear();
      item.string.clear();
      if (absl::Status st = Value(&item, 1, true); !st.ok()) return st;
      if (absl::Status st = visit(i, item); !st.ok()) return st;
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') return absl::OkStatus();
      return Error("expected ',' or ']'");
    }
  }

  absl::Status Items(std::vector<JsonValue>* items) {
    SkipSpace();
    ++pos_;  // '['
    SkipSpace();
    if (Peek() == ']') return absl::OkStatus();
    while (true) {
      items->emplace_back();
      if (absl::Status st = Value(&items->back(), 1, true); !st.ok()) return st;
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') return absl::OkStatus();
      return Error("expected ',' or ']'");
    }
  }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  absl::Status Error(const char* what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "request body is not valid JSON: ", what, " at byte ", base_ + pos_));
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Reads a value into `out` (when `build`), else only checks it.
  absl::Status Value(JsonValue* out, int depth, bool build) {
    if (depth > kMaxDepth) return Error("nested too deep");
    SkipSpace();
    const size_t start = pos_;
    switch (Peek()) {
      case '{':
        return Object(out, depth, build);
      case '[': {
        if (absl::Status st = Array(depth); !st.ok()) return st;
        if (build) {
          out->kind = JsonValue::Kind::kArray;
          out->text = s_.substr(start, pos_ - start);
        }
        return absl::OkStatus();
      }
      case '"':
        if (build) out->kind = JsonValue::Kind::kString;
        return String(build ? &out->string : nullptr);
      case 't':
      case 'f':
      case 'n':
        if (Literal("true") || Literal("false")) {
          if (build) {
            out->kind = JsonValue::Kind::kBool;
            out->boolean = s_[start] == 't';
          }
          return absl::OkStatus();
        }
        if (Literal("null")) return absl::OkStatus();
        break;
      default:
        break;
    }
    if (!Number()) return Error("expected a value");
    if (build) {
      out->kind = JsonValue::Kind::kNumber;
      out->text = s_.substr(start, pos_ - start);
    }
    return absl::OkStatus();
  }

  absl::Status Object(JsonValue* out, int depth, bool build) {
    ++pos_;  // '{'
    if (build) out->kind = JsonValue::Kind::kObject;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SkipSpace();
      if (Peek() != '"') return Error("expected a member name");
      std::string key;
      if (absl::Status st = String(build ? &key : nullptr); !st.ok()) return st;
      SkipSpace();
      if (Peek() != ':') return Error("expected ':'");
      ++pos_;
      JsonValue value;
      if (absl::Status st = Value(&value, depth + 1, build); !st.ok()) {
        return st;
      }
      if (build) out->members.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("expected ',' or '}'");
    }
  }

  // Checks an array, its elements unread.
  absl::Status Array(int depth) {
    ++pos_;  // '['
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      if (absl::Status st = Value(nullptr, depth + 1, false); !st.ok()) {
        return st;
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("expected ',' or ']'");
    }
  }

  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool Hex4(uint32_t* code) {
    if (pos_ + 4 > s_.size()) return false;
    *code = 0;
    for (int i = 0; i < 4; ++i) {
      const int d = HexDigit(s_[pos_ + i]);
      if (d < 0) return false;
      *code = *code * 16 + static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (code >> 18)));
      out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
    }
  }

  // A string literal, unescaped into `out` when not null.
  absl::Status String(std::string* out) {
    ++pos_;  // '"'
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string");
      }
      if (c != '\\') {
        if (out != nullptr) out->push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      const char e = Peek();
      ++pos_;
      char plain = 0;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          plain = e;
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          if (!Hex4(&code)) return Error("bad \\u escape");
          if (code >= 0xd800 && code < 0xdc00) {
            uint32_t low = 0;
            if (!Literal("\\u") || !Hex4(&low) || low < 0xdc00 ||
                low >= 0xe000) {
              return Error("unpaired surrogate in a \\u escape");
            }
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          } else if (code >= 0xdc00 && code < 0xe000) {
            return Error("unpaired surrogate in a \\u escape");
          }
          if (out != nullptr) AppendUtf8(code, out);
          continue;
        }
        default:
          --pos_;
          return Error("bad escape in a string");
      }
      if (out != nullptr) out->push_back(plain);
    }
  }

  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  // A number token: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, NaN,
  // Infinity or -Infinity.
  bool Number() {
    const size_t start = pos_;
    if (Literal("NaN") || Literal("Infinity") || Literal("-Infinity")) {
      return true;
    }
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (!Digits()) {
      pos_ = start;
      return false;
    }
    if (Peek() == '.') {
      ++pos_;
      if (!Digits()) {
        pos_ = start;
        return false;
      }
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!Digits()) {
        pos_ = start;
        return false;
      }
    }
    return true;
  }

  const std::string_view s_;
  const size_t base_;
  size_t pos_ = 0;
};

// The elements of an array value. `body` is the text the value came from, to
// place its offsets.
absl::Status ItemsOf(const JsonValue& array, std::string_view body,
                     std::vector<JsonValue>* items) {
  Parser parser(array.text,
                static_cast<size_t>(array.text.data() - body.data()));
  return parser.Items(items);
}

absl::Status WrongType(const std::string& field, const JsonValue& value,
                       const char* wanted) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", KindName(value.kind), "; send ", wanted));
}

// A number token as a double (nearest), or as a float (nearest) when
// `as_float`.
template <typename T>
T ReadDecimal(std::string_view token) {
  if (token == "NaN") return std::numeric_limits<T>::quiet_NaN();
  if (token == "Infinity") return std::numeric_limits<T>::infinity();
  if (token == "-Infinity") return -std::numeric_limits<T>::infinity();
  char small[64];
  std::string large;
  const char* text = small;
  if (token.size() < sizeof small) {
    std::memcpy(small, token.data(), token.size());
    small[token.size()] = '\0';
  } else {
    large.assign(token);
    text = large.c_str();
  }
  // glibc's strtod and strtof round correctly, overflow to infinity and
  // underflow to subnormals or zero, sign kept.
  if constexpr (std::is_same_v<T, float>) {
    return std::strtof(text, nullptr);
  } else {
    return std::strtod(text, nullptr);
  }
}

bool IsNumberToken(std::string_view token) {
  Parser parser(token, 0);
  JsonValue value;
  return parser.Document(&value).ok() && value.kind == JsonValue::Kind::kNumber;
}

// Writes one JSON number token as `dtype` at `out`.
void StoreNumber(std::string_view token, kernel::DType dtype, char* out) {
  switch (dtype) {
    case kernel::DType::kFloat32: {
      const float v = ReadDecimal<float>(token);
      std::memcpy(out, &v, sizeof v);
      return;
    }
    case kernel::DType::kFloat64: {
      const double v = ReadDecimal<double>(token);
      std::memcpy(out, &v, sizeof v);
      return;
    }
    case kernel::DType::kFloat16:
    case kernel::DType::kBFloat16: {
      const bool half = dtype == kernel::DType::kFloat16;
      const uint16_t v = RoundToSmallFloat(ReadDecimal<double>(token),
                                           half ? 5 : 8, half ? 10 : 7);
      std::memcpy(out, &v, sizeof v);
      return;
    }
  }
}

// Reads the "data" of inputs[0] into `out` as `dtype`: flat in row-major
// order, or nested exactly as `shape` (when every dimension is >= 0). The
// arrays are walked in place: no value is kept per number.
class DataReader {
 public:
  DataReader(std::string_view body, kernel::DType dtype,
             const std::vector<int64_t>& shape, std::string* out)
      : body_(body),
        dtype_(dtype),
        size_(kernel::ElementSize(dtype)),
        shape_(shape),
        out_(out) {
    shape_checked_ = std::all_of(shape.begin(), shape.end(),
                                 [](int64_t d) { return d >= 0; }) &&
                     shape.size() <= kMaxTensorRank;
  }

  absl::Status Read(const JsonValue& data) {
    // Nested when the first element is an array.
    bool nested = false;
    Parser first(data.text, Offset(data));
    absl::Status st =
        first.VisitItems([&nested](size_t i, const JsonValue& item) {
          if (i == 0) nested = item.kind == JsonValue::Kind::kArray;
          // Stop after the first element.
          return absl::CancelledError();
        });
    if (!st.ok() && st.code() != absl::StatusCode::kCancelled) return st;
    if (shape_checked_) {
      size_t elements = 1;
      for (int64_t d : shape_) {
        if (d != 0 && elements > (size_t{1} << 40) / static_cast<size_t>(d)) {
          elements = 0;  // too large to reserve; ValidateTensorSize says
          break;
        }
        elements *= static_cast<size_t>(d);
      }
      if (elements <= body_.size()) {
        out_->reserve(elements * size_);
      }
    }
    return Walk(data, 0, nested, "inputs[0].data");
  }

 private:
  size_t Offset(const JsonValue& array) const {
    return static_cast<size_t>(array.text.data() - body_.data());
  }

  // The array `array` at `depth`: numbers when it is a leaf (flat data, or
  // the last dimension of nested data), else arrays.
  absl::Status Walk(const JsonValue& array, size_t depth, bool nested,
                    const std::string& field) {
    const bool leaves =
        !nested || (shape_checked_ && depth + 1 == shape_.size());
    if (nested && shape_checked_ && depth >= shape_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " is an array, nested deeper than inputs[0].shape ",
          ShapeText(shape_), " (", shape_.size(), " dimensions)"));
    }
    size_t count = 0;
    Parser parser(array.text, Offset(array));
    absl::Status st = parser.VisitItems([&](size_t i, const JsonValue& item) {
      count = i + 1;
      if (leaves) {
        if (item.kind != JsonValue::Kind::kNumber) {
          if (nested && shape_checked_) {
            return absl::InvalidArgumentError(
                absl::StrCat(field, "[", i, "] is ", KindName(item.kind),
                             "; nested data must be nested as inputs[0].shape ",
                             ShapeText(shape_)));
          }
          return WrongType(absl::StrCat(field, "[", i, "]"), item,
                           "numbers (or NaN, Infinity, -Infinity)");
        }
        const size_t at = out_->size();
        out_->resize(at + size_);
        StoreNumber(item.text, dtype_, out_->data() + at);
        return absl::OkStatus();
      }
      const std::string at = absl::StrCat(field, "[", i, "]");
      if (item.kind != JsonValue::Kind::kArray) {
        if (shape_checked_) {
          return absl::InvalidArgumentError(
              absl::StrCat(at, " is ", KindName(item.kind),
                           "; nested data must be nested as inputs[0].shape ",
                           ShapeText(shape_)));
        }
        return WrongType(at, item, "an array");
      }
      return Walk(item, depth + 1, true, at);
    });
    if (!st.ok()) return st;
    if (nested && shape_checked_ &&
        count != static_cast<size_t>(shape_[depth])) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " has ", count, " elements; inputs[0].shape ",
          ShapeText(shape_), " says ", shape_[depth], " at dimension ", depth));
    }
    return absl::OkStatus();
  }

  const std::string_view body_;
  const kernel::DType dtype_;
  const size_t size_;
  const std::vector<int64_t>& shape_;
  std::string* const out_;
  bool shape_checked_ = false;
};

bool IsIntegerToken(std::string_view token) {
  return token.find_first_of(".eEIN") == std::string_view::npos;
}

// A JSON number as an int64, when it is written as an integer that fits.
bool ReadInt64(std::string_view token, int64_t* out) {
  if (!IsIntegerToken(token) || token.size() > 20) return false;
  const std::string text(token);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  *out = v;
  return true;
}

// A JSON parameter as the protocol's InferParameter: a boolean, an integer
// (int64_param), another number (double_param) or a string.
absl::Status ReadParameter(const std::string& field, const JsonValue& value,
                           InferParameter* out) {
  switch (value.kind) {
    case JsonValue::Kind::kBool:
      out->set_bool_param(value.boolean);
      return absl::OkStatus();
    case JsonValue::Kind::kString:
      out->set_string_param(value.string);
      return absl::OkStatus();
    case JsonValue::Kind::kNumber: {
      int64_t integer = 0;
      if (ReadInt64(value.text, &integer)) {
        out->set_int64_param(integer);
      } else {
        out->set_double_param(ReadDecimal<double>(value.text));
      }
      return absl::OkStatus();
    }
    default:
      return WrongType(field, value, "a boolean, a number or a string");
  }
}

absl::Status ReadParameters(
    const std::string& field, const JsonValue& value,
    google::protobuf::Map<std::string, InferParameter>* out) {
  if (value.kind != JsonValue::Kind::kObject) {
    return WrongType(field, value, "an object");
  }
  for (const auto& [name, parameter] : value.members) {
    if (absl::Status st = ReadParameter(absl::StrCat(field, "[\"", name, "\"]"),
                                        parameter, &(*out)[name]);
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

// Takes the boolean parameter `name` out of `parameters`, if there.
absl::StatusOr<bool> TakeBool(
    const std::string& field, const char* name,
    google::protobuf::Map<std::string, InferParameter>* parameters) {
  auto it = parameters->find(name);
  if (it == parameters->end()) return false;
  if (it->second.parameter_choice_case() != InferParameter::kBoolParam) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[\"", name, "\"] must be a boolean"));
  }
  const bool v = it->second.bool_param();
  parameters->erase(it);
  return v;
}

// Takes the integer parameter `name` (>= 0) out of `parameters`, if there.
absl::StatusOr<std::optional<int64_t>> TakeCount(
    const std::string& field, const char* name,
    google::protobuf::Map<std::string, InferParameter>* parameters) {
  auto it = parameters->find(name);
  if (it == parameters->end()) return std::nullopt;
  if (it->second.parameter_choice_case() != InferParameter::kInt64Param ||
      it->second.int64_param() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[\"", name, "\"] must be an integer >= 0"));
  }
  const int64_t v = it->second.int64_param();
  parameters->erase(it);
  return v;
}

absl::StatusOr<std::string> ReadString(const std::string& field,
                                       const JsonValue* value) {
  if (value == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is missing"));
  }
  if (value->kind != JsonValue::Kind::kString) {
    return WrongType(field, *value, "a string");
  }
  return value->string;
}

std::optional<kernel::DType> KnownDatatype(const std::string& datatype) {
  if (datatype == "FP32") return kernel::DType::kFloat32;
  if (datatype == "FP64") return kernel::DType::kFloat64;
  if (datatype == "FP16") return kernel::DType::kFloat16;
  if (datatype == "BF16") return kernel::DType::kBFloat16;
  return std::nullopt;
}

absl::Status ReadInput(std::string_view body, const JsonValue& value,
                       size_t index, std::string_view binary,
                       HttpInferRequest* out) {
  const std::string field = absl::StrCat("inputs[", index, "]");
  if (value.kind != JsonValue::Kind::kObject) {
    return WrongType(field, value, "an object");
  }
  ModelInferRequest::InferInputTensor* input = out->request.add_inputs();
  absl::StatusOr<std::string> name =
      ReadString(absl::StrCat(field, ".name"), value.Find("name"));
  if (!name.ok()) return name.status();
  input->set_name(*name);
  absl::StatusOr<std::string> datatype =
      ReadString(absl::StrCat(field, ".datatype"), value.Find("datatype"));
  if (!datatype.ok()) return datatype.status();
  input->set_datatype(*datatype);

  const JsonValue* shape = value.Find("shape");
  if (shape == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shape is missing"));
  }
  if (shape->kind != JsonValue::Kind::kArray) {
    return WrongType(absl::StrCat(field, ".shape"), *shape,
                     "an array of integers");
  }
  std::vector<JsonValue> dims;
  if (absl::Status st = ItemsOf(*shape, body, &dims); !st.ok()) return st;
  if (dims.size() > kMaxTensorRank) {
    return TooManyDimensions(absl::StrCat(field, ".shape"), dims.size());
  }
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = 0;
    if (dims[i].kind != JsonValue::Kind::kNumber ||
        !ReadInt64(dims[i].text, &d)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".shape[", i, "] is ",
          dims[i].kind == JsonValue::Kind::kNumber ? std::string(dims[i].text)
                                                   : KindName(dims[i].kind),
          "; send an integer"));
    }
    input->add_shape(d);
  }

  std::optional<int64_t> binary_size;
  if (const JsonValue* parameters = value.Find("parameters")) {
    if (absl::Status st =
            ReadParameters(absl::StrCat(field, ".parameters"), *parameters,
                           input->mutable_parameters());
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::optional<int64_t>> size =
        TakeCount(absl::StrCat(field, ".parameters"), "binary_data_size",
                  input->mutable_parameters());
    if (!size.ok()) return size.status();
    binary_size = *size;
  }

  const JsonValue* data = value.Find("data");
  const std::optional<kernel::DType> dtype = KnownDatatype(*datatype);
  if (binary_size.has_value()) {
    if (data != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " has both \"data\" and parameters[\"binary_data_size\"]; ",
          "send the data in one of them"));
    }
    if (static_cast<uint64_t>(*binary_size) != binary.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".parameters[\"binary_data_size\"] is ", *binary_size,
          "; the body has ", binary.size(),
          " bytes after the JSON (Inference-Header-Content-Length)"));
    }
    out->request.add_raw_input_contents()->assign(binary);
    return absl::OkStatus();
  }
  if (data == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has no \"data\" (and no parameters[\"binary_data_size\"])"));
  }
  if (data->kind != JsonValue::Kind::kArray) {
    return WrongType(absl::StrCat(field, ".data"), *data, "an array");
  }
  // An unknown datatype is ValidateInferRequest's to report.
  if (!dtype.has_value() || index != 0) return absl::OkStatus();
  std::vector<int64_t> dims_values(input->shape().begin(),
                                   input->shape().end());
  DataReader reader(body, *dtype, dims_values,
                    out->request.add_raw_input_contents());
  return reader.Read(*data);
}

absl::Status ReadOutput(const JsonValue& value, size_t index,
                        HttpInferRequest* out) {
  const std::string field = absl::StrCat("outputs[", index, "]");
  if (value.kind != JsonValue::Kind::kObject) {
    return WrongType(field, value, "an object");
  }
  auto* output = out->request.add_outputs();
  absl::StatusOr<std::string> name =
      ReadString(absl::StrCat(field, ".name"), value.Find("name"));
  if (!name.ok()) return name.status();
  output->set_name(*name);
  if (const JsonValue* parameters = value.Find("parameters")) {
    const std::string pfield = absl::StrCat(field, ".parameters");
    if (absl::Status st =
            ReadParameters(pfield, *parameters, output->mutable_parameters());
        !st.ok()) {
      return st;
    }
    absl::StatusOr<bool> binary =
        TakeBool(pfield, "binary_data", output->mutable_parameters());
    if (!binary.ok()) return binary.status();
    if (*binary) out->binary_output = true;
  }
  return absl::OkStatus();
}

void AppendDigits(bool negative, const ShortestDecimal& shortest,
                  std::string* out) {
  if (negative) out->push_back('-');
  const std::string& digits = shortest.digits;
  const int exponent = shortest.k - 1;
  // Python's repr: scientific when the exponent is < -4 or >= 16.
  if (exponent < -4 || exponent >= 16) {
    out->push_back(digits[0]);
    if (digits.size() > 1) {
      out->push_back('.');
      out->append(digits, 1, std::string::npos);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    out->append(exp_buf);
    return;
  }
  if (exponent < 0) {
    out->append("0.");
    out->append(static_cast<size_t>(-exponent - 1), '0');
    out->append(digits);
    return;
  }
  const size_t int_digits = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= int_digits) {
    out->append(digits);
    out->append(int_digits - digits.size(), '0');
    out->append(".0");
  } else {
    out->append(digits, 0, int_digits);
    out->push_back('.');
    out->append(digits, int_digits, std::string::npos);
  }
}

// Appends one value: `nan`, `inf` and `zero` from its bits, `digits` called
// only for a finite nonzero value.
template <typename Digits>
void AppendValue(bool negative, bool nan, bool inf, bool zero, Digits digits,
                 std::string* out) {
  if (nan) {
    out->append("NaN");
  } else if (inf) {
    out->append(negative ? "-Infinity" : "Infinity");
  } else if (zero) {
    out->append(negative ? "-0.0" : "0.0");
  } else {
    AppendDigits(negative, digits(), out);
  }
}

void AppendNumber(kernel::DType dtype, uint64_t bits, std::string* out) {
  switch (dtype) {
    case kernel::DType::kFloat32: {
      float v;
      const uint32_t b = static_cast<uint32_t>(bits);
      std::memcpy(&v, &b, sizeof v);
      AppendValue(
          std::signbit(v), std::isnan(v), std::isinf(v), v == 0,
          [v] { return ShortestDigits(v); }, out);
      return;
    }
    case kernel::DType::kFloat64: {
      double v;
      std::memcpy(&v, &bits, sizeof v);
      AppendValue(
          std::signbit(v), std::isnan(v), std::isinf(v), v == 0,
          [v] { return ShortestDigits(v); }, out);
      return;
    }
    case kernel::DType::kFloat16:
    case kernel::DType::kBFloat16: {
      const bool half = dtype == kernel::DType::kFloat16;
      const int exp_bits = half ? 5 : 8;
      const int man_bits = half ? 10 : 7;
      const uint64_t exp_mask = ((uint64_t{1} << exp_bits) - 1) << man_bits;
      const uint64_t man_mask = (uint64_t{1} << man_bits) - 1;
      const bool negative = (bits >> 15) & 1;
      const bool special = (bits & exp_mask) == exp_mask;
      AppendValue(
          negative, special && (bits & man_mask) != 0,
          special && (bits & man_mask) == 0, (bits & 0x7fff) == 0,
          [bits, exp_bits, man_bits] {
            return ShortestDigitsOfBits(bits & 0x7fff, exp_bits, man_bits);
          },
          out);
      return;
    }
  }
}

}  // namespace

absl::Status DecodeHttpInferRequest(std::string_view json,
                                    std::string_view binary,
                                    HttpInferRequest* out) {
  JsonValue root;
  Parser parser(json, 0);
  if (absl::Status st = parser.Document(&root); !st.ok()) return st;
  if (root.kind != JsonValue::Kind::kObject) {
    return WrongType("the request body", root, "a JSON object");
  }
  if (const JsonValue* id = root.Find("id")) {
    if (id->kind != JsonValue::Kind::kString) {
      return WrongType("id", *id, "a string");
    }
    out->has_id = true;
    out->request.set_id(id->string);
  }
  if (const JsonValue* parameters = root.Find("parameters")) {
    auto* map = out->request.mutable_parameters();
    if (absl::Status st = ReadParameters("parameters", *parameters, map);
        !st.ok()) {
      return st;
    }
    absl::StatusOr<bool> binary_output =
        TakeBool("parameters", "binary_data_output", map);
    if (!binary_output.ok()) return binary_output.status();
    out->binary_output = *binary_output;
    absl::StatusOr<std::optional<int64_t>> timeout =
        TakeCount("parameters", "timeout", map);
    if (!timeout.ok()) return timeout.status();
    out->timeout_micros = *timeout;
  }
  const JsonValue* inputs = root.Find("inputs");
  if (inputs == nullptr) {
    return absl::InvalidArgumentError("inputs is missing");
  }
  if (inputs->kind != JsonValue::Kind::kArray) {
    return WrongType("inputs", *inputs, "an array");
  }
  std::vector<JsonValue> input_items;
  if (absl::Status st = ItemsOf(*inputs, json, &input_items); !st.ok()) {
    return st;
  }
  for (size_t i = 0; i < input_items.size(); ++i) {
    if (absl::Status st = ReadInput(json, input_items[i], i, binary, out);
        !st.ok()) {
      return st;
    }
  }
  if (out->request.raw_input_contents_size() == 0 && !binary.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the body has ", binary.size(),
        " bytes after the JSON (Inference-Header-Content-Length) that no ",
        "input claims with parameters[\"binary_data_size\"]"));
  }
  if (const JsonValue* outputs = root.Find("outputs")) {
    if (outputs->kind != JsonValue::Kind::kArray) {
      return WrongType("outputs", *outputs, "an array");
    }
    std::vector<JsonValue> items;
    if (absl::Status st = ItemsOf(*outputs, json, &items); !st.ok()) return st;
    for (size_t i = 0; i < items.size(); ++i) {
      if (absl::Status st = ReadOutput(items[i], i, out); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

void AppendJsonNumbers(kernel::DType dtype, const void* data, size_t count,
                       std::string* out) {
  const char* p = static_cast<const char*>(data);
  const size_t size = kernel::ElementSize(dtype);
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out->push_back(',');
    uint64_t bits = 0;
    std::memcpy(&bits, p + i * size, size);  // little-endian
    AppendNumber(dtype, bits, out);
  }
}

std::string JsonNumber(kernel::DType dtype, uint64_t bits) {
  std::string out;
  AppendNumber(dtype, bits, &out);
  return out;
}

bool ReadJsonNumber(std::string_view token, kernel::DType dtype, void* out) {
  if (!IsNumberToken(token)) return false;
  StoreNumber(token, dtype, static_cast<char*>(out));
  return true;
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace relu::service
