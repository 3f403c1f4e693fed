#include "client/cli/npy.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace relu::cli {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid .npy file: ", what));
}

// A cursor over the header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() &&
           std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool String(std::string* out) {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return false;
    }
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return false;
    *out = std::string(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }
  bool Word(std::string* out) {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           std::isalnum(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
    *out = std::string(text_.substr(start, pos_ - start));
    return !out->empty();
  }
  bool Integer(int64_t* out) {
    std::string word;
    if (!Word(&word)) return false;
    // Python 2 era files may write longs as "3L".
    if (word.back() == 'L') word.pop_back();
    if (word.empty() || word.size() > 18 ||
        !std::all_of(word.begin(), word.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return false;
    }
    *out = std::stoll(word);
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

absl::Status ParseHeader(std::string_view header, std::string* descr,
                         bool* fortran_order, std::vector<int64_t>* shape) {
  HeaderParser p(header);
  bool have_descr = false, have_order = false, have_shape = false;
  if (!p.Consume('{')) return Bad("header is not a dict");
  while (!p.Consume('}')) {
    std::string key;
    if (!p.String(&key) || !p.Consume(':')) return Bad("malformed header");
    if (key == "descr") {
      if (!p.String(descr)) return Bad("descr is not a string");
      have_descr = true;
    } else if (key == "fortran_order") {
      std::string word;
      if (!p.Word(&word) || (word != "True" && word != "False")) {
        return Bad("fortran_order is not True or False");
      }
      *fortran_order = word == "True";
      have_order = true;
    } else if (key == "shape") {
      if (!p.Consume('(')) return Bad("shape is not a tuple");
      shape->clear();
      while (!p.Consume(')')) {
        int64_t d;
        if (!p.Integer(&d)) return Bad("shape holds a non-integer");
        shape->push_back(d);
        if (!p.Consume(',') && !p.Peek(')')) return Bad("malformed shape");
      }
      have_shape = true;
    } else {
      return Bad(absl::StrCat("unknown header key '", key, "'"));
    }
    if (!p.Consume(',') && !p.Peek('}')) return Bad("malformed header");
  }
  if (!have_descr || !have_order || !have_shape) {
    return Bad("header lacks descr, fortran_order or shape");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(const std::string& bytes) {
  if (bytes.size() < kMagicSize + 2 ||
      std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return Bad("no NUMPY magic");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    if (bytes.size() < 10) return Bad("truncated header");
    header_len = static_cast<unsigned char>(bytes[8]) |
                 static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Bad("truncated header");
    header_len = 0;
    for (int i = 3; i >= 0; --i) {
      header_len = header_len << 8 | static_cast<unsigned char>(bytes[8 + i]);
    }
    header_start = 12;
  } else {
    return Bad(absl::StrCat("unsupported format version ", major));
  }
  if (bytes.size() < header_start + header_len) return Bad("truncated header");
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  if (absl::Status s =
          ParseHeader(std::string_view(bytes).substr(header_start, header_len),
                      &descr, &fortran_order, &shape);
      !s.ok()) {
    return s;
  }
  if (fortran_order) return Bad("Fortran-order arrays are not supported");
  Tensor t;
  bool big_endian = false;
  if (descr.size() != 3 || descr[1] != 'f' ||
      (descr[0] != '<' && descr[0] != '>' && descr[0] != '=' &&
       descr[0] != '|')) {
    return Bad(
        absl::StrCat("dtype '", descr, "' is not float16, float32 or float64"));
  }
  big_endian = descr[0] == '>';
  switch (descr[2]) {
    case '2':
      t.dtype = DataType::kFloat16;
      break;
    case '4':
      t.dtype = DataType::kFloat32;
      break;
    case '8':
      t.dtype = DataType::kFloat64;
      break;
    default:
      return Bad(absl::StrCat("dtype '", descr,
                              "' is not float16, float32 or float64"));
  }
  const size_t size = ElementSize(t.dtype);
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return Bad("negative dimension");
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / 16 /
                              static_cast<uint64_t>(d)) {
      return Bad("shape too large");
    }
    count *= static_cast<uint64_t>(d);
  }
  const size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != count * size) {
    return Bad(absl::StrCat("data has ", bytes.size() - data_start,
                            " bytes, the shape needs ", count * size));
  }
  t.shape = std::move(shape);
  t.data = bytes.substr(data_start);
  if (big_endian) {
    for (size_t i = 0; i < t.data.size(); i += size) {
      std::reverse(t.data.begin() + i, t.data.begin() + i + size);
    }
  }
  return t;
}

absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor) {
  const char* descr;
  switch (tensor.dtype) {
    case DataType::kFloat16:
      descr = "<f2";
      break;
    case DataType::kFloat32:
      descr = "<f4";
      break;
    case DataType::kFloat64:
      descr = "<f8";
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          ".npy has no dtype for ", std::string(DataTypeName(tensor.dtype))));
  }
  std::string shape = "(" + absl::StrJoin(tensor.shape, ", ");
  if (tensor.shape.size() == 1) shape += ",";
  shape += ")";
  std::string header =
      absl::StrCat("{'descr': '", descr,
                   "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces so the data starts at a multiple of 64 bytes; the header
  // ends with a newline.
  const size_t unpadded = kMagicSize + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) {
    return absl::InvalidArgumentError("shape too long for a .npy header");
  }
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out += tensor.data;
  return out;
}

absl::StatusOr<Tensor> ReadNpyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream content;
  content << in.rdbuf();
  absl::StatusOr<Tensor> t = ParseNpy(content.str());
  if (!t.ok()) {
    return absl::Status(t.status().code(),
                        absl::StrCat(path, ": ", t.status().message()));
  }
  return t;
}

absl::Status WriteNpyFile(const std::string& path, const Tensor& tensor) {
  absl::StatusOr<std::string> bytes = SerializeNpy(tensor);
  if (!bytes.ok()) return bytes.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace relu::cli
